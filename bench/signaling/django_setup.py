"""Prepare the database our server is benchmarked against: P doctor/patient pairs, each in an
ongoing ad-hoc call both have joined, and an access token per user.

The harness runs this with the server's environment (same ``DATABASE_URL``, ``SECRET_KEY``,
``REDIS_URL``) before each measurement. It is idempotent: pairs and calls made by an earlier
point are reused, and presence rows left by an earlier server are removed so that signaling
routes only name connections of the run about to start.

Calls are made through the project's own services (``call_initiate`` then ``call_accept``), as a
clinic's would be; if a pair's call cannot be made that way, the script stops with the error
rather than faking rows, so the benchmark always exercises the real participant checks.

Writes ``[{"call_id", "a": {"id", "token"}, "b": {"id", "token"}}, ...]`` to ``--out``.
"""

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import DoctorProfile, PatientProfile, Role, User  # noqa: E402
from accounts.tokens import token_pair_for  # noqa: E402
from presence.models import PresenceConnection  # noqa: E402
from sessions.models import Session  # noqa: E402
from video_calls.models import Call, CallParticipant, CallStatus, ParticipantStatus  # noqa: E402
from video_calls.services.adhoc import call_accept, call_initiate  # noqa: E402

EMAIL_DOMAIN = "bench.invalid"
# Nobody signs in with a password: the harness mints tokens directly.
UNUSABLE_PASSWORD = make_password(None)


def _user(email: str, role: str, index: int) -> User:
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user
    user = User.objects.create(
        email=email,
        first_name="Bench",
        last_name=f"{role.title()} {index}",
        role=role,
        email_verified=True,
        password=UNUSABLE_PASSWORD,
    )
    if role == Role.DOCTOR:
        DoctorProfile.objects.create(
            user=user,
            specialty="Family Medicine",
            license_number=f"BENCH-{index:06d}",
            consultation_fee="0.00",
            is_verified=True,
        )
    else:
        PatientProfile.objects.create(user=user)
    return user


def _ongoing_call(doctor: User, patient: User) -> Call:
    """The pair's ongoing call with both joined: an existing one, or a new one rung and answered."""
    existing = (
        Call.objects.filter(status=CallStatus.ONGOING, participants__user=doctor)
        .filter(participants__user=patient)
        .first()
    )
    if existing is not None and (
        CallParticipant.objects.filter(call=existing, status=ParticipantStatus.JOINED).count() == 2
    ):
        return existing
    if not Session.objects.filter(doctor=doctor, patient=patient).exists():
        # The care relationship that lets the doctor ring this patient (accounts are otherwise
        # invisible to each other). Far in the future so no sweep touches it.
        start = timezone.now() + timedelta(days=365)
        Session.objects.create(
            doctor=doctor,
            patient=patient,
            scheduled_start=start,
            duration_minutes=50,
            blocked_until=start + timedelta(minutes=50),
        )
    with transaction.atomic():
        call = call_initiate(caller=doctor, callee_id=patient.pk, media="audio")
    with transaction.atomic():
        call_accept(call=call, user=patient)
    return call


def prepare(pairs: int) -> list[dict]:
    call_command("migrate", interactive=False, verbosity=0)
    result = []
    users = []
    for index in range(pairs):
        doctor = _user(f"bench-doctor-{index}@{EMAIL_DOMAIN}", Role.DOCTOR, index)
        patient = _user(f"bench-patient-{index}@{EMAIL_DOMAIN}", Role.PATIENT, index)
        call = _ongoing_call(doctor, patient)
        users += [doctor, patient]
        result.append(
            {
                "call_id": str(call.pk),
                "a": {"id": str(doctor.pk), "token": token_pair_for(doctor)["access"]},
                "b": {"id": str(patient.pk), "token": token_pair_for(patient)["access"]},
            }
        )
    # Connections recorded by a server that was stopped: their channels are gone.
    PresenceConnection.objects.filter(user__in=users).delete()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--out", required=True, help="Where to write the pairs as JSON.")
    arguments = parser.parse_args()
    Path(arguments.out).write_text(json.dumps(prepare(arguments.pairs)))

"""``manage.py seed_demo``: idempotent demo accounts whose printed logins work, refused with
DEBUG off unless forced."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import DoctorProfile, PatientProfile, Role, User
from tests.accounts.helpers import LOGIN

pytestmark = pytest.mark.django_db


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _logins(output: str) -> tuple[str, list[tuple[str, str]]]:
    password = re.search(r"password for all: (\S+)\)", output).group(1)
    return password, re.findall(r"^\s+(patient|doctor|staff)\s+(\S+@\S+)$", output, flags=re.MULTILINE)


def test_seed_refuses_with_debug_off():
    # given DEBUG off (as in production)
    # when seeding without --force
    # then it refuses and creates nobody
    with pytest.raises(CommandError, match="--force"):
        _seed()
    assert not User.objects.exists()


def test_seed_creates_staff_two_doctors_two_patients_and_prints_logins():
    # given an empty database
    # when seeding with --force
    output = _seed("--force")

    # then one staff member, two verified doctors and two patients exist
    assert User.objects.filter(role=Role.STAFF, is_staff=True).count() == 1
    assert DoctorProfile.objects.filter(is_verified=True).count() == 2
    assert PatientProfile.objects.count() == 2
    assert User.objects.count() == 5
    assert not User.objects.filter(email_verified=False).exists()
    # and the printed logins name each of them
    _, logins = _logins(output)
    assert sorted(role for role, _ in logins) == ["doctor", "doctor", "patient", "patient", "staff"]
    assert {email for _, email in logins} == set(User.objects.values_list("email", flat=True))


def test_printed_logins_sign_in():
    # given the seeded demo accounts
    password, logins = _logins(_seed("--force"))

    # when each printed login signs in through the API
    statuses = []
    for n, (_, email) in enumerate(logins):
        client = APIClient(REMOTE_ADDR=f"192.0.2.{n}")
        statuses.append(client.post(LOGIN, {"email": email, "password": password}).status_code)

    # then every one works
    assert statuses == [200] * 5


def test_seed_is_idempotent():
    # given a seeded database, with one demo patient's name changed since
    first_output = _seed("--force")
    User.objects.filter(email="alice@demo.clinic").update(first_name="Alicia")

    # when seeding again
    second_output = _seed("--force")

    # then nothing is duplicated or overwritten, and the logins are printed again
    assert User.objects.count() == 5
    assert DoctorProfile.objects.count() == 2
    assert PatientProfile.objects.count() == 2
    assert User.objects.get(email="alice@demo.clinic").first_name == "Alicia"
    assert second_output == first_output


@override_settings(DEBUG=True)
def test_seed_runs_without_force_when_debug_is_on():
    # given DEBUG on (development)
    # when seeding without --force
    output = _seed()

    # then the accounts exist and the logins are printed
    assert User.objects.count() == 5
    assert "Demo logins" in output

"""What staff change through the console: a user's names and doctor verification, suspension,
reactivation and deletion. Suspending goes through ``accounts.services.user_suspend`` (which
revokes every token and closes the user's sockets); ending a call and removing a participant
go through the call services (video_calls/services), the same rules as the host's.

Deleting a user keeps the clinical record. The account row stays (sessions, calls, call events,
quality reports, messages, attachments, payments and audit entries point at it and must be
kept: HIPAA §164.316(b)(2) and state medical-record laws require the record for years), but
it is deactivated and stripped of what identifies or reaches the person beyond the record:
email, phone number, display name, avatar, language, password, date of birth, doctor bio,
unused phone codes; their names become "Deleted user". docs/operations.md lists this.
"""

from typing import Any

from django.db import transaction

from accounts import avatars
from accounts import services as account_services
from accounts.models import DoctorProfile, PatientProfile, PhoneVerification, User
from core.exceptions import Conflict
from staff.selectors import user_status
from video_calls.models import Call, CallParticipant
from video_calls.services.guests import participant_remove
from video_calls.services.rooms import call_end

STAFF_EDITABLE_FIELDS = ("first_name", "last_name", "display_name")


class CannotActOnSelf(Conflict):
    code = "CANNOT_ACT_ON_SELF"
    default_message = "Staff cannot suspend or delete their own account."


class UserDeleted(Conflict):
    code = "USER_DELETED"
    default_message = "The account was deleted; it cannot be changed or reactivated."


def _refuse_deleted(user: User) -> None:
    if user_status(user) == "deleted":
        raise UserDeleted()


@transaction.atomic
def staff_user_update(*, user: User, data: dict[str, Any]) -> User:
    """Names and display name; ``doctor_verified: true`` verifies a doctor (as the admin's action
    does). Role, email and phone are changed in the admin, where their checks live."""
    _refuse_deleted(user)
    fields = [name for name in STAFF_EDITABLE_FIELDS if name in data]
    for name in fields:
        setattr(user, name, data[name])
    if fields:
        user.save(update_fields=[*fields, "updated_at"])
    if data.get("doctor_verified") and user.is_doctor:
        account_services.doctor_verify(doctor=user)
        user.doctor_profile.refresh_from_db()
    return user


def staff_user_suspend(*, actor: User, user: User) -> User:
    if user.pk == actor.pk:
        raise CannotActOnSelf()
    _refuse_deleted(user)
    return account_services.user_suspend(user=user)


def staff_user_reactivate(*, user: User) -> User:
    _refuse_deleted(user)
    return account_services.user_reactivate(user=user)


@transaction.atomic
def staff_user_delete(*, actor: User, user: User) -> User:
    """Deactivate and anonymize, keeping the clinical record (module docstring).

    1. suspend: sign-in blocked, every token revoked, sockets closed (``user_suspend``);
    2. remove the avatar file (after commit) and unused phone codes;
    3. blank what identifies or reaches the person, on the user and their profile.
    """
    if user.pk == actor.pk:
        raise CannotActOnSelf("Staff cannot delete their own account.")
    account_services.user_suspend(user=user)
    avatars.avatar_remove(user=user)
    PhoneVerification.objects.filter(user=user).delete()
    User.objects.filter(pk=user.pk).update(
        email=None,
        phone_number="",
        email_verified=False,
        phone_verified=False,
        first_name="Deleted",
        last_name="user",
        display_name="",
        preferred_language="",
        password="!",  # unusable: no password matches it
    )
    PatientProfile.objects.filter(user=user).update(date_of_birth=None)
    DoctorProfile.objects.filter(user=user).update(bio="")
    user.refresh_from_db()
    return user


def staff_call_end(*, actor: User, call: Call) -> Call:
    """Staff end any call: ``call_end`` records ``staff_ended`` and tells everyone on it."""
    return call_end(call=call, user=actor)


def staff_participant_remove(*, actor: User, call: Call, user_id) -> CallParticipant:
    """The host's removal, by staff: the removed user is told ``call.participant_removed`` and
    cannot rejoin; the others are told ``call.participant_left`` (reason ``removed``)."""
    return participant_remove(call=call, user=actor, participant_user_id=user_id)

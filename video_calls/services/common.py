"""Pieces every call service shares: locking a call, finding the caller's participant row, role
checks, who may reach whom, field errors in the documented shape, and the realtime events (who
hears what is decided here, once; docs/calls.md lists them)."""

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Role, User
from core.compiled import CompiledQuery
from core.events import call_group, send_on_commit, user_group
from core.exceptions import InvalidInput, PermissionDenied
from sessions.selectors import care_relation_ids
from video_calls.models import Call, CallParticipant, ParticipantRole, ParticipantStatus
from video_calls.selectors.calls import with_row_lock

# Roles that may run a call: they never wait in the waiting room and can take over as host.
CLINICIAN_ROLES = (ParticipantRole.DOCTOR, ParticipantRole.STAFF)


class NotHost(PermissionDenied):
    code = "NOT_HOST"
    default_message = "Only the host of the call can do this."


class NotParticipant(PermissionDenied):
    code = "NOT_PARTICIPANT"
    default_message = "You are not a participant of this call."


def invalid_field(field: str, message: str, code: str, *, error_code: str = InvalidInput.code) -> InvalidInput:
    """A refusal of one input field in the shape of docs/errors.md: ``details`` maps the field
    to a list of ``{message, code}``, exactly as a serializer's ``VALIDATION_ERROR`` does, so a
    client reads a service's field errors and a serializer's the same way."""
    return InvalidInput(message, code=error_code, details={field: [{"message": message, "code": code}]})


def users_reachable_by(*, user: User) -> QuerySet[User]:
    """The active users ``user`` may bring into a call: staff anyone; a doctor other clinicians
    and their patients; a patient their doctors ("their": the care relationship of
    ``sessions.selectors.care_relation_ids``). Anyone else is answered as unknown."""
    users = User.objects.filter(is_active=True)
    if user.is_clinic_staff:
        return users
    if user.is_doctor:
        return users.filter(Q(role__in=[Role.DOCTOR, Role.STAFF]) | Q(pk__in=care_relation_ids(user=user)))
    return users.filter(pk__in=care_relation_ids(user=user))


def lock_call(call: Call) -> Call:
    """Re-read ``call`` with a row lock for the rest of the transaction.

    Used where a rule spans several rows (room capacity, who is still connected when the call
    ends, passing the host): joins, leaves and ends of one call then run one after another, and
    each still checks the status with a conditional update.
    """
    return with_row_lock(Call.objects.all()).get(pk=call.pk)


def participant_role_for(user: User, *, patient_role: str = ParticipantRole.PATIENT) -> str:
    """Clinicians keep their role; a patient is ``patient`` in their own consultations and
    ``guest`` when invited into someone else's (a family member)."""
    if user.is_doctor:
        return ParticipantRole.DOCTOR
    if user.is_clinic_staff:
        return ParticipantRole.STAFF
    return patient_role


# One row at most (a participant row per user and call); compiled once: every join reads it.
_participant_row: CompiledQuery[CallParticipant] = CompiledQuery(
    lambda call_id, user_id: CallParticipant.objects.filter(call_id=call_id, user_id=user_id), "call_id", "user_id"
)


def participant_of(*, call: Call, user: User) -> CallParticipant | None:
    """``user``'s participant row in ``call``, with the caller's ``call`` and ``user`` attached
    rather than joined in again: the caller has just read both (the call often locked), and
    joining them in made every ``call.join`` on the hour read the two rows a second time."""
    participant = _participant_row.first(call_id=call.pk, user_id=user.pk)
    if participant is not None:
        participant.call, participant.user = call, user
    return participant


def require_participant(*, call: Call, user: User) -> CallParticipant:
    participant = participant_of(call=call, user=user)
    if participant is None:
        raise NotParticipant()
    return participant


def can_host(*, call: Call, user: User) -> bool:
    """The host runs the call; staff may always step in (they supervise every call)."""
    return user.pk == call.host_id or user.is_clinic_staff


def require_host(*, call: Call, user: User) -> None:
    if not can_host(call=call, user=user):
        raise NotHost()


def user_ref(user: User) -> dict[str, Any]:
    """Ids and roles only: event payloads carry no names (clients read them from the REST API)."""
    return {"id": str(user.pk), "role": user.role}


def call_ref(call: Call) -> dict[str, Any]:
    return {
        "call_id": str(call.pk),
        "kind": call.kind,
        "media": call.media,
        "status": call.status,
        "session_id": str(call.session_id) if call.session_id else None,
    }


def room_ref(call: Call) -> dict[str, Any]:
    """The payload of waiting-room events: which call, and which session it is the room of."""
    return {"call_id": str(call.pk), "session_id": str(call.session_id) if call.session_id else None}


def participant_ref(participant: CallParticipant) -> dict[str, Any]:
    return {
        "user": user_ref(participant.user),
        "role": participant.role,
        "status": participant.status,
        "audio_enabled": participant.audio_enabled,
        "video_enabled": participant.video_enabled,
        "screen_sharing": participant.screen_sharing,
    }


def participant_user_ids(call: Call) -> list[Any]:
    return list(CallParticipant.objects.filter(call=call).values_list("user_id", flat=True))


def notify_users(user_ids: Iterable[Any], event: str, data: dict[str, Any]) -> None:
    """Every device of each user, whether or not it is connected to the call's room."""
    send_on_commit([user_group(user_id) for user_id in dict.fromkeys(user_ids)], event, data)


def notify_call_room(call: Call, event: str, data: dict[str, Any]) -> None:
    """Connections that are in the call's room (the WebSocket layer subscribes joined participants)."""
    send_on_commit([call_group(call.pk)], event, data)


def notify_everyone(call: Call, event: str, data: dict[str, Any]) -> None:
    """The call's room and every participant's devices: lifecycle changes everyone must see."""
    groups = [call_group(call.pk), *(user_group(user_id) for user_id in dict.fromkeys(participant_user_ids(call)))]
    send_on_commit(groups, event, data)


def waiting_room_staff_ids(call: Call) -> list[Any]:
    """Who runs the queue of a call: the host and every clinician participant who is present."""
    ids = set(
        CallParticipant.objects.filter(
            call=call, role__in=CLINICIAN_ROLES, status=ParticipantStatus.JOINED
        ).values_list("user_id", flat=True)
    )
    if call.host_id:
        ids.add(call.host_id)
    if call.session_id:
        ids.add(call.session.doctor_id)
    return sorted(ids, key=str)


def notify_waiting_queue(call: Call, action: str, user: User, **extra: Any) -> None:
    """Tell whoever runs the call's waiting room (the host and clinicians present) that its queue
    changed: ``action`` is checked_in, left, admitted or sent_back."""
    notify_users(
        waiting_room_staff_ids(call),
        "waiting_room.updated",
        {**room_ref(call), "action": action, "participant": user_ref(user), **extra},
    )

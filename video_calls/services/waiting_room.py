"""The waiting room: the host admits a checked-in patient or sends a participant back.

Checking in happens in ``rooms.call_join``; the queue and the patient's view of it are reads
(``video_calls.selectors.waiting_room``). Admission only sets ``admitted``: the patient's client,
told by ``waiting_room.admitted``, calls join again and only then receives media credentials.
"""

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import Conflict, NotFound
from video_calls.models import Call, CallEventType, CallParticipant, ParticipantStatus
from video_calls.services.common import (
    CLINICIAN_ROLES,
    lock_call,
    notify_call_room,
    notify_users,
    require_host,
    user_ref,
    waiting_room_staff_ids,
)
from video_calls.services.rooms import ROOM_STATUSES
from video_calls.services.state import InvalidCallState, participant_transition


def target_participant(*, call: Call, user_id: UUID) -> CallParticipant:
    participant = CallParticipant.objects.select_related("user", "call").filter(call=call, user_id=user_id).first()
    if participant is None:
        raise NotFound("No such participant in this call.", code="PARTICIPANT_NOT_FOUND")
    return participant


def _queue_event(call: Call, action: str, participant: CallParticipant, by: User) -> None:
    notify_users(
        waiting_room_staff_ids(call),
        "waiting_room.updated",
        {
            "call_id": str(call.pk),
            "session_id": str(call.session_id) if call.session_id else None,
            "action": action,
            "participant": user_ref(participant.user),
            "by": user_ref(by),
        },
    )


@transaction.atomic
def participant_admit(*, call: Call, user: User, participant_user_id: UUID) -> CallParticipant:
    """Host-only: let a waiting patient or guest into the call."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.status not in ROOM_STATUSES:
        raise InvalidCallState(f"The call is {call.status}.", details={"status": call.status})
    participant = target_participant(call=call, user_id=participant_user_id)
    participant_transition(
        participant=participant,
        expected=[ParticipantStatus.WAITING],
        to=ParticipantStatus.ADMITTED,
        at=now,
        event_type=CallEventType.ADMITTED,
        actor=user,
        admitted_at=now,
    )
    notify_users(
        [participant.user_id],
        "waiting_room.admitted",
        {"call_id": str(call.pk), "session_id": str(call.session_id) if call.session_id else None},
    )
    _queue_event(call, "admitted", participant, user)
    return participant


@transaction.atomic
def participant_send_back(*, call: Call, user: User, participant_user_id: UUID) -> CallParticipant:
    """Host-only: move an admitted or connected patient or guest back to the waiting room. Their
    admission is withdrawn, so a rejoin waits again."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.status not in ROOM_STATUSES:
        raise InvalidCallState(f"The call is {call.status}.", details={"status": call.status})
    participant = target_participant(call=call, user_id=participant_user_id)
    if participant.role in CLINICIAN_ROLES or participant.user_id == call.host_id:
        raise Conflict("Clinicians and the host do not wait in the waiting room.", code="CANNOT_SEND_BACK")
    was_connected = participant.status == ParticipantStatus.JOINED
    participant_transition(
        participant=participant,
        expected=[ParticipantStatus.ADMITTED, ParticipantStatus.JOINED],
        to=ParticipantStatus.WAITING,
        at=now,
        event_type=CallEventType.SENT_BACK,
        actor=user,
        waiting_since=now,
        admitted_at=None,
        screen_sharing=False,
    )
    notify_users(
        [participant.user_id],
        "waiting_room.sent_back",
        {"call_id": str(call.pk), "session_id": str(call.session_id) if call.session_id else None},
    )
    if was_connected:
        notify_call_room(
            call,
            "call.participant_left",
            {"call_id": str(call.pk), "user": user_ref(participant.user), "reason": "sent_back"},
        )
    _queue_event(call, "sent_back", participant, user)
    return participant

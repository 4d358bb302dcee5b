"""The waiting room: the host admits a checked-in patient or sends a participant back.

Checking in happens in ``rooms.call_join``; the queue and the patient's view of it are reads
(``video_calls.selectors.waiting_room``). Admission only sets ``admitted``: the patient's client,
told by ``waiting_room.admitted``, calls join again and only then receives media credentials.
"""

from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import Conflict, NotFound
from video_calls.models import ROOM_STATUSES, Call, CallEventType, CallParticipant, ParticipantStatus
from video_calls.services.common import (
    CLINICIAN_ROLES,
    lock_call,
    notify_call_room,
    notify_users,
    notify_waiting_queue,
    require_host,
    room_ref,
    user_ref,
)
from video_calls.services.state import InvalidCallState, participant_transition


def target_participant(*, call: Call, user_id: UUID) -> CallParticipant:
    participant = CallParticipant.objects.select_related("user", "call").filter(call=call, user_id=user_id).first()
    if participant is None:
        raise NotFound("No such participant in this call.", code="PARTICIPANT_NOT_FOUND")
    return participant


def participant_admit_from_waiting(*, call: Call, participant: CallParticipant, by: User, now: datetime) -> None:
    """Move a waiting participant to admitted and tell them they may join: the one way out of
    the waiting room, whether the host admits them or arrives with the waiting room off."""
    participant_transition(
        participant=participant,
        expected=[ParticipantStatus.WAITING],
        to=ParticipantStatus.ADMITTED,
        at=now,
        event_type=CallEventType.ADMITTED,
        actor=by,
        admitted_at=now,
    )
    notify_users([participant.user_id], "waiting_room.admitted", room_ref(call))


@transaction.atomic
def participant_admit(*, call: Call, user: User, participant_user_id: UUID) -> CallParticipant:
    """Host-only: let a waiting patient or guest into the call."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.status not in ROOM_STATUSES:
        raise InvalidCallState(f"The call is {call.status}.", details={"status": call.status})
    participant = target_participant(call=call, user_id=participant_user_id)
    participant_admit_from_waiting(call=call, participant=participant, by=user, now=now)
    notify_waiting_queue(call, "admitted", participant.user, by=user_ref(user))
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
        room_ref(call),
    )
    if was_connected:
        notify_call_room(
            call,
            "call.participant_left",
            {"call_id": str(call.pk), "user": user_ref(participant.user), "reason": "sent_back"},
        )
    notify_waiting_queue(call, "sent_back", participant.user, by=user_ref(user))
    return participant

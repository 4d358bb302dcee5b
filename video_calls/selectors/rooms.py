"""Reads about who is in a call: the participant list, the clinician's waiting-room queue and a
waiting patient's view of it. Each starts from what the asker may see."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from accounts.models import User
from core.exceptions import PermissionDenied
from presence.models import PresenceStatus, UserPresence
from video_calls.models import Call, CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.common import require_participant


class CliniciansOnly(PermissionDenied):
    code = "CLINICIANS_ONLY"
    default_message = "Only doctors and clinic staff have a waiting-room queue."


def participant_list_for_call(*, call: Call) -> QuerySet[CallParticipant]:
    """Participants of a call the asker already obtained through ``call_get_for_user``."""
    return CallParticipant.objects.filter(call=call).select_related("user").order_by("invited_at", "id")


def waiting_queue_for_user(*, user: User) -> QuerySet[CallParticipant]:
    """Patients and guests waiting in the rooms the asker runs (as host, or as the session's
    doctor), longest-waiting first. Staff see the rooms they host, like doctors."""
    if not (user.is_doctor or user.is_clinic_staff):
        raise CliniciansOnly()
    return (
        CallParticipant.objects.filter(
            status=ParticipantStatus.WAITING, call__status__in=(CallStatus.WAITING, CallStatus.ONGOING)
        )
        .filter(Q(call__host=user) | Q(call__session__doctor=user))
        .select_related("user", "call", "call__session")
        .order_by("waiting_since", "id")
    )


HOST_IN_CALL = "in_call"
HOST_BUSY = "busy"
HOST_ONLINE = "online"
HOST_AWAY = "away"
HOST_OFFLINE = "offline"
HOST_STATUSES = (HOST_IN_CALL, HOST_BUSY, HOST_ONLINE, HOST_AWAY, HOST_OFFLINE)


@dataclass(frozen=True)
class WaitingStatus:
    call: Call
    participant: CallParticipant
    position: int | None
    host_status: str


def waiting_status_for_user(*, call: Call, user: User) -> WaitingStatus:
    """What a patient sees while waiting: their place in the queue and whether the host is in
    this call, busy (in another call, or do-not-disturb), online, away, or offline (from their
    presence)."""
    participant = require_participant(call=call, user=user)
    position = None
    if participant.status == ParticipantStatus.WAITING and participant.waiting_since:
        earlier = CallParticipant.objects.filter(
            call=call, status=ParticipantStatus.WAITING, waiting_since__lt=participant.waiting_since
        ).count()
        position = earlier + 1
    host_calls = CallParticipant.objects.filter(
        user_id=call.host_id, status=ParticipantStatus.JOINED, call__status=CallStatus.ONGOING
    ).values_list("call_id", flat=True)
    host_call_ids = set(host_calls)
    if call.pk in host_call_ids:
        host_status = HOST_IN_CALL
    elif host_call_ids:
        host_status = HOST_BUSY
    else:
        presence = UserPresence.objects.filter(user_id=call.host_id).values_list("status", flat=True).first()
        host_status = {
            PresenceStatus.ONLINE: HOST_ONLINE,
            PresenceStatus.AWAY: HOST_AWAY,
            PresenceStatus.BUSY: HOST_BUSY,
            PresenceStatus.DO_NOT_DISTURB: HOST_BUSY,
        }.get(presence, HOST_OFFLINE)
    return WaitingStatus(call=call, participant=participant, position=position, host_status=host_status)

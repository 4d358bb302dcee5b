"""Work the socket hands to Celery."""

from celery import shared_task


@shared_task
def leave_call_unless_reconnected(call_id: str, user_id: str) -> bool:
    """Leave the call for a user whose socket dropped, unless they have a connection in the
    call again (a reload, a network switch). Returns whether they were taken out."""
    from accounts.models import User
    from core.exceptions import ApplicationError
    from presence.models import PresenceConnection
    from video_calls.models import Call, CallParticipant, ParticipantStatus
    from video_calls.services.rooms import call_leave

    if PresenceConnection.objects.filter(call_id=call_id, user_id=user_id).exists():
        return False
    if not CallParticipant.objects.filter(call_id=call_id, user_id=user_id, status=ParticipantStatus.JOINED).exists():
        return False
    call = Call.objects.get(pk=call_id)
    try:
        call_leave(call=call, user=User.objects.get(pk=user_id))
    except ApplicationError:  # the call ended or they left in the meantime
        return False
    return True

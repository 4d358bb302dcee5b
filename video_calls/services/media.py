"""A connected participant's media state (microphone, camera, screen share), told to the room."""

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import InvalidInput, PermissionDenied
from video_calls.models import Call, CallMedia, CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.common import notify_call_room, require_participant
from video_calls.services.state import InvalidCallState, InvalidParticipantState


@transaction.atomic
def media_update(
    *,
    call: Call,
    user: User,
    audio_enabled: bool | None = None,
    video_enabled: bool | None = None,
    screen_sharing: bool | None = None,
) -> CallParticipant:
    """Only what is given changes. The update is conditional on the participant still being
    connected, so a state change cannot land after they left."""
    if call.status != CallStatus.ONGOING:
        raise InvalidCallState(f"The call is {call.status}.", details={"status": call.status})
    participant = require_participant(call=call, user=user)
    if screen_sharing and not call.screen_share_enabled:
        raise PermissionDenied("The host turned screen sharing off.", code="SCREEN_SHARE_DISABLED")
    if video_enabled and call.media == CallMedia.VOICE:
        raise InvalidInput("This is a voice call.", code="VOICE_CALL", details={"video_enabled": ["Voice call."]})
    changes = {
        name: value
        for name, value in (
            ("audio_enabled", audio_enabled),
            ("video_enabled", video_enabled),
            ("screen_sharing", screen_sharing),
        )
        if value is not None
    }
    updated = CallParticipant.objects.filter(pk=participant.pk, status=ParticipantStatus.JOINED).update(**changes)
    if updated != 1:
        raise InvalidParticipantState("You are not connected to this call.", details={"status": participant.status})
    participant.refresh_from_db()
    notify_call_room(
        call,
        "media.updated",
        {
            "call_id": str(call.pk),
            "user_id": str(user.pk),
            "audio_enabled": participant.audio_enabled,
            "video_enabled": participant.video_enabled,
            "screen_sharing": participant.screen_sharing,
            "at": timezone.now().isoformat(),
        },
    )
    return participant

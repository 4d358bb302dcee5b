"""A participant's media state (microphone, camera, screen share): what a join starts with, and
the changes of a connected participant, told to the room. It lives on the participant's row
(``CallParticipant.audio_enabled``, ``video_enabled``, ``screen_sharing``)."""

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import InvalidInput, PermissionDenied
from video_calls.models import Call, CallMedia, CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.common import invalid_field, notify_call_room, require_participant
from video_calls.services.state import InvalidCallState, InvalidParticipantState

VOICE_CALL = "VOICE_CALL"


def _refuse_video_in_voice_call() -> InvalidInput:
    return invalid_field("video_enabled", "This is a voice call.", "voice_call", error_code=VOICE_CALL)


def join_media_state(
    *, call: Call, user: User, audio_enabled: bool | None = None, video_enabled: bool | None = None
) -> dict[str, bool]:
    """The media state a join starts with: what the join asks for, else the user's meeting
    defaults (audio: ``default_audio_enabled`` and ``auto_join_audio`` — without automatic
    audio the client asks first, so the microphone starts off; video: ``default_video_enabled``).
    The room's ``mute_on_join`` wins over both (the participant can unmute afterwards); a voice
    call has no video, and asking for it is ``VOICE_CALL``. Nobody joins sharing a screen."""
    if video_enabled and call.media == CallMedia.VOICE:
        raise _refuse_video_in_voice_call()
    if audio_enabled is None:
        audio_enabled = user.default_audio_enabled and user.auto_join_audio
    if video_enabled is None:
        video_enabled = user.default_video_enabled
    return {
        "audio_enabled": audio_enabled and not call.mute_on_join,
        "video_enabled": video_enabled and call.media == CallMedia.VIDEO,
        "screen_sharing": False,
    }


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
        raise _refuse_video_in_voice_call()
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

"""Shapes of the call endpoints (``video_calls.apis.calls``): input validation and output.

Times are UTC ISO 8601. A call's passcode is never returned, only whether it has one.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.schema import error_response
from core.serializers import UnsetAsNullChoiceField
from video_calls.models import (
    CALL_SETTING_FLAGS,
    Call,
    CallMedia,
    CallParticipant,
    EndReason,
    ParticipantStatus,
    validate_participant_limit,
)
from video_calls.selectors.rooms import HOST_STATUSES, WaitingStatus
from video_calls.services.access import JoinResult


class UserBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(source="full_name", read_only=True)
    role = serializers.CharField(read_only=True, help_text="The user's account role: patient, doctor or staff.")


class CallParticipantSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer(read_only=True)
    display_name = serializers.SerializerMethodField(
        help_text="The name shown in this call: the one the latest join asked for, else the user's own "
        "(their profile's display name, else their full name)."
    )
    is_host = serializers.SerializerMethodField()

    class Meta:
        model = CallParticipant
        fields = [
            "user",
            "display_name",
            "role",
            "status",
            "is_host",
            "invited_at",
            "waiting_since",
            "first_joined_at",
            "joined_at",
            "left_at",
            "connected_seconds",
            "audio_enabled",
            "video_enabled",
            "screen_sharing",
        ]
        read_only_fields = fields

    def get_display_name(self, participant: CallParticipant) -> str:
        return participant.display_name or participant.user.shown_name

    def get_is_host(self, participant: CallParticipant) -> bool:
        host_id = self.context.get("host_id")
        if host_id is None:
            host_id = participant.call.host_id
        return participant.user_id == host_id


class CallSettingsSerializer(serializers.Serializer):
    max_participants = serializers.IntegerField(read_only=True)
    has_passcode = serializers.SerializerMethodField()
    allow_join_before_host = serializers.BooleanField(read_only=True)
    waiting_room_enabled = serializers.BooleanField(read_only=True)
    chat_enabled = serializers.BooleanField(read_only=True)
    screen_share_enabled = serializers.BooleanField(read_only=True)
    mute_on_join = serializers.BooleanField(read_only=True)
    recording_enabled = serializers.BooleanField(
        read_only=True, help_text="The media platform records the call; joining needs recording_consent."
    )
    auto_recording = serializers.BooleanField(read_only=True, help_text="Recording starts when the call starts.")

    def get_has_passcode(self, call: Call) -> bool:
        return bool(call.passcode_hash)


class CallSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(read_only=True, allow_null=True)
    host_id = serializers.UUIDField(read_only=True, allow_null=True)
    initiated_by_id = serializers.UUIDField(read_only=True)
    settings = CallSettingsSerializer(source="*", read_only=True)
    end_reason = UnsetAsNullChoiceField(choices=EndReason.choices, help_text="Why the call ended; null until it ends.")
    participants = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id",
            "kind",
            "media",
            "status",
            "session_id",
            "room_name",
            "title",
            "description",
            "scheduled_start",
            "scheduled_end",
            "host_id",
            "initiated_by_id",
            "settings",
            "created_at",
            "accepted_at",
            "started_at",
            "ended_at",
            "duration_seconds",
            "end_reason",
            "participants",
        ]
        read_only_fields = fields

    @extend_schema_field(CallParticipantSerializer(many=True))
    def get_participants(self, call: Call) -> list[dict[str, Any]]:
        participants = call.participants.all()
        return CallParticipantSerializer(participants, many=True, context={"host_id": call.host_id}).data


class IceServerSerializer(serializers.Serializer):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(required=False)
    credential = serializers.CharField(required=False)


class IceConfigurationSerializer(serializers.Serializer):
    ice_servers = IceServerSerializer(many=True)
    expires_at = serializers.DateTimeField()


class AgoraTokenSerializer(serializers.Serializer):
    app_id = serializers.CharField()
    token = serializers.CharField()
    uid = serializers.IntegerField()
    channel = serializers.CharField()
    expires_at = serializers.DateTimeField()


class JoinResponseSerializer(serializers.Serializer):
    """``waiting`` is true while the participant sits in the waiting room: then every credential
    field is null and the client waits for ``waiting_room.admitted`` before joining again."""

    call = CallSerializer()
    participant_status = serializers.ChoiceField(choices=ParticipantStatus.choices)
    waiting = serializers.BooleanField()
    ice_servers = IceServerSerializer(many=True, allow_null=True)
    ice_expires_at = serializers.DateTimeField(allow_null=True)
    websocket_url = serializers.CharField()
    agora = AgoraTokenSerializer(allow_null=True)


# --- The join's answer without the serializers ------------------------------------------------
# Every client of every call asks for it on the hour (the socket's ``call.join``, REST's join):
# built by hand, it costs a fraction of the nested serializers' CPU. The shapes are exactly the
# serializers' above (``JoinResponseSerializer``, which the schema documents; the tests compare
# the two field by field), and the datetimes go through DRF's own field, so their format follows
# REST_FRAMEWORK's settings as everywhere else.

_DATETIME = serializers.DateTimeField()


def _time(value: Any) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _participant_payload(participant: CallParticipant, host_id: Any) -> dict[str, Any]:
    user = participant.user
    return {
        "user": {"id": str(user.pk), "name": str(user.full_name), "role": str(user.role)},
        "display_name": participant.display_name or user.shown_name,
        "role": _text(participant.role),
        "status": _text(participant.status),
        "is_host": participant.user_id == host_id,
        "invited_at": _time(participant.invited_at),
        "waiting_since": _time(participant.waiting_since),
        "first_joined_at": _time(participant.first_joined_at),
        "joined_at": _time(participant.joined_at),
        "left_at": _time(participant.left_at),
        "connected_seconds": None if participant.connected_seconds is None else int(participant.connected_seconds),
        "audio_enabled": bool(participant.audio_enabled),
        "video_enabled": bool(participant.video_enabled),
        "screen_sharing": bool(participant.screen_sharing),
    }


def call_payload(call: Call) -> dict[str, Any]:
    """``CallSerializer(call).data`` for a call whose participants (with their users) are
    prefetched (``selectors.calls.call_with_participants``), in the same order."""
    return {
        "id": str(call.pk),
        "kind": _text(call.kind),
        "media": _text(call.media),
        "status": _text(call.status),
        "session_id": _text(call.session_id),
        "room_name": _text(call.room_name),
        "title": _text(call.title),
        "description": _text(call.description),
        "scheduled_start": _time(call.scheduled_start),
        "scheduled_end": _time(call.scheduled_end),
        "host_id": _text(call.host_id),
        "initiated_by_id": _text(call.initiated_by_id),
        "settings": {
            "max_participants": None if call.max_participants is None else int(call.max_participants),
            "has_passcode": bool(call.passcode_hash),
            **{name: bool(getattr(call, name)) for name in CALL_SETTING_FLAGS},
        },
        "created_at": _time(call.created_at),
        "accepted_at": _time(call.accepted_at),
        "started_at": _time(call.started_at),
        "ended_at": _time(call.ended_at),
        "duration_seconds": None if call.duration_seconds is None else int(call.duration_seconds),
        "end_reason": _text(call.end_reason) if call.end_reason else None,
        "participants": [_participant_payload(p, call.host_id) for p in call.participants.all()],
    }


def _ice_server_payload(server: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"urls": [str(url) for url in server["urls"]]}
    for name in ("username", "credential"):
        if name in server:
            payload[name] = str(server[name])
    return payload


def join_payload(result: JoinResult, call: Call) -> dict[str, Any]:
    """What a join answers (``JoinResponseSerializer``): ``call`` as ``call_payload`` takes it."""
    credentials = result.credentials
    agora = credentials.agora if credentials else None
    return {
        "call": call_payload(call),
        "participant_status": _text(result.participant.status),
        "waiting": credentials is None,
        "ice_servers": [_ice_server_payload(server) for server in credentials.ice.ice_servers] if credentials else None,
        "ice_expires_at": _time(credentials.ice.expires_at) if credentials else None,
        "websocket_url": str(settings.WEBSOCKET_PUBLIC_URL),
        "agora": {
            "app_id": str(agora.app_id),
            "token": str(agora.token),
            "uid": int(agora.uid),
            "channel": str(agora.channel),
            "expires_at": _time(agora.expires_at),
        }
        if agora
        else None,
    }


# --- Inputs -----------------------------------------------------------------------------------


class CallInitiateSerializer(serializers.Serializer):
    callee_id = serializers.UUIDField()
    media = serializers.ChoiceField(choices=CallMedia.choices, default=CallMedia.VIDEO)
    session_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class CallDeclineSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=[(EndReason.DECLINED, "Declined"), (EndReason.BUSY, "Busy")], default=EndReason.DECLINED
    )


class CallJoinSerializer(serializers.Serializer):
    """Left out, ``display_name`` is the user's own and the media state the user's meeting
    defaults (``default_audio_enabled`` with ``auto_join_audio``, ``default_video_enabled``)."""

    passcode = serializers.CharField(
        required=False, allow_blank=True, max_length=128, default="", trim_whitespace=False
    )
    display_name = serializers.CharField(
        required=False, max_length=150, help_text="The name shown to the others in this call."
    )
    audio_enabled = serializers.BooleanField(
        required=False, help_text="Join with the microphone on. The room's mute_on_join turns it off."
    )
    video_enabled = serializers.BooleanField(
        required=False, help_text="Join with the camera on; true in a voice call is 400 VOICE_CALL."
    )
    recording_consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Agree to being recorded: needed once per call while its recording is enabled "
        "(409 RECORDING_CONSENT_REQUIRED otherwise).",
    )


class MediaUpdateSerializer(serializers.Serializer):
    audio_enabled = serializers.BooleanField(required=False)
    video_enabled = serializers.BooleanField(required=False)
    screen_sharing = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give at least one of audio_enabled, video_enabled, screen_sharing.")
        return attrs


_LIMIT_HELP = "Between 2 and CALL_MAX_PARTICIPANTS (8 by default)."


def _participant_limit_field(**kwargs: Any) -> serializers.IntegerField:
    """The limit checked by the model's own validator, so the API and the admin share one cap."""
    return serializers.IntegerField(validators=[validate_participant_limit], help_text=_LIMIT_HELP, **kwargs)


class RoomSettingsSerializer(serializers.Serializer):
    """What the host may change; once the call started, not ``scheduled_start``,
    ``auto_recording``, nor ``recording_enabled`` to true (docs/calls.md)."""

    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    scheduled_start = serializers.DateTimeField(required=False, allow_null=True, help_text="Null clears it.")
    scheduled_end = serializers.DateTimeField(required=False, allow_null=True, help_text="Null clears it.")
    max_participants = _participant_limit_field(required=False)
    passcode = serializers.CharField(
        required=False, allow_blank=True, max_length=128, trim_whitespace=False, help_text="Empty removes it."
    )
    allow_join_before_host = serializers.BooleanField(required=False)
    waiting_room_enabled = serializers.BooleanField(required=False)
    chat_enabled = serializers.BooleanField(required=False)
    screen_share_enabled = serializers.BooleanField(required=False)
    mute_on_join = serializers.BooleanField(required=False)
    recording_enabled = serializers.BooleanField(required=False, help_text="False also turns auto_recording off.")
    auto_recording = serializers.BooleanField(required=False, help_text="Needs recording_enabled.")


class InviteSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()


class GroupConsultationCreateSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    scheduled_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    scheduled_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    media = serializers.ChoiceField(choices=CallMedia.choices, default=CallMedia.VIDEO)
    invitee_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100)
    max_participants = _participant_limit_field(required=False)
    passcode = serializers.CharField(
        required=False, allow_blank=True, max_length=128, default="", trim_whitespace=False
    )
    allow_join_before_host = serializers.BooleanField(required=False, default=False)
    waiting_room_enabled = serializers.BooleanField(required=False, default=True)
    chat_enabled = serializers.BooleanField(required=False, default=True)
    screen_share_enabled = serializers.BooleanField(required=False, default=True)
    mute_on_join = serializers.BooleanField(required=False, default=False)
    recording_enabled = serializers.BooleanField(required=False, default=False)
    auto_recording = serializers.BooleanField(required=False, default=False, help_text="Needs recording_enabled.")


# --- Waiting room -----------------------------------------------------------------------------


class WaitingQueueEntrySerializer(serializers.ModelSerializer):
    call_id = serializers.UUIDField(read_only=True)
    session_id = serializers.SerializerMethodField()
    scheduled_start = serializers.SerializerMethodField()
    user = UserBriefSerializer(read_only=True)

    class Meta:
        model = CallParticipant
        fields = ["call_id", "session_id", "scheduled_start", "user", "role", "waiting_since"]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_session_id(self, participant: CallParticipant) -> str | None:
        return str(participant.call.session_id) if participant.call.session_id else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_scheduled_start(self, participant: CallParticipant) -> str | None:
        session = participant.call.session
        return serializers.DateTimeField().to_representation(session.scheduled_start) if session else None


class WaitingQueuePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = WaitingQueueEntrySerializer(many=True)


class WaitingStatusSerializer(serializers.Serializer):
    call_id = serializers.UUIDField()
    participant_status = serializers.ChoiceField(choices=ParticipantStatus.choices)
    waiting_since = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField(allow_null=True)
    host_status = serializers.ChoiceField(choices=HOST_STATUSES)


def waiting_status_payload(status: WaitingStatus) -> dict[str, Any]:
    return WaitingStatusSerializer(
        {
            "call_id": status.call.pk,
            "participant_status": status.participant.status,
            "waiting_since": status.participant.waiting_since,
            "position": status.position,
            "host_status": status.host_status,
        }
    ).data


# --- Error answers of the meeting endpoints, as the schema describes them (docs/calls.md) -------

_FIELD_ERRORS = "VALIDATION_ERROR: details.<field> is a list of {message, code}"

GROUP_CREATE_ERRORS = {
    400: error_response(
        f"{_FIELD_ERRORS}; the services' codes: out_of_range (max_participants), includes_host (invitee_ids), "
        "in_past, before_start, too_long (planned times), needs_recording (auto_recording)."
    ),
    403: error_response("CLINICIANS_ONLY: patients do not set up group consultations."),
    404: error_response("USER_NOT_FOUND: details.invitee_ids lists those unknown or out of the creator's reach."),
}
SETTINGS_UPDATE_ERRORS = {
    400: error_response(
        f"{_FIELD_ERRORS}; the services' codes: out_of_range (max_participants), in_past, before_start, "
        "too_long, session_schedule (planned times), needs_recording (auto_recording)."
    ),
    403: error_response("NOT_HOST: only the host (or staff) changes a room."),
    404: error_response("CALL_NOT_FOUND: unknown, or not yours."),
    409: error_response(
        "INVALID_CALL_STATE: an ad-hoc or ended call; or, once the call started, a change of scheduled_start "
        "or auto_recording, or recording_enabled turned on (details.fields names them)."
    ),
}
JOIN_ERRORS = {
    400: error_response(f"{_FIELD_ERRORS}. VOICE_CALL: video_enabled true in a voice call."),
    403: error_response("NOT_PARTICIPANT, PARTICIPANT_REMOVED, INVALID_PASSCODE."),
    404: error_response(
        "CALL_NOT_FOUND: unknown, or not yours. NOT_FOUND: the sessions app refusing to record the join."
    ),
    409: error_response(
        "INVALID_CALL_STATE, INVALID_PARTICIPANT_STATE, ROOM_FULL (details.max_participants), "
        "RECORDING_CONSENT_REQUIRED (the call is recorded: join again with recording_consent true), or a "
        "join-window refusal: SESSION_CANCELLED, SESSION_COMPLETED, NOT_CONFIRMED, PAYMENT_PENDING, TOO_EARLY, "
        "WINDOW_CLOSED (details.reason, opens_at, closes_at)."
    ),
}
END_ERRORS = {
    403: error_response("NOT_HOST (a room), NOT_PARTICIPANT (an ad-hoc call you are not on, unless staff)."),
    404: error_response("CALL_NOT_FOUND: unknown, or not yours."),
    409: error_response(
        "INVALID_CALL_STATE: the call already ended, or it rings (cancel or decline it). "
        "INVALID_PARTICIPANT_STATE: a participant's state changed while the call was being ended."
    ),
}

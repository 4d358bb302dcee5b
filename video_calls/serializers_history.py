"""Input validation and output shapes of the history, statistics and quality-metric endpoints.

Output serializers are read-only projections of what the selectors loaded: none of them may
touch the database (the history list's query budget depends on it). Names of people are the
public ``first last`` only; e-mail addresses and phone numbers never appear in a call record.
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import UnsetAsNullChoiceField
from video_calls.models import (
    Call,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallQualitySample,
    CallStatus,
    EndReason,
    ParticipantRole,
    QualityGrade,
)
from video_calls.selectors.history import STATISTICS_PERIODS, call_quality_assessment
from video_calls.serializers import CallParticipantSerializer, UserBriefSerializer
from video_calls.services.quality import QUALITY_METRIC_FIELDS, QualityAssessment, quality_assess

# --- Quality sample input ----------------------------------------------------------------------


class MeasuredNumberField(serializers.FloatField):
    """A finite number (JSON number or numeric string); booleans are not numbers here even
    though Python would accept them as 0 and 1."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class MeasuredWholeField(MeasuredNumberField):
    """Whole units (ms, kbps, MB, pixels). WebRTC statistics arrive as fractions; they are
    rounded to the nearest unit instead of refused."""

    def to_internal_value(self, data: Any) -> int:
        return round(super().to_internal_value(data))


_CENT = Decimal("0.01")
_DECIMAL_FIELDS = ("packet_loss_percent", "frame_rate", "cpu_percent")


def _optional(field_class: type[serializers.Field], **kwargs: Any) -> serializers.Field:
    return field_class(required=False, allow_null=True, **kwargs)


class QualitySampleInputSerializer(serializers.Serializer):
    """One measurement. Every field is optional (clients report what their stack exposes) but
    at least one must be present; the ranges match the columns that store them."""

    rtt_ms = _optional(MeasuredWholeField, min_value=0, max_value=60_000, help_text="Round-trip time, ms.")
    packet_loss_percent = _optional(MeasuredNumberField, min_value=0, max_value=100, help_text="Percent, 2 decimals.")
    jitter_ms = _optional(MeasuredWholeField, min_value=0, max_value=60_000, help_text="Jitter, ms.")
    audio_bitrate_kbps = _optional(MeasuredWholeField, min_value=0, max_value=100_000)
    video_bitrate_kbps = _optional(MeasuredWholeField, min_value=0, max_value=100_000)
    resolution_width = _optional(MeasuredWholeField, min_value=1, max_value=7680, help_text="Video width, pixels.")
    resolution_height = _optional(MeasuredWholeField, min_value=1, max_value=4320, help_text="Video height, pixels.")
    frame_rate = _optional(MeasuredNumberField, min_value=0, max_value=240, help_text="Frames per second.")
    cpu_percent = _optional(MeasuredNumberField, min_value=0, max_value=100, help_text="Client CPU use, percent.")
    memory_mb = _optional(MeasuredWholeField, min_value=0, max_value=1_048_576, help_text="Client memory use, MB.")
    audio_quality = _optional(serializers.ChoiceField, choices=QualityGrade.choices)
    video_quality = _optional(serializers.ChoiceField, choices=QualityGrade.choices)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if all(attrs.get(name) is None for name in QUALITY_METRIC_FIELDS):
            raise serializers.ValidationError("Send at least one metric.", code="empty_sample")
        if (attrs.get("resolution_width") is None) != (attrs.get("resolution_height") is None):
            raise serializers.ValidationError(
                {"resolution_height": "Send resolution_width and resolution_height together."},
                code="incomplete_resolution",
            )
        for name in _DECIMAL_FIELDS:
            if attrs.get(name) is not None:
                attrs[name] = Decimal(repr(attrs[name])).quantize(_CENT, rounding=ROUND_HALF_UP)
        return attrs


# --- Shared output pieces ----------------------------------------------------------------------


class CallPeerSerializer(serializers.ModelSerializer):
    """Another participant of a call as a history row shows them."""

    user_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = CallParticipant
        fields = ["user_id", "name", "role", "status"]
        read_only_fields = fields


class _CallSummaryFields(serializers.ModelSerializer):
    initiated_by = UserBriefSerializer(read_only=True)
    end_reason = UnsetAsNullChoiceField(choices=EndReason.choices, help_text="Why the call ended; null until it ends.")
    quality_assessment = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=QualityAssessment.choices, allow_null=True))
    def get_quality_assessment(self, call: Call) -> str | None:
        return call_quality_assessment(call)


_CALL_ROW_FIELDS = [
    "id",
    "kind",
    "media",
    "status",
    "session_id",
    "initiated_by",
    "created_at",
    "accepted_at",
    "started_at",
    "ended_at",
    "duration_seconds",
    "end_reason",
    "quality_assessment",
]


class CallHistoryRowSerializer(_CallSummaryFields):
    """A row of the history list. ``other_participants`` leaves out the user who asks."""

    session_id = serializers.UUIDField(read_only=True, allow_null=True)
    other_participants = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [*_CALL_ROW_FIELDS, "other_participants"]
        read_only_fields = fields

    @extend_schema_field(CallPeerSerializer(many=True))
    def get_other_participants(self, call: Call) -> list[dict[str, Any]]:
        viewer_id = self.context["request"].user.pk
        peers = [participant for participant in call.participants.all() if participant.user_id != viewer_id]
        return CallPeerSerializer(peers, many=True).data


# --- Detail ------------------------------------------------------------------------------------


class QualitySummarySerializer(serializers.Serializer):
    sample_count = serializers.IntegerField()
    avg_rtt_ms = serializers.FloatField(allow_null=True)
    min_rtt_ms = serializers.IntegerField(allow_null=True)
    max_rtt_ms = serializers.IntegerField(allow_null=True)
    avg_packet_loss_percent = serializers.FloatField(allow_null=True)
    avg_jitter_ms = serializers.FloatField(allow_null=True)
    avg_audio_bitrate_kbps = serializers.FloatField(allow_null=True)
    avg_video_bitrate_kbps = serializers.FloatField(allow_null=True)
    avg_frame_rate = serializers.FloatField(allow_null=True)
    worst_audio_quality = serializers.ChoiceField(choices=QualityGrade.choices, allow_null=True)
    worst_video_quality = serializers.ChoiceField(choices=QualityGrade.choices, allow_null=True)
    assessment = serializers.ChoiceField(choices=QualityAssessment.choices, allow_null=True)


class CallParticipantDetailSerializer(CallParticipantSerializer):
    """A participant as call detail shows them: the room's view plus their quality summary."""

    quality = QualitySummarySerializer(source="quality_summary", read_only=True)

    class Meta(CallParticipantSerializer.Meta):
        fields = [*CallParticipantSerializer.Meta.fields, "quality"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "enum": CallEventType.values}, component_name="CallEventTypeEnum")
class CallEventTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CallEventType.choices, **kwargs)


class CallEventSerializer(serializers.Serializer):
    type = CallEventTypeField(read_only=True)
    at = serializers.DateTimeField(read_only=True)
    actor = UserBriefSerializer(read_only=True, allow_null=True)
    subject = UserBriefSerializer(read_only=True, allow_null=True)
    data = serializers.DictField(read_only=True)


class CallDetailSerializer(_CallSummaryFields):
    session_id = serializers.UUIDField(read_only=True, allow_null=True)
    host = UserBriefSerializer(read_only=True, allow_null=True)
    ended_by = UserBriefSerializer(read_only=True, allow_null=True)
    participants = CallParticipantDetailSerializer(many=True, read_only=True)
    timeline = CallEventSerializer(source="events", many=True, read_only=True)

    class Meta:
        model = Call
        fields = [*_CALL_ROW_FIELDS, "title", "host", "ended_by", "participants", "timeline"]
        read_only_fields = fields


# --- Quality samples output --------------------------------------------------------------------


class QualitySampleSerializer(serializers.ModelSerializer):
    call_id = serializers.UUIDField(read_only=True)
    user = UserBriefSerializer(source="participant.user", read_only=True)
    role = serializers.ChoiceField(source="participant.role", choices=ParticipantRole.choices, read_only=True)
    packet_loss_percent = serializers.FloatField(read_only=True, allow_null=True)
    frame_rate = serializers.FloatField(read_only=True, allow_null=True)
    cpu_percent = serializers.FloatField(read_only=True, allow_null=True)
    audio_quality = serializers.ChoiceField(choices=QualityGrade.choices, read_only=True, allow_null=True)
    video_quality = serializers.ChoiceField(choices=QualityGrade.choices, read_only=True, allow_null=True)
    assessment = serializers.SerializerMethodField()

    class Meta:
        model = CallQualitySample
        fields = ["id", "call_id", "user", "role", "recorded_at", *QUALITY_METRIC_FIELDS, "assessment"]
        read_only_fields = fields

    def to_representation(self, sample: CallQualitySample) -> dict[str, Any]:
        data = super().to_representation(sample)
        # Stored as "" when not reported; the API says null for every unreported figure.
        for grade in ("audio_quality", "video_quality"):
            data[grade] = data[grade] or None
        return data

    @extend_schema_field(serializers.ChoiceField(choices=QualityAssessment.choices, allow_null=True))
    def get_assessment(self, sample: CallQualitySample) -> str | None:
        return quality_assess(
            rtt_ms=sample.rtt_ms, packet_loss_percent=sample.packet_loss_percent, jitter_ms=sample.jitter_ms
        )


# --- Statistics --------------------------------------------------------------------------------


class StatisticsQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(
        choices=sorted(STATISTICS_PERIODS), required=False, help_text="Last 7, 30 or 90 days (default 30d)."
    )
    date_from = serializers.DateField(required=False, help_text="First day (UTC), YYYY-MM-DD.")
    date_to = serializers.DateField(required=False, help_text="Last day (UTC), YYYY-MM-DD.")
    scope = serializers.ChoiceField(
        choices=["all", "mine"],
        default="all",
        help_text="all: every call you may see (staff: all calls); mine: calls you took part in.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        date_from, date_to = attrs.get("date_from"), attrs.get("date_to")
        if attrs.get("period") and (date_from or date_to):
            raise serializers.ValidationError("Send either period or date_from/date_to, not both.", code="ambiguous")
        if date_from and date_to and date_from > date_to:
            raise serializers.ValidationError({"date_to": "Must be on or after date_from."}, code="invalid_range")
        if not (attrs.get("period") or date_from or date_to):
            attrs["period"] = "30d"
        return attrs


def _totals_serializer(name: str, values: list[str]) -> serializers.Serializer:
    fields = {value: serializers.IntegerField() for value in values}
    return type(name, (serializers.Serializer,), fields)()


class CallStatisticsSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["all", "mine"])
    period_start = serializers.DateTimeField(allow_null=True, help_text="Inclusive; null when unbounded.")
    period_end = serializers.DateTimeField(allow_null=True, help_text="Exclusive; null when unbounded.")
    total = serializers.IntegerField()
    by_status = _totals_serializer("CallStatusTotals", CallStatus.values)
    by_kind = _totals_serializer("CallKindTotals", CallKind.values)
    by_media = _totals_serializer("CallMediaTotals", CallMedia.values)
    average_duration_seconds = serializers.FloatField(
        allow_null=True, help_text="Mean duration of completed calls; null when there are none."
    )
    total_duration_seconds = serializers.IntegerField(help_text="Summed duration of completed calls.")

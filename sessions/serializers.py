"""Request and response shapes of the session and payment endpoints. Times are UTC ISO 8601."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Role, User
from core.serializers import UnsetAsNullChoiceField
from sessions.join_window import REASONS, JoinDecision
from sessions.models import (
    NoShowParty,
    Payment,
    PaymentKind,
    PaymentSource,
    PaymentStatus,
    Session,
    SessionStatus,
    SessionType,
)
from sessions.services.payments import EVENT_TYPES

# --- Enums with one schema name each -------------------------------------------------------
# Several serializers have a field called ``status`` with different choice sets; naming each set's
# schema component once keeps the OpenAPI enums unambiguous for client generators.


def named_choice_field(component_name: str, choices) -> type[serializers.ChoiceField]:
    """A ChoiceField whose enum is the schema component ``component_name``."""
    values = [value for value, _label in choices]

    @extend_schema_field({"type": "string", "enum": values}, component_name=component_name)
    class NamedChoiceField(serializers.ChoiceField):
        def __init__(self, **kwargs) -> None:
            super().__init__(choices=choices, **kwargs)

    NamedChoiceField.__name__ = f"{component_name}Field"
    return NamedChoiceField


SessionStatusField = named_choice_field("SessionStatus", SessionStatus.choices)
PaymentStatusField = named_choice_field("PaymentStatus", PaymentStatus.choices)
ParticipantRoleField = named_choice_field("ParticipantRole", Role.choices)
PaymentKindField = named_choice_field("PaymentKind", PaymentKind.choices)
PaymentSourceField = named_choice_field("PaymentSource", PaymentSource.choices)
JoinRefusalReasonField = named_choice_field("JoinRefusalReason", [(reason, reason) for reason in REASONS])
WebhookResultField = named_choice_field("WebhookResultCode", [(r, r) for r in ("processed", "duplicate", "ignored")])


# --- Output ---------------------------------------------------------------------------------


class ParticipantSerializer(serializers.ModelSerializer):
    """What each participant sees of the other: no email, phone or date of birth."""

    role = ParticipantRoleField(read_only=True)
    time_zone = serializers.SerializerMethodField()
    specialty = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "full_name", "role", "time_zone", "specialty"]
        read_only_fields = fields

    def _profile(self, user: User):
        name = "doctor_profile" if user.is_doctor else "patient_profile"
        return getattr(user, name, None)

    @extend_schema_field(OpenApiTypes.STR)
    def get_time_zone(self, user: User) -> str:
        profile = self._profile(user)
        return profile.time_zone if profile is not None else "UTC"

    @extend_schema_field({"type": "string", "nullable": True})
    def get_specialty(self, user: User) -> str | None:
        profile = self._profile(user) if user.is_doctor else None
        return profile.specialty if profile is not None else None


class SessionSerializer(serializers.ModelSerializer):
    doctor = ParticipantSerializer(read_only=True)
    patient = ParticipantSerializer(read_only=True)
    scheduled_end = serializers.DateTimeField(read_only=True)
    cancelled_by = serializers.UUIDField(source="cancelled_by_id", read_only=True, allow_null=True)
    status = SessionStatusField(read_only=True)
    payment_status = PaymentStatusField(read_only=True)
    no_show_party = UnsetAsNullChoiceField(
        choices=NoShowParty.choices, help_text="Who missed a no-show session; null otherwise."
    )

    class Meta:
        model = Session
        fields = [
            "id",
            "doctor",
            "patient",
            "scheduled_start",
            "scheduled_end",
            "duration_minutes",
            "session_type",
            "reason",
            "status",
            "payment_status",
            "price",
            "currency",
            "confirmed_at",
            "actual_start",
            "actual_end",
            "doctor_joined_at",
            "patient_joined_at",
            "no_show_party",
            "refund_requested_at",
            "cancellation_reason",
            "cancelled_by",
            "cancelled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    status = PaymentStatusField(read_only=True)
    kind = PaymentKindField(read_only=True)
    source = PaymentSourceField(read_only=True)

    class Meta:
        model = Payment
        fields = ["id", "kind", "status", "amount", "currency", "source", "provider_payment_id", "note", "created_at"]
        read_only_fields = fields


class JoinWindowSerializer(serializers.Serializer):
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()


class CanJoinSerializer(serializers.Serializer):
    can_join = serializers.BooleanField()
    reason = JoinRefusalReasonField(allow_null=True)
    minutes_until_start = serializers.IntegerField(min_value=0)
    session_status = SessionStatusField()
    payment_status = PaymentStatusField()
    window = JoinWindowSerializer()

    @classmethod
    def from_decision(cls, decision: JoinDecision) -> "CanJoinSerializer":
        return cls(
            {
                "can_join": decision.can_join,
                "reason": decision.reason,
                "minutes_until_start": decision.minutes_until_start,
                "session_status": decision.session_status,
                "payment_status": decision.payment_status,
                "window": {"opens_at": decision.opens_at, "closes_at": decision.closes_at},
            }
        )


class WebhookResultSerializer(serializers.Serializer):
    result = WebhookResultField()
    payment_id = serializers.UUIDField(allow_null=True)


# --- Input ----------------------------------------------------------------------------------


class SessionCreateSerializer(serializers.Serializer):
    doctor_id = serializers.UUIDField(required=False, help_text="Required unless a doctor books in their own calendar.")
    patient_id = serializers.UUIDField(required=False, help_text="Required unless a patient books for themselves.")
    scheduled_start = serializers.DateTimeField(help_text="ISO 8601; an offset is honoured, none means UTC.")
    duration_minutes = serializers.IntegerField(
        required=False, min_value=1, max_value=24 * 60, help_text="Defaults to the doctor's consultation length."
    )
    session_type = serializers.ChoiceField(choices=SessionType.choices, default=SessionType.INITIAL)
    reason = serializers.CharField(max_length=2000, allow_blank=True, default="", trim_whitespace=True)


class SessionRescheduleSerializer(serializers.Serializer):
    scheduled_start = serializers.DateTimeField()
    duration_minutes = serializers.IntegerField(required=False, min_value=1, max_value=24 * 60)


class SessionCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, allow_blank=True, default="")


class MarkPaidSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False, help_text="Defaults to the session's price."
    )
    provider_payment_id = serializers.CharField(max_length=255, allow_blank=True, default="")
    note = serializers.CharField(max_length=500, allow_blank=True, default="")


class MarkRefundedSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False, help_text="Defaults to the session's price."
    )
    note = serializers.CharField(max_length=500, allow_blank=True, default="")


class WebhookDataSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$")
    payment_id = serializers.CharField(max_length=255, allow_blank=True, default="")


class WebhookEventSerializer(serializers.Serializer):
    """The provider's event (docs/payments.md). Unknown ``type`` values are acknowledged and ignored."""

    id = serializers.CharField(max_length=255)
    type = serializers.CharField(max_length=100, help_text=f"One of {', '.join(EVENT_TYPES)}; others are ignored.")
    created = serializers.IntegerField(required=False, min_value=0)
    data = WebhookDataSerializer()

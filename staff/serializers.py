"""What the staff console answers. Names are shown (the console is for the clinic's staff);
times are UTC like the rest of the API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Role, User
from core.serializers import UnsetAsNullChoiceField
from staff.selectors import GRANULARITIES, USER_STATUSES, AnalyticsRange, user_status
from video_calls.models import Call, CallKind, CallMedia, CallParticipant, CallStatus, EndReason

# The longest range analytics answers, per granularity: a bounded number of periods.
MAX_RANGE_DAYS = {"day": 366, "week": 366 * 2, "month": 366 * 5}


class DashboardSerializer(serializers.Serializer):
    calls_active = serializers.IntegerField()
    sessions_today = serializers.IntegerField()
    no_shows_this_week = serializers.IntegerField()
    average_call_quality = serializers.FloatField(allow_null=True, help_text="5 excellent … 1 bad, last 24 hours.")
    quality_reports = serializers.IntegerField()
    users_online = serializers.IntegerField()
    time_zone = serializers.CharField(help_text="The clinic's zone, in which today and this week are counted.")
    at = serializers.DateTimeField()


class AnalyticsQuerySerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    granularity = serializers.ChoiceField(choices=list(GRANULARITIES), default="day")

    def validate(self, attrs: dict) -> dict:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["Must not be before start."]}, code="invalid_range")
        limit = MAX_RANGE_DAYS[attrs["granularity"]]
        if (attrs["end"] - attrs["start"]).days >= limit:
            raise serializers.ValidationError(
                {"end": [f"At most {limit} days with granularity {attrs['granularity']}."]}, code="range_too_long"
            )
        return attrs

    def to_range(self) -> AnalyticsRange:
        return AnalyticsRange(**self.validated_data)


class NewUsersSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    doctor = serializers.IntegerField()
    staff = serializers.IntegerField()


class AnalyticsPeriodSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    calls = serializers.IntegerField()
    calls_completed = serializers.IntegerField()
    average_call_seconds = serializers.FloatField(allow_null=True)
    sessions = serializers.IntegerField()
    sessions_completed = serializers.IntegerField()
    no_shows = serializers.IntegerField()
    completion_rate = serializers.FloatField(allow_null=True)
    no_show_rate = serializers.FloatField(allow_null=True)
    new_users = NewUsersSerializer()


class AnalyticsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    granularity = serializers.ChoiceField(choices=list(GRANULARITIES))
    time_zone = serializers.CharField()
    periods = AnalyticsPeriodSerializer(many=True)


class StaffUserQuerySerializer(serializers.Serializer):
    search = serializers.CharField(required=False, default="", max_length=200)
    role = serializers.ChoiceField(choices=Role.choices, required=False, default="")
    status = serializers.ChoiceField(choices=USER_STATUSES, required=False, default="")


class StaffUserSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    specialty = serializers.SerializerMethodField()
    doctor_verified = serializers.SerializerMethodField()
    time_zone = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "phone_number",
            "first_name",
            "last_name",
            "display_name",
            "role",
            "status",
            "is_staff",
            "email_verified",
            "phone_verified",
            "specialty",
            "doctor_verified",
            "time_zone",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=USER_STATUSES))
    def get_status(self, user: User) -> str:
        return user_status(user)

    def _profile(self, user: User):
        return getattr(user, "doctor_profile", None) if user.is_doctor else getattr(user, "patient_profile", None)

    def get_specialty(self, user: User) -> str | None:
        profile = getattr(user, "doctor_profile", None) if user.is_doctor else None
        return profile.specialty if profile else None

    def get_doctor_verified(self, user: User) -> bool | None:
        profile = getattr(user, "doctor_profile", None) if user.is_doctor else None
        return profile.is_verified if profile else None

    def get_time_zone(self, user: User) -> str | None:
        profile = self._profile(user)
        return profile.time_zone if profile else None


class StaffUserUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    doctor_verified = serializers.BooleanField(required=False, help_text="true verifies a doctor; false is ignored.")


class StaffPersonSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(source="shown_name")
    role = serializers.ChoiceField(choices=Role.choices)


class StaffParticipantSerializer(serializers.ModelSerializer):
    user = StaffPersonSerializer()

    class Meta:
        model = CallParticipant
        fields = ["user", "role", "status", "first_joined_at", "joined_at", "left_at", "connected_seconds"]
        read_only_fields = fields


class StaffCallQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("active", "Any live status"), *CallStatus.choices], required=False)
    kind = serializers.ChoiceField(choices=CallKind.choices, required=False)
    media = serializers.ChoiceField(choices=CallMedia.choices, required=False)


class StaffCallSerializer(serializers.ModelSerializer):
    host = StaffPersonSerializer(allow_null=True)
    initiated_by = StaffPersonSerializer()
    participants = StaffParticipantSerializer(many=True)
    end_reason = UnsetAsNullChoiceField(choices=EndReason.choices, help_text="Why the call ended; null until it ends.")

    class Meta:
        model = Call
        fields = [
            "id",
            "kind",
            "media",
            "status",
            "title",
            "session",
            "host",
            "initiated_by",
            "participants",
            "created_at",
            "started_at",
            "ended_at",
            "duration_seconds",
            "end_reason",
        ]
        read_only_fields = fields

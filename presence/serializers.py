from rest_framework import serializers

from accounts.models import Role
from presence.models import CHOOSABLE_STATUS_CHOICES, PresenceStatus, UserPresence


class PresenceSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=PresenceStatus.choices, read_only=True)

    class Meta:
        model = UserPresence
        fields = ["user_id", "status", "chosen_status", "last_seen_at"]
        read_only_fields = fields


class OnlineDoctorSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    specialty = serializers.CharField(source="user.doctor_profile.specialty", read_only=True)

    class Meta:
        model = UserPresence
        fields = ["user_id", "full_name", "specialty", "status", "last_seen_at"]
        read_only_fields = fields


class OnlineUserSerializer(serializers.ModelSerializer):
    """One connected user; ``specialty`` only for doctors (null otherwise). No contact details."""

    user_id = serializers.UUIDField(read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    role = serializers.ChoiceField(source="user.role", choices=Role.choices, read_only=True)
    specialty = serializers.SerializerMethodField()

    class Meta:
        model = UserPresence
        fields = ["user_id", "full_name", "role", "specialty", "status", "last_seen_at"]
        read_only_fields = fields

    def get_specialty(self, presence: UserPresence) -> str | None:
        profile = getattr(presence.user, "doctor_profile", None) if presence.user.is_doctor else None
        return profile.specialty if profile is not None else None


class OnlineUsersQuerySerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)


class PresenceUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CHOOSABLE_STATUS_CHOICES)

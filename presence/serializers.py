from rest_framework import serializers

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


class PresenceUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CHOOSABLE_STATUS_CHOICES)

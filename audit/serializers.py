"""The audit entry as the staff API shows it: ids, never health data."""

from rest_framework import serializers

from audit.models import AuditEntry

FIELDS = [
    "id",
    "occurred_at",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "record_type",
    "record_ids",
    "outcome",
    "status_code",
    "method",
    "route",
    "path",
    "request_id",
    "ip_address",
    "user_agent",
]


class AuditEntrySerializer(serializers.ModelSerializer):
    actor_id = serializers.UUIDField(read_only=True, allow_null=True)
    record_ids = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = AuditEntry
        fields = FIELDS
        read_only_fields = FIELDS

"""What the attachment endpoints accept and answer. A name is decrypted here, for whoever may
read the attachment; storage names and keys never leave the server."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import Attachment, AttachmentAccess
from messaging.services.attachments import attachment_name


class AttachmentUploadSerializer(serializers.Serializer):
    """A multipart upload: the file, who it is for (``access``) and, when shared, with what."""

    file = serializers.FileField(allow_empty_file=False, use_url=False)
    access = serializers.ChoiceField(choices=AttachmentAccess.choices, default=AttachmentAccess.PRIVATE)
    conversation_id = serializers.UUIDField(
        required=False, help_text="For `shared_conversation`: the conversation (you are a member of)."
    )
    call_id = serializers.UUIDField(required=False, help_text="For `shared_call`: the call (you take part in).")


class AttachmentSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    call_id = serializers.UUIDField(read_only=True, allow_null=True)
    owner_id = serializers.UUIDField(read_only=True)
    message_id = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "owner_id",
            "name",
            "content_type",
            "size",
            "access",
            "conversation_id",
            "call_id",
            "message_id",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_name(self, attachment: Attachment) -> str | None:
        """The sanitized original name (null if its key is no longer configured)."""
        return attachment_name(attachment)

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_message_id(self, attachment: Attachment) -> str | None:
        """The message it was sent in, if any."""
        message = getattr(attachment, "message", None)
        return str(message.pk) if message is not None else None

"""What messaging answers and accepts, over REST and in socket events alike.

A message's body is decrypted here, for whoever the message is being shown to; a body whose key
is gone is shown as ``body: null, body_unreadable: true`` (and logged, without the body), so one
such message never breaks a list.
"""

import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.encryption import BodyUnreadable, decrypt_body
from messaging.models import Conversation, Message, MessageReceipt, MessageType
from messaging.services.attachments import attachment_name

logger = logging.getLogger(__name__)


def readable_body(message: Message) -> tuple[str | None, bool]:
    """``(body, unreadable)``: None for a deleted message, or one no configured key opens."""
    if message.is_deleted or not message.body_encrypted:
        return None, False
    if not hasattr(message, "_plaintext"):
        try:
            message._plaintext = decrypt_body(message.body_encrypted)
        except BodyUnreadable:
            logger.error("Message %s is under key %s, which is not configured", message.pk, message.key_id or "?")
            message._plaintext = None
    return message._plaintext, message._plaintext is None


class PersonSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    role = serializers.CharField(read_only=True)


class ReceiptSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(source="recipient_id", read_only=True)

    class Meta:
        model = MessageReceipt
        fields = ["user_id", "status", "delivered_at", "read_at"]
        read_only_fields = fields


class MessageAttachmentSerializer(serializers.Serializer):
    """What a message shows of its attachment, so a client can render it without another
    request: the bytes stay behind ``GET attachments/<id>/download/``."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True, allow_null=True, help_text="Null if its key is gone.")
    content_type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)


class MessageSerializer(serializers.ModelSerializer):
    conversation_id = serializers.UUIDField(read_only=True)
    sender_id = serializers.UUIDField(read_only=True, allow_null=True)
    call_id = serializers.UUIDField(read_only=True, allow_null=True)
    recipient_id = serializers.UUIDField(read_only=True, allow_null=True)
    body = serializers.SerializerMethodField()
    body_unreadable = serializers.SerializerMethodField()
    client_message_id = serializers.SerializerMethodField()
    attachment_id = serializers.UUIDField(
        read_only=True,
        allow_null=True,
        help_text="The file of an image, file or voice-note message: GET attachments/<id>/.",
    )
    attachment = serializers.SerializerMethodField()
    receipts = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "sender_id",
            "type",
            "body",
            "body_unreadable",
            "call_id",
            "is_private",
            "recipient_id",
            "client_message_id",
            "attachment_id",
            "attachment",
            "created_at",
            "deleted_at",
            "receipts",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_body(self, message: Message) -> str | None:
        return readable_body(message)[0]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_client_message_id(self, message: Message) -> str | None:
        return message.client_message_id or None

    @extend_schema_field(serializers.BooleanField())
    def get_body_unreadable(self, message: Message) -> bool:
        return readable_body(message)[1]

    @extend_schema_field(MessageAttachmentSerializer(allow_null=True))
    def get_attachment(self, message: Message) -> dict | None:
        """Null for a text message, and once the message (and with it the attachment) is deleted."""
        if message.attachment_id is None or message.is_deleted:
            return None
        attachment = message.attachment  # loaded with the message (selectors, services.messages)
        if attachment.is_deleted:
            return None
        return {
            "id": str(attachment.pk),
            "name": attachment_name(attachment),
            "content_type": attachment.content_type,
            "size": attachment.size,
        }

    @extend_schema_field(ReceiptSerializer(many=True))
    def get_receipts(self, message: Message) -> list:
        """Per recipient: sent, delivered, read, with the times (everyone the message is visible
        to sees them)."""
        receipts = getattr(message, "receipt_list", None)
        if receipts is None:
            receipts = list(message.receipts.order_by("recipient_id"))
        return ReceiptSerializer(receipts, many=True).data


def message_payload(message: Message) -> dict:
    """A message as REST answers it and as ``chat.message`` carries it: a plain dict."""
    data = MessageSerializer(message).data
    return {**data, "receipts": [dict(receipt) for receipt in data["receipts"]]}


class MessagePreviewSerializer(serializers.ModelSerializer):
    """The last message of a conversation in the list: the body cut to a preview."""

    sender_id = serializers.UUIDField(read_only=True, allow_null=True)
    body = serializers.SerializerMethodField()

    PREVIEW_CHARS = 200

    class Meta:
        model = Message
        fields = ["id", "sender_id", "type", "body", "is_private", "created_at", "deleted_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_body(self, message: Message) -> str | None:
        body = readable_body(message)[0]
        return body[: self.PREVIEW_CHARS] if body is not None else None


class ConversationSerializer(serializers.ModelSerializer):
    """A conversation as its member sees it (``context["viewer"]``)."""

    call_id = serializers.UUIDField(read_only=True, allow_null=True)
    unread_count = serializers.IntegerField(read_only=True)
    last_message = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "kind", "call_id", "created_at", "last_message_at", "unread_count", "last_message", "members"]
        read_only_fields = fields

    @extend_schema_field(MessagePreviewSerializer(allow_null=True))
    def get_last_message(self, conversation: Conversation):
        message = self.context.get("last_messages", {}).get(getattr(conversation, "last_visible_id", None))
        return MessagePreviewSerializer(message).data if message is not None else None

    @extend_schema_field(PersonSerializer(many=True))
    def get_members(self, conversation: Conversation) -> list:
        """The other members."""
        viewer = self.context["viewer"]
        others = [member.user for member in conversation.member_list if member.user_id != viewer.pk]
        return PersonSerializer(others, many=True).data


class ConversationOpenSerializer(serializers.Serializer):
    """Exactly one: ``user_id`` for a direct conversation, ``call_id`` for a call's."""

    user_id = serializers.UUIDField(required=False)
    call_id = serializers.UUIDField(required=False)

    def validate(self, attrs: dict) -> dict:
        if len(attrs) != 1:
            raise serializers.ValidationError("Give exactly one of user_id and call_id.", code="one_target")
        return attrs


class MessageSendSerializer(serializers.Serializer):
    """Where to (exactly one of ``conversation_id``, ``user_id``: a direct conversation, created on
    the first message; ``call_id``: the call's conversation) and what. ``recipient_id`` makes the
    message private to that member of a call's conversation. ``client_message_id`` is the
    client's key for this message: a retry with it answers the stored message. An ``image``,
    ``file`` or ``voice_note`` message carries the ``attachment_id`` of an upload (its ``body``,
    a caption, may then be empty)."""

    conversation_id = serializers.UUIDField(required=False)
    user_id = serializers.UUIDField(required=False)
    call_id = serializers.UUIDField(required=False)
    # System messages are the server's.
    type = serializers.ChoiceField(
        choices=[MessageType.TEXT, MessageType.IMAGE, MessageType.FILE, MessageType.VOICE_NOTE],
        default=MessageType.TEXT,
    )
    body = serializers.CharField(trim_whitespace=False, allow_blank=True, required=False, default="")
    attachment_id = serializers.UUIDField(required=False)
    recipient_id = serializers.UUIDField(required=False)
    client_message_id = serializers.CharField(required=False, min_length=1, max_length=64)

    def validate_body(self, body: str) -> str:
        if len(body) > settings.MESSAGE_MAX_CHARS:
            raise serializers.ValidationError(f"At most {settings.MESSAGE_MAX_CHARS} characters.", code="max_length")
        return body

    def validate(self, attrs: dict) -> dict:
        targets = [name for name in ("conversation_id", "user_id", "call_id") if name in attrs]
        if len(targets) != 1:
            raise serializers.ValidationError(
                "Give exactly one of conversation_id, user_id and call_id.", code="one_target"
            )
        if attrs.get("type", MessageType.TEXT) == MessageType.TEXT:
            if not attrs.get("body", "").strip():
                raise serializers.ValidationError({"body": ["A message needs some text."]}, code="blank")
            if "attachment_id" in attrs:
                raise serializers.ValidationError(
                    {"attachment_id": ["A text message carries no attachment."]}, code="invalid"
                )
        elif "attachment_id" not in attrs:
            raise serializers.ValidationError(
                {"attachment_id": ["An image, file or voice-note message needs one."]}, code="required"
            )
        return attrs


class MessageRefSerializer(serializers.Serializer):
    message_id = serializers.UUIDField()


class MarkResultSerializer(serializers.Serializer):
    """What a delivered or read mark changed: the messages newly marked, and what is left unread."""

    conversation_id = serializers.UUIDField()
    message_ids = serializers.ListField(child=serializers.UUIDField())
    at = serializers.DateTimeField()
    unread_count = serializers.IntegerField()


class ContactSerializer(PersonSerializer):
    in_care_team = serializers.BooleanField(read_only=True)
    added_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ContactAddSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()

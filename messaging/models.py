"""Conversations, their members, messages (bodies encrypted at rest), per-recipient receipts and
contacts.

A conversation is ``direct`` (two people, at most one per pair: ``user_low``/``user_high`` hold the
pair in a fixed order under a unique constraint) or a call's (``call``, one per call), whose
members are the call's participants. Messages are numbered per conversation (``seq``) while the
conversation's row is locked, so the order of ``seq`` is the order of commit and a client that
asks for what follows a message it has misses nothing. Status per recipient is a receipt row:
``sent`` when stored, ``delivered`` and ``read`` with their times; unread counts are receipts not
yet read, so a private message counts only for its recipient.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ConversationKind(models.TextChoices):
    DIRECT = "direct", "Direct"
    CALL = "call", "Call chat"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=ConversationKind.choices)
    # A direct conversation's two people, the smaller id first; null for a call's.
    user_low = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user_high = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    call = models.OneToOneField(
        "video_calls.Call", on_delete=models.PROTECT, null=True, blank=True, related_name="conversation"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The last message's number and time; the list of conversations is ordered by the time.
    last_seq = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-last_message_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user_low", "user_high"],
                condition=Q(kind="direct"),
                name="messaging_one_direct_conversation_per_pair",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="direct", user_low__isnull=False, user_high__isnull=False, call__isnull=True)
                    & Q(user_low__lt=F("user_high"))
                )
                | Q(kind="call", user_low__isnull=True, user_high__isnull=True, call__isnull=False),
                name="messaging_conversation_kind_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id}"


class ConversationMember(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversation_memberships"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    # Everything up to this message number has been read (receipts hold the per-message truth).
    last_read_seq = models.BigIntegerField(default=0)
    last_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="messaging_one_membership")]
        indexes = [models.Index(fields=["user", "conversation"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class MessageType(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    FILE = "file", "File"
    VOICE_NOTE = "voice_note", "Voice note"
    SYSTEM = "system", "System"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField(help_text="Position in the conversation, in commit order.")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="messages_sent"
    )
    type = models.CharField(max_length=16, choices=MessageType.choices, default=MessageType.TEXT)
    # Fernet token of the body (messaging/encryption.py) and the id of the key it is under;
    # both empty once the message is deleted.
    body_encrypted = models.TextField(blank=True, default="")
    key_id = models.CharField(max_length=16, blank=True, default="", db_index=True)
    call = models.ForeignKey("video_calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # In a call's conversation, a message may be for one participant only.
    is_private = models.BooleanField(default=False)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="private_messages"
    )
    # The sender's key for this message (empty: none given); a retry with it finds this row.
    client_message_id = models.CharField(max_length=64, blank=True, default="")
    # The file an image, file or voice-note message carries; one message per attachment.
    attachment = models.OneToOneField(
        "Attachment", on_delete=models.PROTECT, null=True, blank=True, related_name="message"
    )
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="messaging_one_message_per_position"),
            models.UniqueConstraint(
                fields=["sender", "client_message_id"],
                condition=~Q(client_message_id=""),
                name="messaging_client_message_id_unique_per_sender",
            ),
            models.CheckConstraint(
                condition=Q(is_private=True, recipient__isnull=False) | Q(is_private=False, recipient__isnull=True),
                name="messaging_private_message_has_recipient",
            ),
        ]

    def __str__(self) -> str:  # never the body
        return f"{self.get_type_display()} {self.id} in {self.conversation_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class ReceiptStatus(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"


class MessageReceipt(models.Model):
    """One per recipient of a message (everyone it is visible to but its sender)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="receipts")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Copied from the message, so marking a range read is one statement on one table.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=ReceiptStatus.choices, default=ReceiptStatus.SENT)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "recipient"], name="messaging_one_receipt")]
        indexes = [models.Index(fields=["recipient", "conversation", "read_at", "seq"])]

    def __str__(self) -> str:
        return f"{self.message_id} to {self.recipient_id}: {self.status}"


class Contact(models.Model):
    """Someone a user added to the people they may message and call (beyond their care team)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts")
    contact = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "contact"], name="messaging_one_contact_per_pair"),
            models.CheckConstraint(condition=~Q(owner=F("contact")), name="messaging_contact_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} -> {self.contact_id}"


class AttachmentAccess(models.TextChoices):
    PRIVATE = "private", "Private"
    SHARED_CALL = "shared_call", "Shared with a call"
    SHARED_CONVERSATION = "shared_conversation", "Shared with a conversation"


class Attachment(models.Model):
    """An uploaded file: its bytes encrypted in storage (messaging/attachment_files.py), its name
    encrypted here; who may read it is messaging.selectors ``attachments_readable_by``.

    Deleted (its message deleted), the file is removed and the row stays as a tombstone: no
    name, no storage name, ``deleted_at`` set."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="attachments")
    access = models.CharField(max_length=24, choices=AttachmentAccess.choices, default=AttachmentAccess.PRIVATE)
    # The conversation of a ``shared_conversation`` attachment, the call of a ``shared_call`` one.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    call = models.ForeignKey("video_calls.Call", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Fernet token of the sanitized original name, under the same key as the file.
    name_encrypted = models.TextField(blank=True, default="")
    content_type = models.CharField(max_length=64, help_text="Detected from the bytes, never the client's.")
    size = models.PositiveBigIntegerField(help_text="Bytes of the plaintext.")
    storage_name = models.CharField(max_length=255, blank=True, default="")
    key_id = models.CharField(max_length=16, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(access="private", conversation__isnull=True, call__isnull=True)
                | Q(access="shared_call", conversation__isnull=True, call__isnull=False)
                | Q(access="shared_conversation", conversation__isnull=False, call__isnull=True),
                name="messaging_attachment_access_target",
            ),
        ]

    def __str__(self) -> str:  # never the name
        return f"{self.content_type} attachment {self.id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

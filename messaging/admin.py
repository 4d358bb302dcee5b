"""Messaging in the admin: metadata only. A message's body is neither shown nor editable (not
even its ciphertext): staff see who wrote to whom and when, never what. Likewise an
attachment's type, size and access, never its name, bytes or storage name."""

from django.contrib import admin

from messaging.models import Attachment, Contact, Conversation, ConversationMember, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    """Conversations and messages change only through the services (their rules, events and
    receipts); the admin neither adds, edits nor hard-deletes them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ConversationMemberInline(admin.TabularInline):
    model = ConversationMember
    fields = ["user", "joined_at", "last_read_seq", "last_read_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "call", "created_at", "last_message_at", "last_seq"]
    list_filter = ["kind"]
    fields = ["id", "kind", "user_low", "user_high", "call", "created_at", "last_message_at", "last_seq"]
    readonly_fields = fields
    inlines = [ConversationMemberInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "conversation", "seq", "sender", "type", "is_private", "created_at", "deleted_at"]
    list_filter = ["type", "is_private"]
    list_select_related = ["sender"]
    # Never body_encrypted: not the body, and not its ciphertext either.
    fields = [
        "id",
        "conversation",
        "seq",
        "sender",
        "type",
        "call",
        "is_private",
        "recipient",
        "client_message_id",
        "key_id",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = fields


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["owner", "contact", "created_at"]
    list_select_related = ["owner", "contact"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["owner", "contact"]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "owner", "content_type", "size", "access", "created_at", "deleted_at"]
    list_filter = ["access", "content_type"]
    list_select_related = ["owner"]
    # Never name_encrypted or storage_name: the name may say what the file is, and the storage
    # name leads to the (encrypted) bytes.
    fields = [
        "id",
        "owner",
        "access",
        "conversation",
        "call",
        "content_type",
        "size",
        "key_id",
        "created_at",
        "deleted_at",
    ]
    readonly_fields = fields

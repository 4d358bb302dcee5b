"""Sending and deleting messages.

A send is stored before anyone is told: the message and its receipts are written, the
conversation's row (locked for the transaction) gets the message's number, and ``chat.message``
goes to its audience after commit. Its audience, and everyone who ever sees it, is the
conversation's members, or for a private message its sender and recipient only.
"""

import functools
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core.events import send_on_commit, user_group
from messaging.encryption import encrypt_body
from messaging.models import Conversation, ConversationKind, Message, MessageReceipt, MessageType
from messaging.selectors import (
    ConversationNotFound,
    conversation_with_send_checks,
    may_message,
    message_get_for_user,
)
from messaging.serializers import message_payload
from messaging.services.attachments import attachment_erase, attachment_for_message
from messaging.services.conversations import (
    call_chat_members_for_send,
    conversation_call_open,
    conversation_direct_open,
)
from messaging.services.errors import (
    ClientMessageIdReused,
    DeleteWindowPassed,
    InvalidRecipient,
    MessagingNotAllowed,
    NotMessageSender,
)


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool  # False: a retry with a client_message_id already stored
    payload: dict  # the message as REST answers it and ``chat.message`` carries it (serialized once)


def _locked_conversation(*, sender: User, conversation_id, client_message_id: str | None) -> Conversation:
    """The conversation, if ``sender`` is a member, with its row locked until commit (sends to
    one conversation take their numbers one after another, in commit order), and with what the
    send checks (selectors ``conversation_with_send_checks``): one statement."""
    try:
        return (
            conversation_with_send_checks(user=sender, client_message_id=client_message_id)
            .select_for_update(of=("self",))
            .select_related("call", "user_low", "user_high")
            .get(pk=conversation_id)
        )
    except Conversation.DoesNotExist:
        raise ConversationNotFound() from None


def _members_for_send(*, sender: User, conversation: Conversation) -> list:
    """Who the conversation's messages go to, after the rules of its kind: a direct conversation's
    two people must still be allowed to message each other (their relation read with the lock);
    a call's chat must be on, and its members are brought up to date with the call's participants
    (written only when someone joined or left)."""
    if conversation.kind == ConversationKind.DIRECT:
        other = conversation.user_high if conversation.user_low_id == sender.pk else conversation.user_low
        if not may_message(user=sender, other=other, related=conversation.related_to_other):
            raise MessagingNotAllowed()
        return [conversation.user_low_id, conversation.user_high_id]
    return call_chat_members_for_send(conversation=conversation, user=sender)


def _replay(*, conversation: Conversation) -> Message | None:
    """The message stored earlier with this send's client key (read only when the lock query
    found one), or a conflict if it went to another conversation."""
    replayed_id = getattr(conversation, "replayed_id", None)
    if replayed_id is None:
        return None
    stored = Message.objects.get(pk=replayed_id)
    if stored.conversation_id != conversation.pk:
        raise ClientMessageIdReused()
    return stored


def _run_again_after_a_racing_retry(store):
    """A send whose client key another send stored meanwhile (a concurrent retry that held the
    conversation's lock while this one waited for it) fails on the key's unique constraint: it is
    rolled back whole and run once more, and then answers the stored message as any retry does
    (or ``CLIENT_MESSAGE_ID_REUSED`` if the other send went to another conversation)."""

    @functools.wraps(store)
    def send(**arguments) -> SendResult:
        try:
            return store(**arguments)
        except IntegrityError:
            if not arguments.get("client_message_id"):
                raise
        return store(**arguments)

    return send


@_run_again_after_a_racing_retry
@transaction.atomic
def message_send(
    *,
    sender: User,
    body: str,
    conversation_id=None,
    user_id=None,
    call_id=None,
    type: str = MessageType.TEXT,
    recipient_id=None,
    client_message_id: str | None = None,
    attachment_id=None,
) -> SendResult:
    """Store a message and tell its audience after commit. On a direct conversation, four
    statements: the lock, the message, its receipt, the conversation's last activity.

    1. Find the conversation (``conversation_id``), or open the direct one with ``user_id`` or the
       call's with ``call_id``; lock its row. The same statement reads whether the two people of
       a direct conversation are related (care or contact) and whether the client key was used:
       no query of their own for either.
    2. A ``client_message_id`` this sender already used answers the stored message (one more
       query, to read it): nothing new is written or sent. A retry that waited for the lock while
       the first committed does not see it in step 1 (the statement reads as of its start); its
       insert in step 4 hits the key's unique constraint, and the send runs again
       (``_run_again_after_a_racing_retry``).
    3. Check the conversation's rules (``_members_for_send``), the private recipient, and the
       attachment an image, file or voice-note message carries (services.attachments).
    4. Encrypt the body, write the message with the next number (the locked row's ``last_seq``
       plus one), one receipt per recipient, and the conversation's last activity; serialize the
       message once, for the event and for the caller's answer.
    """
    if conversation_id is None:
        opened, _ = (
            conversation_direct_open(user=sender, other_id=user_id)
            if user_id is not None
            else conversation_call_open(user=sender, call_id=call_id)
        )
        conversation_id = opened.pk
    conversation = _locked_conversation(
        sender=sender, conversation_id=conversation_id, client_message_id=client_message_id
    )
    stored = _replay(conversation=conversation)
    if stored is not None:
        return SendResult(message=stored, created=False, payload=message_payload(stored))
    member_ids = _members_for_send(sender=sender, conversation=conversation)
    if recipient_id is not None:
        if conversation.kind != ConversationKind.CALL or str(recipient_id) == str(sender.pk):
            raise InvalidRecipient()
        recipient_id = next((pk for pk in member_ids if str(pk) == str(recipient_id)), None)
        if recipient_id is None:
            raise InvalidRecipient()
    recipients = [recipient_id] if recipient_id is not None else [pk for pk in member_ids if pk != sender.pk]
    attachment = attachment_for_message(
        sender=sender, attachment_id=attachment_id, conversation=conversation, message_type=type
    )

    token, key_id = encrypt_body(body)
    now = timezone.now()
    seq = conversation.last_seq + 1
    message = Message.objects.create(
        conversation=conversation,
        seq=seq,
        sender=sender,
        type=type,
        body_encrypted=token,
        key_id=key_id,
        call_id=conversation.call_id,
        is_private=recipient_id is not None,
        recipient_id=recipient_id,
        client_message_id=client_message_id or "",
        attachment=attachment,
        created_at=now,
    )
    message._plaintext = body  # the sender's answer and the event need not decrypt it again
    message.receipt_list = MessageReceipt.objects.bulk_create(
        [MessageReceipt(message=message, recipient_id=pk, conversation=conversation, seq=seq) for pk in recipients]
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=seq, last_message_at=now)
    payload = message_payload(message)
    send_on_commit([user_group(pk) for pk in {sender.pk, *recipients}], "chat.message", payload)
    return SendResult(message=message, created=True, payload=payload)


def message_audience(message: Message) -> set:
    """Everyone who sees ``message``: its sender and its recipients (one query)."""
    recipients = MessageReceipt.objects.filter(message=message).values_list("recipient_id", flat=True)
    return {message.sender_id, *recipients} - {None}


@transaction.atomic
def message_delete(*, user: User, message_id, now=None) -> Message:
    """Soft-delete the sender's own message within ``MESSAGE_DELETE_WINDOW_SECONDS``: the body is
    erased, and its attachment's file (services.attachments ``attachment_erase``), the row stays
    as a tombstone (its receipts and place in the conversation). Deleting a deleted message
    changes nothing."""
    message = message_get_for_user(user=user, message_id=message_id)
    if message.sender_id != user.pk:
        raise NotMessageSender()
    if message.is_deleted:
        return message
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.MESSAGE_DELETE_WINDOW_SECONDS)
    erased = Message.objects.filter(pk=message.pk, deleted_at__isnull=True, created_at__gte=cutoff).update(
        deleted_at=now, body_encrypted="", key_id=""
    )
    message.refresh_from_db()
    if not erased:
        if message.is_deleted:  # a concurrent delete won
            return message
        raise DeleteWindowPassed(details={"window_seconds": settings.MESSAGE_DELETE_WINDOW_SECONDS})
    if message.attachment_id is not None:
        attachment_erase(attachment_id=message.attachment_id, now=now)
    payload = {
        "conversation_id": str(message.conversation_id),
        "message_id": str(message.pk),
        "deleted_at": message.deleted_at.isoformat().replace("+00:00", "Z"),
    }
    send_on_commit([user_group(pk) for pk in message_audience(message)], "chat.deleted", payload)
    return message

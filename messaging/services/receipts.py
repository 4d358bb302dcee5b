"""Delivered and read marks: per recipient, for one message or everything up to one.

A mark is one conditional ``UPDATE`` of the recipient's receipts (``sent`` → ``delivered``, or
unread → ``read``), however many messages it covers, so repeating it changes nothing and two
devices marking at once mark each receipt once. The senders of the messages it changed hear
``chat.delivered`` / ``chat.read`` naming their own messages only (a private message is never
named to anyone else), and the reader's other devices hear it too.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from core.events import send_on_commit, user_group
from messaging.models import ConversationMember, MessageReceipt, ReceiptStatus
from messaging.selectors import conversation_member_get, message_get_for_user, unread_receipts


@dataclass(frozen=True)
class MarkResult:
    conversation_id: object
    message_ids: list
    at: datetime
    unread_count: int


def unread_count(*, user: User, conversation_id) -> int:
    return unread_receipts(user=user).filter(conversation_id=conversation_id).count()


def _announce(*, event_type: str, user: User, conversation_id, changed: list[tuple], at: datetime) -> None:
    by_sender: dict = defaultdict(list)
    for message_id, sender_id in changed:
        by_sender[sender_id].append(str(message_id))
    stamp = at.isoformat().replace("+00:00", "Z")
    for sender_id, message_ids in by_sender.items():
        if sender_id is None:  # system messages
            continue
        data = {
            "conversation_id": str(conversation_id),
            "user_id": str(user.pk),
            "message_ids": message_ids,
            "at": stamp,
        }
        send_on_commit([user_group(sender_id)], event_type, data)
    if changed:
        data = {
            "conversation_id": str(conversation_id),
            "user_id": str(user.pk),
            "message_ids": [str(message_id) for message_id, _ in changed],
            "at": stamp,
        }
        send_on_commit([user_group(user.pk)], event_type, data)


def _mark(*, user: User, conversation_id, message_id, up_to: bool, read: bool) -> MarkResult:
    member = conversation_member_get(user=user, conversation_id=conversation_id)
    message = message_get_for_user(user=user, message_id=message_id, conversation=member.conversation)
    now = timezone.now()
    receipts = MessageReceipt.objects.filter(recipient=user, conversation_id=member.conversation_id)
    receipts = receipts.filter(seq__lte=message.seq) if up_to else receipts.filter(message=message)
    receipts = receipts.filter(read_at__isnull=True) if read else receipts.filter(delivered_at__isnull=True)
    changed = list(receipts.values_list("message_id", "message__sender_id"))
    if read:
        receipts.update(status=ReceiptStatus.READ, read_at=now, delivered_at=Coalesce(F("delivered_at"), Value(now)))
        if up_to:
            ConversationMember.objects.filter(pk=member.pk).update(
                last_read_seq=Greatest(F("last_read_seq"), Value(message.seq)), last_read_at=now
            )
    else:
        receipts.update(status=ReceiptStatus.DELIVERED, delivered_at=now)
    _announce(
        event_type="chat.read" if read else "chat.delivered",
        user=user,
        conversation_id=member.conversation_id,
        changed=changed,
        at=now,
    )
    return MarkResult(
        conversation_id=member.conversation_id,
        message_ids=[message_id for message_id, _ in changed],
        at=now,
        unread_count=unread_count(user=user, conversation_id=member.conversation_id),
    )


@transaction.atomic
def messages_mark_read(*, user: User, conversation_id, message_id) -> MarkResult:
    """Everything up to ``message_id`` (included) that ``user`` received in the conversation is read."""
    return _mark(user=user, conversation_id=conversation_id, message_id=message_id, up_to=True, read=True)


@transaction.atomic
def message_mark_read(*, user: User, message_id) -> MarkResult:
    """One message is read (those before it keep their status)."""
    message = message_get_for_user(user=user, message_id=message_id)
    return _mark(user=user, conversation_id=message.conversation_id, message_id=message_id, up_to=False, read=True)


@transaction.atomic
def messages_mark_delivered(*, user: User, conversation_id, message_id) -> MarkResult:
    """Everything up to ``message_id`` reached one of ``user``'s devices."""
    return _mark(user=user, conversation_id=conversation_id, message_id=message_id, up_to=True, read=False)

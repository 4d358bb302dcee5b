"""Chat on the realtime socket: send, delivered and read marks, typing. The same services and
rate limits as REST (messaging.services, messaging.throttles); the events they emit reach the
members through core.events after commit.

Sends and marks are audited as their REST twins are, one entry per message in the same
transaction (audit/sockets.py): a send as ``create message``, a mark as ``update conversation``
naming the message it marks up to. Typing carries no health data and is not audited.
"""

from typing import Any

from rest_framework import serializers

from audit.models import AuditAction
from audit.sockets import audited_database_call
from core.events import database_call
from messaging.serializers import MarkResultSerializer, MessageSendSerializer
from messaging.services.messages import message_send
from messaging.services.receipts import MarkResult, messages_mark_delivered, messages_mark_read
from messaging.services.typing import chat_typing
from messaging.throttles import ChatTypingThrottle, MessageSendThrottle, throttle_user
from realtime.registry import handles


class ChatMarkSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    message_id = serializers.UUIDField()


class ChatTypingSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()


def _send(*, user, data: dict) -> dict:
    throttle_user(MessageSendThrottle, user)
    result = message_send(sender=user, **data)
    return {"created": result.created, "message": result.payload}  # the event's dict, not serialized again


@handles("chat.send", serializer=MessageSendSerializer)
async def send(connection, data: dict) -> dict:
    """The ack carries the stored message (``created: false`` for a retry of a stored one); the
    members hear ``chat.message`` after it."""
    return await audited_database_call(
        connection,
        "chat.send",
        _send,
        action=AuditAction.CREATE,
        object_type="message",
        object_id_of=_sent_message_id,
        user=connection.user,
        data=dict(data),
    )


def _sent_message_id(ack: dict[str, Any]) -> Any:
    return ack["message"]["id"]


def _mark_payload(result: MarkResult) -> dict:
    return dict(MarkResultSerializer(result).data)  # what the REST marks answer


async def _mark(connection, data: dict, message_type: str, mark) -> dict:
    result = await audited_database_call(
        connection,
        message_type,
        mark,
        action=AuditAction.UPDATE,
        object_type="conversation",
        object_id=data["conversation_id"],
        record_type="message",
        record_ids=[data["message_id"]],
        user=connection.user,
        conversation_id=data["conversation_id"],
        message_id=data["message_id"],
    )
    return _mark_payload(result)


@handles("chat.delivered", serializer=ChatMarkSerializer)
async def delivered(connection, data: dict) -> dict:
    return await _mark(connection, data, "chat.delivered", messages_mark_delivered)


@handles("chat.read", serializer=ChatMarkSerializer)
async def read(connection, data: dict) -> dict:
    return await _mark(connection, data, "chat.read", messages_mark_read)


def _typing(*, user, conversation_id) -> None:
    throttle_user(ChatTypingThrottle, user)
    chat_typing(user=user, conversation_id=conversation_id)


@handles("chat.typing", serializer=ChatTypingSerializer)
async def typing(connection, data: dict) -> None:
    await database_call(_typing, user=connection.user, conversation_id=data["conversation_id"])

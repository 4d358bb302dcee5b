"""Chat over the socket leaves the same audit entries as over REST: one per message that reads or
writes health data, with the connection's actor, address, user agent and request id, in the
same transaction as what the message did; refused attempts too; typing none."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from audit.models import AuditEntry
from config.asgi import application
from messaging.models import Message
from messaging.services.conversations import conversation_direct_open
from realtime.tickets import ticket_issue
from tests.messaging.conftest import send
from tests.realtime.conftest import ORIGIN, open_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

BROWSER = "Mozilla/5.0 (socket audit test)"
REQUEST_ID = "4f1c2a9e8b7d4c3aa1b2c3d4e5f60718"


@database_sync_to_async
def _direct(patient, doctor):
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    return conversation


@database_sync_to_async
def _entries() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list(
            "action", "object_type", "object_id", "outcome", "status_code", "route"
        )
    )


async def _reply(socket, message: dict) -> dict:
    """The ack or error answering ``message``; events on the way (presence, the marks' own
    events, which the sender's devices hear too) are skipped."""
    await socket.send_to(text_data=json.dumps(message))
    while (answer := await receive(socket))["type"] not in ("ack", "error"):
        pass
    return answer


async def _socket_from(user, address: str) -> WebsocketCommunicator:
    """A connection as a browser behind no proxy opens it: its address, user agent, request id."""
    ticket = await database_sync_to_async(ticket_issue)(user=user)
    headers = [ORIGIN, (b"user-agent", BROWSER.encode()), (b"x-request-id", REQUEST_ID.encode())]
    communicator = WebsocketCommunicator(application, f"/ws/?ticket={ticket}", headers=headers)
    communicator.scope["client"] = (address, 51234)  # the same dict the application gets
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await receive(communicator))["type"] == "connection.ready"
    return communicator


async def test_a_message_sent_over_the_socket_is_recorded_with_who_and_where_from(care, patient, doctor):
    conversation = await _direct(patient, doctor)
    socket = await _socket_from(patient, "203.0.113.9")

    ack = await _reply(
        socket, {"type": "chat.send", "id": "s", "data": {"conversation_id": str(conversation.pk), "body": "Better"}}
    )

    assert ack["type"] == "ack", ack
    [entry] = await database_sync_to_async(list)(AuditEntry.objects.all())
    assert (entry.actor_id, entry.action, entry.object_type, entry.object_id, entry.outcome) == (
        patient.pk,
        "create",
        "message",
        ack["data"]["message"]["id"],
        "allowed",
    )
    assert (entry.method, entry.route, entry.path, entry.status_code) == ("WS", "ws:chat.send", "/ws/", 200)
    assert (entry.ip_address, entry.user_agent, entry.request_id) == ("203.0.113.9", BROWSER, REQUEST_ID)
    await socket.disconnect()


async def test_read_and_delivered_marks_over_the_socket_are_recorded(care, patient, doctor):
    conversation = await _direct(patient, doctor)
    message = await database_sync_to_async(send)(doctor, conversation, "Your results are in")
    socket = await open_socket(patient)
    mark = {"conversation_id": str(conversation.pk), "message_id": str(message.pk)}

    delivered = await _reply(socket, {"type": "chat.delivered", "id": "d", "data": mark})
    read = await _reply(socket, {"type": "chat.read", "id": "r", "data": mark})

    assert (delivered["type"], read["type"]) == ("ack", "ack")
    assert await _entries() == [
        ("update", "conversation", str(conversation.pk), "allowed", 200, "ws:chat.delivered"),
        ("update", "conversation", str(conversation.pk), "allowed", 200, "ws:chat.read"),
    ]
    records = await database_sync_to_async(list)(AuditEntry.objects.values_list("record_type", "record_ids"))
    assert records == [("message", [str(message.pk)])] * 2
    await socket.disconnect()


async def test_an_outsiders_attempts_are_recorded_as_denied(care, patient, doctor, outsider):
    conversation = await _direct(patient, doctor)
    message = await database_sync_to_async(send)(doctor, conversation, "for the patient only")
    socket = await open_socket(outsider)

    sent = await _reply(socket, {"type": "chat.send", "data": {"conversation_id": str(conversation.pk), "body": "x"}})
    read = await _reply(
        socket, {"type": "chat.read", "data": {"conversation_id": str(conversation.pk), "message_id": str(message.pk)}}
    )

    assert [sent["data"]["code"], read["data"]["code"]] == ["CONVERSATION_NOT_FOUND"] * 2
    assert await _entries() == [
        ("create", "message", "", "denied", 404, "ws:chat.send"),
        ("update", "conversation", str(conversation.pk), "denied", 404, "ws:chat.read"),
    ]
    assert await database_sync_to_async(Message.objects.count)() == 1
    await socket.disconnect()


async def test_a_rate_limited_send_is_a_denied_attempt(care, patient, doctor, settings):
    settings.MESSAGE_THROTTLE_RATE = "1/min"
    conversation = await _direct(patient, doctor)
    socket = await open_socket(patient)
    body = {"conversation_id": str(conversation.pk), "body": "hi"}

    await _reply(socket, {"type": "chat.send", "data": body})
    refused = await _reply(socket, {"type": "chat.send", "data": {**body, "body": "again"}})

    assert refused["data"]["code"] == "RATE_LIMITED"
    assert [(action, outcome, status) for action, _, _, outcome, status, _ in await _entries()] == [
        ("create", "allowed", 200),
        ("create", "denied", 429),
    ]
    await socket.disconnect()


async def test_an_entry_that_cannot_be_written_takes_the_message_with_it(care, patient, doctor, monkeypatch):
    from audit import sockets

    conversation = await _direct(patient, doctor)
    written = sockets.audit_record

    def refuse_allowed(**fields):
        if fields["outcome"] == "allowed":
            raise RuntimeError("the audit insert failed")
        return written(**fields)

    monkeypatch.setattr(sockets, "audit_record", refuse_allowed)
    socket = await open_socket(patient)

    failed = await _reply(
        socket, {"type": "chat.send", "data": {"conversation_id": str(conversation.pk), "body": "never stored"}}
    )

    assert failed["data"]["code"] == "INTERNAL_ERROR"
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert await _entries() == [("create", "message", "", "failed", 500, "ws:chat.send")]
    await socket.disconnect()


async def test_typing_leaves_no_entry(care, patient, doctor):
    conversation = await _direct(patient, doctor)
    socket = await open_socket(patient)

    typing = await _reply(socket, {"type": "chat.typing", "id": "t", "data": {"conversation_id": str(conversation.pk)}})

    assert typing["type"] == "ack"
    assert await _entries() == []
    await socket.disconnect()

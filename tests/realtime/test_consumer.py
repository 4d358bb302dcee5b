"""The /ws/ endpoint: authentication, origins, the envelope, limits and event fan-out."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from core.events import send_now, user_group
from realtime.tickets import ticket_issue
from tests.realtime.conftest import open_socket, receive, request

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_valid_ticket_connects_and_reports_ready(patient):
    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    socket = await open_socket(ticket=ticket)

    ready = await receive(socket)

    assert ready["type"] == "connection.ready"
    assert ready["data"]["user_id"] == str(patient.pk)
    assert ready["data"]["presence"] == {"status": "online"}
    await socket.disconnect()


async def test_missing_ticket_closes_with_4401():
    socket = await open_socket()

    closed = await socket.receive_output(timeout=5)

    assert closed == {"type": "websocket.close", "code": 4401}


async def test_unknown_ticket_closes_with_4401():
    socket = await open_socket(ticket="made-up")

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_a_ticket_opens_only_one_connection(patient):
    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    first = await open_socket(ticket=ticket)
    await receive(first)

    second = await open_socket(ticket=ticket)

    assert await second.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await first.disconnect()


async def test_expired_ticket_closes_with_4401(patient, settings):
    settings.REALTIME_TICKET_TTL_SECONDS = 1  # the cache (local or Redis) expires it in real time
    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    await asyncio.sleep(1.5)

    socket = await open_socket(ticket=ticket)

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_ticket_of_a_user_who_logged_out_closes_with_4401(patient):
    from accounts.services import user_tokens_revoke

    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    await database_sync_to_async(user_tokens_revoke)(user=patient)

    socket = await open_socket(ticket=ticket)

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize("origin", [(b"origin", b"https://evil.example"), None])
async def test_foreign_or_missing_origin_is_refused_at_the_handshake(patient, origin):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    socket = WebsocketCommunicator(application, f"/ws/?ticket={ticket}", headers=[origin] if origin else [])

    connected, _ = await socket.connect(timeout=5)

    assert connected is False


async def test_heartbeat_is_acknowledged_with_the_request_id(patient):
    socket = await open_socket(patient)

    reply = await request(socket, {"type": "presence.heartbeat", "id": "hb-1"})

    assert reply == {"type": "ack", "id": "hb-1", "data": {"type": "presence.heartbeat", "alive": True}}
    await socket.disconnect()


async def test_malformed_json_is_an_error_event_and_the_connection_stays_open(patient):
    socket = await open_socket(patient)

    await socket.send_to(text_data="{not json")
    error = await receive(socket)
    reply = await request(socket, {"type": "presence.heartbeat", "id": "after"})

    assert error["type"] == "error"
    assert error["data"]["code"] == "MALFORMED_MESSAGE"
    assert reply["id"] == "after"
    await socket.disconnect()


@pytest.mark.parametrize(
    "message",
    [[1, 2], {"data": {}}, {"type": 7}, {"type": "presence.heartbeat", "data": "x"}, {"type": "x", "id": "y" * 65}],
)
async def test_envelopes_of_the_wrong_shape_are_malformed(patient, message):
    socket = await open_socket(patient)

    error = await request(socket, message)

    assert error["type"] == "error"
    assert error["data"]["code"] == "MALFORMED_MESSAGE"
    await socket.disconnect()


async def test_unknown_type_is_an_error_carrying_the_request_id(patient):
    socket = await open_socket(patient)

    error = await request(socket, {"type": "teleport.now", "id": "r1", "data": {}})

    assert error == {
        "type": "error",
        "id": "r1",
        "data": {"code": "UNKNOWN_EVENT_TYPE", "message": "Unknown message type.", "details": {"type": "teleport.now"}},
    }
    await socket.disconnect()


async def test_wrong_typed_field_is_a_validation_error(patient):
    socket = await open_socket(patient)

    error = await request(socket, {"type": "presence.set", "id": "s1", "data": {"status": 5}})

    assert error["id"] == "s1"
    assert error["data"]["code"] == "VALIDATION_ERROR"
    assert error["data"]["details"]["status"][0]["code"] == "invalid_choice"
    await socket.disconnect()


async def test_oversized_frame_closes_with_1009(patient, settings):
    socket = await open_socket(patient)

    await socket.send_to(
        text_data=json.dumps({"type": "presence.heartbeat", "data": {"pad": "x" * settings.REALTIME_MAX_FRAME_BYTES}})
    )

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}


async def test_binary_frames_are_malformed(patient):
    socket = await open_socket(patient)

    await socket.send_to(bytes_data=b"\x00\x01")

    assert (await receive(socket))["data"]["code"] == "MALFORMED_MESSAGE"
    await socket.disconnect()


async def test_messages_over_the_rate_limit_are_dropped_with_an_error(patient, settings):
    settings.REALTIME_RATE_BURST = 3
    settings.REALTIME_RATE_PER_SECOND = 0.001
    socket = await open_socket(patient)

    replies = [await request(socket, {"type": "presence.heartbeat", "id": str(n)}) for n in range(4)]

    assert [reply["type"] for reply in replies] == ["ack", "ack", "ack", "error"]
    assert replies[3]["data"]["code"] == "RATE_LIMITED"
    assert replies[3]["id"] == "3"
    await socket.disconnect()


async def test_domain_events_reach_every_connection_of_the_user(patient):
    laptop = await open_socket(patient)
    phone = await open_socket(patient)

    await database_sync_to_async(send_now)([user_group(patient.pk)], "call.initiated", {"call_id": "c1"})

    assert await receive(laptop) == {"type": "call.initiated", "data": {"call_id": "c1"}}
    assert await receive(phone) == {"type": "call.initiated", "data": {"call_id": "c1"}}
    await laptop.disconnect()
    await phone.disconnect()


async def test_logging_out_closes_the_users_sockets(patient):
    from tests.conftest import client_for

    socket = await open_socket(patient)

    response = await database_sync_to_async(lambda: client_for(patient).post("/api/v1/auth/logout/"))()

    assert response.status_code == 204
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_suspending_a_user_closes_their_sockets(patient):
    from accounts.services import user_suspend

    socket = await open_socket(patient)

    await database_sync_to_async(user_suspend)(user=patient)

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

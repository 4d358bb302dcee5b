"""Back-pressure on the embedded defaults: a database pool that is full, or a queue for its
threads that is too long, is a fast 503 / close 1013 with when to retry, never a 500; and an event
the channel layer could not deliver, even after a retry, is never lost silently.

The pool failures are raised by hand here (SQLite has no pool); tests/core/test_backpressure_
services.py overloads a real PostgreSQL pool of a real server process.
"""

import asyncio
import logging
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError
from psycopg_pool import PoolTimeout, TooManyRequests

from core import events
from core.events import deliver, send_now, user_group
from core.outages import DatabaseBusy, outage_of, started_within
from presence.models import PresenceConnection
from realtime import consumers
from realtime.registry import HANDLERS, Handler
from realtime.tickets import ticket_issue
from tests.assertions import assert_error
from tests.realtime.conftest import open_socket, receive

RETRY_AFTER = 5  # SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS's default


def pool_timeout() -> PoolTimeout:
    return PoolTimeout("couldn't get a connection after 2.00 sec")


def wrapped_by_django(error: Exception) -> OperationalError:
    """What Django raises when the pool fails while it connects (DatabaseErrorWrapper)."""
    wrapper = OperationalError(str(error))
    wrapper.__cause__ = error
    return wrapper


@pytest.mark.parametrize(
    "error",
    [pool_timeout(), wrapped_by_django(pool_timeout()), TooManyRequests("too many requests queued"), DatabaseBusy()],
    ids=["pool timeout", "wrapped pool timeout", "pool queue full", "thread queue too long"],
)
def test_a_full_pool_is_a_database_outage(error):
    assert outage_of(error) == "database"


def test_a_full_channel_is_a_redis_outage_and_a_bug_is_none():
    from channels.exceptions import ChannelFull

    assert outage_of(ChannelFull()) == "redis"
    assert outage_of(RuntimeError("a bug")) is None


def test_work_that_waited_past_its_limit_for_a_thread_is_refused_without_running():
    ran = []
    late = started_within(lambda: ran.append("late"), 0.01)
    in_time = started_within(lambda: ran.append("in time"), 5)
    time.sleep(0.05)

    with pytest.raises(DatabaseBusy):
        late()
    in_time()

    assert ran == ["in time"]


@pytest.mark.django_db
def test_a_ticket_request_that_finds_the_pool_full_is_503_with_retry_after(patient_client, monkeypatch):
    def pool_full(**kwargs):
        raise wrapped_by_django(pool_timeout())

    monkeypatch.setattr("realtime.apis.ticket_issue", pool_full)

    response = patient_client.post("/api/v1/realtime/tickets/")

    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == str(RETRY_AFTER)
    assert error["details"] == {"retry_after": RETRY_AFTER}


def assert_service_unavailable_event(message: dict, request_id: str | None = None) -> None:
    assert message["type"] == "error", message
    assert message["data"]["code"] == "SERVICE_UNAVAILABLE"
    assert message["data"]["details"] == {"retry_after": RETRY_AFTER}
    assert message.get("id") == request_id


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_handshake_that_finds_the_pool_full_says_when_to_retry_and_closes_1013(patient, monkeypatch):
    def pool_full(**kwargs):
        raise wrapped_by_django(pool_timeout())

    monkeypatch.setattr(consumers, "ticket_redeem", pool_full)
    ticket = await database_sync_to_async(ticket_issue)(user=patient)

    socket = await open_socket(ticket=ticket)  # accepted: a browser could not read an HTTP 500

    assert_service_unavailable_event(await receive(socket))
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1013}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_handshake_refused_after_the_ticket_leaves_no_connection_counted(patient, monkeypatch):
    def pool_full(**kwargs):
        raise PoolTimeout("couldn't get a connection after 2.00 sec")

    monkeypatch.setattr(consumers, "presence_connection_open", pool_full)
    ticket = await database_sync_to_async(ticket_issue)(user=patient)

    socket = await open_socket(ticket=ticket)

    assert_service_unavailable_event(await receive(socket))
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1013}
    await socket.wait(timeout=5)
    assert not await database_sync_to_async(PresenceConnection.objects.filter(user=patient).exists)()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_handshake_that_fails_by_a_bug_is_not_passed_off_as_an_outage(patient, monkeypatch):
    def bug(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(consumers, "ticket_redeem", bug)
    ticket = await database_sync_to_async(ticket_issue)(user=patient)

    from channels.testing import WebsocketCommunicator

    from config.asgi import application
    from tests.realtime.conftest import ORIGIN

    socket = WebsocketCommunicator(application, f"/ws/?ticket={ticket}", headers=[ORIGIN])
    with pytest.raises(RuntimeError, match="a bug"):
        await socket.connect(timeout=5)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_message_whose_database_work_finds_the_pool_full_gets_an_error_and_the_socket_stays(
    patient, monkeypatch
):
    async def pool_full(connection, data):
        raise wrapped_by_django(pool_timeout())

    monkeypatch.setitem(HANDLERS, "presence.heartbeat", Handler(func=pool_full, serializer=None))
    socket = await open_socket(patient)

    await socket.send_json_to({"type": "presence.heartbeat", "data": {}, "id": "h1"})

    assert_service_unavailable_event(await receive(socket), "h1")
    await socket.send_json_to({"type": "no.such", "data": {}, "id": "h2"})
    assert (await receive(socket))["data"]["code"] == "UNKNOWN_EVENT_TYPE"  # still open
    await socket.disconnect()


# --- Events the layer could not deliver ---------------------------------------------------------


def failing_sends(monkeypatch, failures: int):
    """The next ``failures`` group sends fail as a Redis connect timeout would; later ones go
    through. Returns the list of attempts."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    attempts = []
    real = events.group_send_many

    async def group_send_many(layer, groups, message):
        attempts.append(groups)
        if len(attempts) <= failures:
            raise RedisTimeoutError("Timeout connecting to server")
        await real(layer, groups, message)

    monkeypatch.setattr(events, "group_send_many", group_send_many)
    return attempts


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_event_lost_after_a_retry_closes_the_receivers_here_with_4503_and_logs_no_phi(
    patient, monkeypatch, caplog
):
    socket = await open_socket(patient)
    attempts = failing_sends(monkeypatch, failures=2)
    message = {"type": "domain.event", "event_id": "e1", "event": {"type": "chat.message", "data": {"body": "rash"}}}

    with caplog.at_level(logging.ERROR, logger="core.events"):
        delivered = await deliver(get_channel_layer(), (user_group(patient.pk),), message, "chat.message")

    assert delivered is False
    assert len(attempts) == 2
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4503}
    [line] = [record.getMessage() for record in caplog.records if record.name == "core.events"]
    assert "chat.message" in line and "1 group" in line and "TimeoutError" in line and "closed 1" in line
    assert "rash" not in line and str(patient.pk) not in line


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_event_whose_first_send_fails_is_delivered_by_the_retry_once(patient, monkeypatch):
    socket = await open_socket(patient)
    attempts = failing_sends(monkeypatch, failures=1)

    await database_sync_to_async(send_now)([user_group(patient.pk)], "presence.updated", {"user_id": "x"})

    assert len(attempts) == 2
    event = await receive(socket)
    assert event == {"type": "presence.updated", "data": {"user_id": "x"}}
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_send_that_hangs_is_given_up_within_its_bound(patient, monkeypatch):
    monkeypatch.setattr(events, "DELIVERY_ATTEMPT_SECONDS", 0.1)
    socket = await open_socket(patient)

    async def hangs(layer, groups, message):
        await asyncio.sleep(60)

    monkeypatch.setattr(events, "group_send_many", hangs)
    started = time.monotonic()
    delivered = await deliver(get_channel_layer(), (user_group(patient.pk),), {"type": "connection.revoke"}, "x")

    assert delivered is False
    assert time.monotonic() - started < 1
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4503}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_connections_outside_the_groups_of_a_lost_event_stay_open(patient, outsider, monkeypatch):
    patient_socket = await open_socket(patient)
    outsider_socket = await open_socket(outsider)
    failing_sends(monkeypatch, failures=2)

    await deliver(get_channel_layer(), (user_group(patient.pk),), {"type": "connection.revoke"}, "x")

    assert await patient_socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4503}
    assert await outsider_socket.receive_nothing(timeout=0.2)
    await outsider_socket.disconnect()


@pytest.mark.django_db
def test_a_lost_event_from_a_request_does_not_fail_the_request(monkeypatch):
    failing_sends(monkeypatch, failures=2)

    send_now(["user.1"], "presence.updated", {})  # returns: the change was committed already


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_receivers_on_other_processes_are_told_to_resync_once_redis_takes_a_message(patient, monkeypatch):
    """The socket stands for a connection on another process: the local close does not reach it,
    the re-sync notice sent a moment later does."""
    monkeypatch.setattr(events, "DELIVERY_LOST_HOOKS", [])
    monkeypatch.setattr(events, "RESYNC_NOTICE_PAUSES_SECONDS", (0.05, 0.05))
    socket = await open_socket(patient)
    attempts = failing_sends(monkeypatch, failures=3)  # the event twice, then the first notice

    await deliver(get_channel_layer(), (user_group(patient.pk),), {"type": "connection.revoke"}, "x")

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4503}
    assert attempts == [(user_group(patient.pk),)] * 4

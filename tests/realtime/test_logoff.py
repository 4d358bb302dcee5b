"""Automatic logoff of the socket: closed with 4401 after the idle limit (heartbeats do not
count, a call does) or the absolute limit, with an error event LOGGED_OFF saying which."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from realtime.logoff import logoff_reason
from tests.realtime.conftest import next_event, open_socket, request

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def limits(settings):
    settings.REALTIME_IDLE_TIMEOUT_MINUTES = 15
    settings.REALTIME_SESSION_MAX_HOURS = 12
    settings.REALTIME_LOGOFF_CHECK_SECONDS = 0.05
    return settings


async def _logged_off(socket) -> tuple[dict, dict]:
    error = await next_event(socket)
    closed = await socket.receive_output(timeout=5)
    return error, closed


async def _still_open(socket) -> bool:
    """Nothing but presence updates arrived: no logoff, no close."""
    await asyncio.sleep(0.2)  # a few checks of the watch
    pending = []
    while not await socket.receive_nothing(timeout=0.1):
        pending.append(await socket.receive_output())
    return all(message["type"] == "websocket.send" and "LOGGED_OFF" not in message["text"] for message in pending)


async def test_an_idle_socket_is_logged_off(patient, limits):
    with time_machine.travel(NOW, tick=False) as clock:
        socket = await open_socket(patient)

        # when 15 minutes pass without a message
        clock.shift(timedelta(minutes=15))
        error, closed = await _logged_off(socket)

    assert (error["type"], error["data"]["code"], error["data"]["details"]) == (
        "error",
        "LOGGED_OFF",
        {"reason": "idle"},
    )
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_message_keeps_the_socket_open_and_heartbeats_do_not(patient, limits):
    with time_machine.travel(NOW, tick=False) as clock:
        socket = await open_socket(patient)
        # a chat-like message at minute 10 counts (any message but a heartbeat)
        clock.shift(timedelta(minutes=10))
        await request(socket, {"type": "presence.set", "data": {"status": "away"}, "id": "1"})
        # at minute 24 it is 14 minutes since: still open
        clock.shift(timedelta(minutes=14))
        assert await _still_open(socket)
        # a heartbeat at minute 24 does not count: at minute 25 the socket is logged off
        await request(socket, {"type": "presence.heartbeat", "data": {}, "id": "2"})
        clock.shift(timedelta(minutes=1))
        error, closed = await _logged_off(socket)

    assert error["data"]["details"] == {"reason": "idle"}
    assert closed["code"] == 4401


async def test_a_message_after_the_idle_limit_is_refused_not_handled(patient, limits):
    limits.REALTIME_LOGOFF_CHECK_SECONDS = 3600  # only the message itself finds the limit passed
    with time_machine.travel(NOW, tick=False) as clock:
        socket = await open_socket(patient)
        clock.shift(timedelta(minutes=16))
        await socket.send_json_to({"type": "presence.set", "data": {"status": "away"}, "id": "1"})
        error, closed = await _logged_off(socket)

    assert (error["data"]["code"], closed["code"]) == ("LOGGED_OFF", 4401)
    assert "id" not in error  # the refusal answers no request: the message was not handled


async def test_the_absolute_limit_ends_even_a_busy_socket(patient, limits):
    limits.REALTIME_IDLE_TIMEOUT_MINUTES = 0  # idle logoff off: only the connection's age counts
    with time_machine.travel(NOW, tick=False) as clock:
        socket = await open_socket(patient)
        clock.shift(timedelta(hours=11, minutes=59))
        await request(socket, {"type": "presence.set", "data": {"status": "away"}, "id": "1"})
        clock.shift(timedelta(minutes=1))
        error, closed = await _logged_off(socket)

    assert (error["data"]["details"], closed["code"]) == ({"reason": "session_limit"}, 4401)


async def test_a_connection_in_a_call_is_never_idle_but_still_has_an_age_limit(settings):
    settings.REALTIME_IDLE_TIMEOUT_MINUTES, settings.REALTIME_SESSION_MAX_HOURS = 15, 12
    quiet = {"opened_at": NOW, "last_activity_at": NOW}

    assert logoff_reason(**quiet, in_call=True, now=NOW + timedelta(hours=2)) is None
    assert logoff_reason(**quiet, in_call=False, now=NOW + timedelta(minutes=14, seconds=59)) is None
    assert logoff_reason(**quiet, in_call=False, now=NOW + timedelta(minutes=15)) == "idle"
    assert logoff_reason(**quiet, in_call=True, now=NOW + timedelta(hours=12)) == "session_limit"

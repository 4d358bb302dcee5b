"""How many connections a process opens at once (realtime/opening.py): the rest wait their turn,
and one that waited too long is refused with a time to retry, never a 500."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from accounts.tokens import token_pair_for
from realtime.opening import opening_slot
from tests.realtime.conftest import open_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def one_slot(settings):
    settings.REALTIME_OPENING_SLOTS = 1


async def test_a_handshake_waits_for_a_free_slot_then_opens(patient, one_slot):
    async with opening_slot():  # the process's one slot, taken
        waiting = asyncio.ensure_future(open_socket(patient))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # not refused, not opened: waiting its turn

    socket = await asyncio.wait_for(waiting, 5)  # open_socket checks connection.ready
    await socket.disconnect()


async def test_a_handshake_that_waited_too_long_is_refused_with_1013_and_opens_on_retry(patient, one_slot, settings):
    settings.REALTIME_OPENING_WAIT_SECONDS = 0.2
    settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 5
    token = (await database_sync_to_async(token_pair_for)(patient))["access"]

    async with opening_slot():
        refused = await open_socket(token=token)
        error = await receive(refused)
        closed = await refused.receive_output(timeout=5)

    assert (error["type"], error["data"]["code"]) == ("error", "SERVICE_UNAVAILABLE")
    assert error["data"]["details"] == {"retry_after": 5}
    assert closed == {"type": "websocket.close", "code": 1013}
    retried = await open_socket(token=token)
    assert (await receive(retried))["type"] == "connection.ready"
    await retried.disconnect()


async def test_a_slot_is_given_back_when_the_opening_fails(patient, one_slot):
    """A refused handshake (here an unknown ticket) frees its slot: the next one opens at once."""
    refused = await open_socket(ticket="made-up")
    assert await refused.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    socket = await asyncio.wait_for(open_socket(patient), 2)
    await socket.disconnect()

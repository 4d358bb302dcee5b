"""A participant removed from a call: their socket leaves the call's group and its calls."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from core.events import call_group, send_now, user_group
from realtime.consumers import LOCAL_CONNECTIONS
from tests.realtime.conftest import open_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

CALL_ID = "5b0c1a52-6c57-4f51-9b8f-3f1f0c7e2a11"


async def test_a_removed_participants_socket_leaves_the_call(patient):
    # given the patient's socket is in a call
    socket = await open_socket(patient)
    [connection] = LOCAL_CONNECTIONS.values()
    await connection.group_join(call_group(CALL_ID))
    connection.calls.add(CALL_ID)

    # when they are told they were removed
    await database_sync_to_async(send_now)([user_group(patient.pk)], "call.participant_removed", {"call_id": CALL_ID})

    # then they get the event, and the socket is out of the call: no more of its events
    assert (await receive(socket))["type"] == "call.participant_removed"
    await asyncio.sleep(0.1)
    assert CALL_ID not in connection.calls
    assert call_group(CALL_ID) not in connection.groups_joined
    await database_sync_to_async(send_now)([call_group(CALL_ID)], "call.participant_left", {"call_id": CALL_ID})
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()

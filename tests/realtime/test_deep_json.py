"""A deeply nested message on the socket is answered with a MALFORMED_MESSAGE error event, not a
crash: orjson refuses documents nested past 1024 levels with its ordinary decode error. Through
Channels' communicator and through the served production protocol."""

import pytest

from tests.realtime.conftest import open_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.usefixtures("transport")
async def test_deep_json_on_the_socket_answers_a_malformed_message_error_event(patient):
    communicator = await open_socket(patient)
    await communicator.send_to(text_data='{"id": "r1", "type": "presence.heartbeat", "data": ' + nested(5000) + "}")

    reply = await receive(communicator)

    assert reply["type"] == "error"
    assert reply["data"]["code"] == "MALFORMED_MESSAGE"
    await communicator.disconnect()

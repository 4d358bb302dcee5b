"""``call.join`` over the socket takes REST's join fields (display name, media state, recording
consent) and refuses with the same codes: both go through ``rooms.call_join``."""

import pytest
from channels.db import database_sync_to_async

from tests.factories import DoctorFactory
from tests.realtime.conftest import (  # noqa: F401 (fixtures)
    _database_threads_give_back_connections,
    open_socket,
    request,
    served,
    transport,
)
from video_calls.models import CallParticipant, RecordingConsent
from video_calls.services.guests import group_consultation_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("transport")]


@pytest.fixture
def colleague(db):
    return DoctorFactory()


@pytest.fixture
def recorded_call(doctor, colleague):
    return group_consultation_create(user=doctor, invitee_ids=[colleague.pk], recording_enabled=True)


def _join(call, **fields) -> dict:
    return {"type": "call.join", "id": "j", "data": {"call_id": str(call.pk), **fields}}


async def test_a_socket_join_without_consent_is_refused_like_rest(recorded_call, colleague):
    socket = await open_socket(colleague)

    error = await request(socket, _join(recorded_call))

    assert error["type"] == "error"
    assert error["data"]["code"] == "RECORDING_CONSENT_REQUIRED"
    assert error["data"]["details"] == {"recording_enabled": True, "auto_recording": False}
    await socket.disconnect()


async def test_a_socket_join_passes_the_join_fields(recorded_call, colleague):
    socket = await open_socket(colleague)

    reply = await request(
        socket, _join(recorded_call, recording_consent=True, display_name="Dr W.", audio_enabled=False)
    )

    assert reply["type"] == "ack", reply
    participant = await database_sync_to_async(CallParticipant.objects.get)(call=recorded_call, user=colleague)
    assert (participant.display_name, participant.audio_enabled, participant.video_enabled) == ("Dr W.", False, True)
    assert await database_sync_to_async(RecordingConsent.objects.filter(user=colleague).count)() == 1
    await socket.disconnect()


async def test_a_malformed_socket_join_field(recorded_call, colleague):
    socket = await open_socket(colleague)

    error = await request(socket, _join(recorded_call, video_enabled="maybe"))

    assert error["data"]["code"] == "VALIDATION_ERROR"
    assert error["data"]["details"]["video_enabled"][0]["code"] == "invalid"
    await socket.disconnect()

"""Every way out of a connection runs its clean-up: the server closing the socket while a
message from the same client is still queued (1009 for an oversized frame, then the next
message) still leaves the user offline, not busy, and out of their call.

Through a real uvicorn server, with the production protocol (realtime/direct.py) and with
uvicorn's stock websockets-sansio protocol: both refuse a send after ``websocket.close``."""

import asyncio
import json

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from config.serve import SERVER_OPTIONS
from presence.models import PresenceConnection, PresenceStatus, UserPresence
from tests.realtime import conftest
from tests.realtime.conftest import ORIGIN, ServedSocket, next_event, open_socket, receive, request
from tests.realtime.test_frames import RawClient, masked
from tests.sessions.factories import SessionFactory
from video_calls.models import CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.adhoc import call_accept, call_initiate

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

PROTOCOLS = {
    "production": SERVER_OPTIONS["ws"],
    "stock": "websockets-sansio",
}


@pytest_asyncio.fixture(params=sorted(PROTOCOLS))
async def server_url(request):
    """ws://127.0.0.1:<port> of uvicorn serving the application with the given protocol."""
    async with conftest.serving({**SERVER_OPTIONS, "ws": PROTOCOLS[request.param]}, log_config=None):
        yield conftest._served_url


async def _open(url: str, user) -> ServedSocket:
    from realtime.tickets import ticket_issue

    ticket = await database_sync_to_async(ticket_issue)(user=user)
    served = ServedSocket(await connect(f"{url}/ws/?ticket={ticket}", origin=ORIGIN[1].decode(), max_size=None))
    assert (await receive(served))["type"] == "connection.ready"
    return served


def _ongoing_call(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call


def _state_of(user, call) -> tuple[str, int, str, str]:
    return (
        UserPresence.objects.get(user=user).status,
        PresenceConnection.objects.filter(user=user).count(),
        CallParticipant.objects.get(call=call, user=user).status,
        type(call).objects.get(pk=call.pk).status,
    )


def _application_errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "ASGI application" in record.getMessage()]


async def _eventually(read, expected, timeout: float = 5.0):
    """What ``read`` gives once it equals ``expected`` or the time is up (the server runs the
    clean-up after the socket closed, on its own schedule)."""
    value = None
    for _ in range(int(timeout / 0.05)):
        value = await database_sync_to_async(read)()
        if value == expected:
            break
        await asyncio.sleep(0.05)
    return value


async def test_closing_for_an_oversized_frame_with_a_message_queued_still_cleans_up(
    server_url, doctor, patient, settings, caplog
):
    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    doctor_socket = await _open(server_url, doctor)
    patient_socket = await _open(server_url, patient)
    for socket_, name in ((doctor_socket, "doctor"), (patient_socket, "patient")):
        await socket_.send_json_to({"type": "call.join", "id": name, "data": {"call_id": str(call.pk)}})
        assert (await next_event(socket_))["type"] == "ack"
    assert await database_sync_to_async(lambda: UserPresence.objects.get(user=doctor).status)() == "busy"

    oversized = {
        "type": "signal.offer",
        "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": "x" * settings.REALTIME_MAX_FRAME_BYTES},
    }
    ice = {"type": "signal.ice", "id": "i", "data": {"call_id": str(call.pk), "to": str(patient.pk), "candidate": {}}}
    # Back to back: the second is queued while the first is refused.
    await doctor_socket.connection.send(json.dumps(oversized))
    await doctor_socket.connection.send(json.dumps(ice))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await doctor_socket.connection.recv()

    assert closed.value.rcvd.code == 1009
    doctor_left = (PresenceStatus.OFFLINE, 0, ParticipantStatus.LEFT, CallStatus.COMPLETED)
    assert await _eventually(lambda: _state_of(doctor, call), doctor_left) == doctor_left
    # The patient is still connected; leaving a 1:1 call ended it, so they are no longer busy.
    assert await _eventually(lambda: UserPresence.objects.get(user=patient).status, "online") == "online"
    # The queued message was dropped, not answered after the close (which the server refuses).
    assert not _application_errors(caplog)
    await patient_socket.disconnect()


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        (masked(Opcode.TEXT, b'{"type": "\xff"}'), 1007),  # not UTF-8
        (Frame(Opcode.TEXT, b"{}").serialize(mask=False), 1002),  # a client's frames are masked
    ],
    ids=["1007", "1002"],
)
async def test_a_protocol_error_behind_queued_messages_still_cleans_up(
    server_url, doctor, patient, bad_frame, code, caplog
):
    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    client = await RawClient.open(doctor)
    await client.write(
        masked(Opcode.TEXT, json.dumps({"type": "call.join", "id": "j", "data": {"call_id": str(call.pk)}}).encode())
    )
    assert json.loads(await client.next_text())["id"] == "j"
    heartbeat = {"type": "presence.heartbeat", "id": "h"}  # the database, so the next message waits
    ice = {"type": "signal.ice", "id": "i", "data": {"call_id": str(call.pk), "to": str(patient.pk), "candidate": {}}}

    await client.write(
        masked(Opcode.TEXT, json.dumps(heartbeat).encode()) + masked(Opcode.TEXT, json.dumps(ice).encode()) + bad_frame
    )

    assert await client.close_code() == code
    doctor_left = (PresenceStatus.OFFLINE, 0, ParticipantStatus.LEFT, CallStatus.COMPLETED)
    assert await _eventually(lambda: _state_of(doctor, call), doctor_left) == doctor_left
    assert not _application_errors(caplog)
    client.close()


async def test_a_connection_that_ends_without_a_disconnect_message_still_cleans_up(doctor, patient):
    """Whatever ends the consumer (here a message it has no handler for, as a server bug would
    send), the clean-up runs on the way out."""
    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    socket_ = await open_socket(doctor)
    reply = await request(socket_, {"type": "call.join", "id": "j", "data": {"call_id": str(call.pk)}})
    assert reply["type"] == "ack"

    await socket_.send_input({"type": "websocket.unheard_of"})
    with pytest.raises(ValueError, match="No handler"):
        await socket_.receive_output(timeout=5)

    doctor_left = (PresenceStatus.OFFLINE, 0, ParticipantStatus.LEFT, CallStatus.COMPLETED)
    assert await database_sync_to_async(_state_of)(doctor, call) == doctor_left

"""A call's cached routes never outlive a participant's place in the call: someone sent back to
the waiting room, removed or gone cannot signal or be signalled, and when the event saying the
call ended never arrived (a Redis restart lost it) a signal into it is refused, not acknowledged
into the void."""

import asyncio
import contextlib
import json

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.exceptions import ConnectionClosed

from realtime.registry import LAYER_LOST_HOOKS
from tests.factories import DoctorFactory, PatientFactory
from tests.realtime.conftest import ServedSocket, kill_redis_clients, next_event, open_socket, receive, request
from tests.realtime.test_signaling import SDP, _in_call, _ongoing_call
from tests.video_calls.factories import CallFactory, CallParticipantFactory
from video_calls import consumers as call_consumers
from video_calls.models import Call, CallKind, CallParticipant, CallStatus, ParticipantRole, ParticipantStatus
from video_calls.services.guests import participant_remove
from video_calls.services.rooms import call_leave
from video_calls.services.waiting_room import participant_send_back

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("transport")]


def _offer(call, to, request_id: str = "o") -> dict:
    return {"type": "signal.offer", "id": request_id, "data": {"call_id": str(call.pk), "to": str(to.pk), "sdp": SDP}}


async def _signals_received(socket_) -> list[dict]:
    """The signals that reached ``socket_`` by now (other events, such as presence, aside)."""
    messages = []
    if isinstance(socket_, ServedSocket):
        with contextlib.suppress(TimeoutError):
            while True:
                messages.append(json.loads(await socket_.receive_from(timeout=0.3)))
    else:  # the communicator's receive_nothing leaves the queue alone; its timeout would end the app
        while not await socket_.receive_nothing(timeout=0.3):
            messages.append(await receive(socket_))
    return [message for message in messages if message["type"].startswith("signal.")]


async def _reply(socket_, message: dict) -> dict:
    """Send ``message`` and return the reply to it, past the events arriving meanwhile."""
    await socket_.send_json_to(message)
    while True:
        reply = await next_event(socket_)
        if reply.get("id") == message["id"]:
            return reply


async def _relayed(sender_socket, addressee_socket, call, addressee) -> None:
    """One offer goes through: the routes are now cached on this process."""
    await sender_socket.send_json_to(_offer(call, addressee, "warm-up"))
    assert (await next_event(addressee_socket))["type"] == "signal.offer"
    assert (await next_event(sender_socket))["type"] == "ack"


async def _close_code(socket_) -> int:
    """The code the server closes ``socket_`` with, past any event still on its way."""
    if isinstance(socket_, ServedSocket):
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await socket_.connection.recv()
        return closed.value.rcvd.code
    while True:
        output = await socket_.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output["code"]


def _group_room():
    doctor, patient = DoctorFactory(), PatientFactory()
    call = CallFactory(kind=CallKind.GROUP, initiated_by=doctor, host=doctor)
    CallParticipantFactory(call=call, user=doctor, role=ParticipantRole.DOCTOR)
    CallParticipantFactory(call=call, user=patient, role=ParticipantRole.PATIENT)
    return call, doctor, patient


def _send_back(call, host, patient):
    participant_send_back(call=call, user=host, participant_user_id=patient.pk)


def _remove(call, host, patient):
    participant_remove(call=call, user=host, participant_user_id=patient.pk)


def _leave_over_rest(call, host, patient):
    call_leave(call=call, user=patient)  # the socket still points at the call


@pytest.mark.parametrize("place_lost", [_send_back, _remove, _leave_over_rest], ids=["waiting", "removed", "left"])
async def test_only_joined_participants_signal_or_are_signalled(place_lost):
    call, doctor, patient = await database_sync_to_async(_group_room)()
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await _relayed(patient_socket, doctor_socket, call, doctor)

    await database_sync_to_async(place_lost)(call, doctor, patient)
    await next_event(doctor_socket)  # the room hears of it: the cached routes are dropped
    from_them = await _reply(patient_socket, _offer(call, doctor, "from"))
    to_them = await _reply(doctor_socket, _offer(call, patient, "to"))

    assert from_them["type"] == "error" and from_them["data"]["code"] == "PERMISSION_DENIED"
    assert to_them["type"] == "error" and to_them["data"]["code"] == "PERMISSION_DENIED"
    assert await _signals_received(doctor_socket) == []
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


def _end_without_telling_anyone(call) -> None:
    """The call ends in the database, and the ``call.ended`` event never reaches the sockets."""
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(status=CallStatus.COMPLETED, ended_at=now, end_reason="hangup")
    CallParticipant.objects.filter(call=call, status=ParticipantStatus.JOINED).update(
        status=ParticipantStatus.LEFT, left_at=now
    )


@pytest.fixture
def call(doctor, patient):
    return _ongoing_call(doctor, patient)


async def test_after_a_missed_call_ended_a_reconnected_socket_cannot_signal_on_cached_routes(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await _relayed(doctor_socket, patient_socket, call, patient)

    await database_sync_to_async(_end_without_telling_anyone)(call)
    reconnected = await open_socket(doctor)
    join = await request(reconnected, {"type": "call.join", "id": "j", "data": {"call_id": str(call.pk)}})
    signal = await request(reconnected, _offer(call, patient))

    assert join["data"]["code"] == "INVALID_CALL_STATE"
    assert signal == {
        "type": "error",
        "id": "o",
        "data": {
            "code": "PERMISSION_DENIED",
            "message": "Join the call on this connection before signaling in it.",
            "details": {},
        },
    }
    assert await _signals_received(patient_socket) == []
    for socket_ in (reconnected, doctor_socket, patient_socket):
        await socket_.disconnect()


async def test_once_the_layer_is_lost_no_cached_route_is_trusted(call, doctor, patient):
    """The consumer runs the layer-lost hooks when its channel layer fails (then closes with
    4503); a connection on this process that did not see the failure signals again."""
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await _relayed(doctor_socket, patient_socket, call, patient)

    await database_sync_to_async(_end_without_telling_anyone)(call)
    for hook in LAYER_LOST_HOOKS:
        hook(doctor_socket)
    signal = await request(doctor_socket, _offer(call, patient))

    assert signal["type"] == "error"
    assert signal["data"]["code"] == "PERMISSION_DENIED"  # what the uncached path answers
    assert await _signals_received(patient_socket) == []
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


@pytest.mark.redis
async def test_after_a_redis_restart_a_signal_into_a_call_that_ended_meanwhile_is_refused(call, doctor, patient):
    """When Redis restarts, the process's subscription fails: every connection it serves closes
    with 4503 and the process drops every cached route. The call ended meanwhile and its event
    was lost; a signal into it is refused."""
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await _relayed(doctor_socket, patient_socket, call, patient)

    await database_sync_to_async(_end_without_telling_anyone)(call)
    kill_redis_clients()
    closing = [asyncio.ensure_future(_close_code(socket_)) for socket_ in (doctor_socket, patient_socket)]
    done, pending = await asyncio.wait(closing, timeout=10)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    routes_kept = str(call.pk) in call_consumers._ROUTES
    reconnected = await open_socket(doctor)
    signal = await _reply(reconnected, _offer(call, patient))

    assert [task.result() for task in done] == [4503, 4503]
    assert routes_kept is False
    assert signal["type"] == "error"
    assert signal["data"]["code"] == "PERMISSION_DENIED"
    await reconnected.disconnect()

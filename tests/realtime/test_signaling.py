"""Calls over the socket: join and leave through the same services as REST, media state, and
offer/answer/ICE relayed only between connected participants of one call."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from presence.models import PresenceConnection
from tests.realtime.conftest import next_event, open_socket, request
from tests.sessions.factories import SessionFactory
from video_calls.models import CallParticipant, CallStatus
from video_calls.services.adhoc import call_accept, call_initiate
from video_calls.tasks import call_leave_unless_reconnected

# Every test runs twice: through Channels' communicator (the ordinary ASGI path) and through
# uvicorn with the production protocol, where signals take the direct path (realtime/direct.py).
pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("transport")]

SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    + "a=candidate:1 1 udp 2122260223 10.0.0.1 9 typ host\r\n" * 10
)


def _ongoing_call(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call


async def _in_call(user, call):
    socket = await open_socket(user)
    reply = await request(socket, {"type": "call.join", "id": "join", "data": {"call_id": str(call.pk)}})
    assert reply["type"] == "ack", reply
    return socket, reply


@pytest.fixture
def call(doctor, patient):
    return _ongoing_call(doctor, patient)


async def test_join_over_the_socket_answers_the_call_snapshot_like_rest(call, doctor):
    socket, reply = await _in_call(doctor, call)

    data = reply["data"]
    assert data["type"] == "call.join"
    assert data["call"]["id"] == str(call.pk)
    assert data["call"]["status"] == "ongoing"
    assert {participant["user"]["id"] for participant in data["call"]["participants"]} == {
        str(call.initiated_by_id),
        *[str(p.user_id) for p in await database_sync_to_async(list)(CallParticipant.objects.filter(call=call))],
    }
    assert data["waiting"] is False
    assert data["ice_servers"]
    await socket.disconnect()


async def test_offer_answer_and_ice_reach_only_the_addressed_peer(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)

    await doctor_socket.send_json_to(
        {"type": "signal.offer", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}}
    )
    offer = await next_event(patient_socket)
    await patient_socket.send_json_to(
        {"type": "signal.answer", "data": {"call_id": str(call.pk), "to": str(doctor.pk), "sdp": "answer-sdp"}}
    )
    answer = await next_event(doctor_socket)
    candidates = [{"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}, None]
    await doctor_socket.send_json_to(
        {"type": "signal.ice", "data": {"call_id": str(call.pk), "to": str(patient.pk), "candidates": candidates}}
    )
    ice = await next_event(patient_socket)

    assert offer == {"type": "signal.offer", "data": {"call_id": str(call.pk), "from": str(doctor.pk), "sdp": SDP}}
    assert answer["data"] == {"call_id": str(call.pk), "from": str(patient.pk), "sdp": "answer-sdp"}
    assert ice["data"]["candidates"] == candidates
    assert await doctor_socket.receive_nothing(timeout=0.2)
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_non_participant_cannot_signal_into_a_call(call, patient, outsider):
    patient_socket, _ = await _in_call(patient, call)
    outsider_socket = await open_socket(outsider)

    error = await request(
        outsider_socket,
        {"type": "signal.offer", "id": "x", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}},
    )

    assert error["type"] == "error"
    assert error["id"] == "x"
    assert error["data"]["code"] == "PERMISSION_DENIED"
    assert await patient_socket.receive_nothing(timeout=0.2)
    await patient_socket.disconnect()
    await outsider_socket.disconnect()


async def test_a_participant_cannot_address_someone_outside_the_call(call, doctor, outsider):
    doctor_socket, _ = await _in_call(doctor, call)

    error = await request(
        doctor_socket,
        {"type": "signal.offer", "id": "x", "data": {"call_id": str(call.pk), "to": str(outsider.pk), "sdp": SDP}},
    )

    assert error["data"]["code"] == "PERMISSION_DENIED"
    await doctor_socket.disconnect()


async def test_signal_to_a_participant_without_a_socket_in_the_call_says_so(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)

    error = await request(
        doctor_socket,
        {"type": "signal.offer", "id": "x", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}},
    )

    assert error["data"]["code"] == "PEER_NOT_CONNECTED"
    await doctor_socket.disconnect()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"to": "00000000-0000-0000-0000-000000000001", "sdp": "x"}, "call_id"),
        ({"call_id": "not-a-uuid", "to": "00000000-0000-0000-0000-000000000001", "sdp": "x"}, "call_id"),
        ({"call_id": "00000000-0000-0000-0000-000000000001", "to": 42, "sdp": "x"}, "to"),
        ({"call_id": "00000000-0000-0000-0000-000000000001", "to": "00000000-0000-0000-0000-000000000002"}, "sdp"),
        (
            {"call_id": "00000000-0000-0000-0000-000000000001", "to": "00000000-0000-0000-0000-000000000002", "sdp": 7},
            "sdp",
        ),
    ],
)
async def test_malformed_offers_are_validation_errors(doctor, data, field):
    socket = await open_socket(doctor)

    error = await request(socket, {"type": "signal.offer", "id": "v", "data": data})

    assert error["data"]["code"] == "VALIDATION_ERROR"
    assert field in error["data"]["details"]
    await socket.disconnect()


async def test_too_many_ice_candidates_in_one_message_are_refused(doctor):
    socket = await open_socket(doctor)
    data = {
        "call_id": "00000000-0000-0000-0000-000000000001",
        "to": "00000000-0000-0000-0000-000000000002",
        "candidates": [{"candidate": "c"}] * 51,
    }

    error = await request(socket, {"type": "signal.ice", "id": "i", "data": data})

    assert error["data"]["code"] == "VALIDATION_ERROR"
    assert error["data"]["details"]["candidates"][0]["code"] == "max_length"
    await socket.disconnect()


async def test_joining_an_unknown_call_is_call_not_found(doctor):
    socket = await open_socket(doctor)

    error = await request(
        socket, {"type": "call.join", "id": "j", "data": {"call_id": "00000000-0000-0000-0000-000000000009"}}
    )

    assert error == {
        "type": "error",
        "id": "j",
        "data": {"code": "CALL_NOT_FOUND", "message": "Call not found.", "details": {}},
    }
    await socket.disconnect()


async def test_joining_someone_elses_call_is_call_not_found(call, outsider):
    socket = await open_socket(outsider)

    error = await request(socket, {"type": "call.join", "id": "j", "data": {"call_id": str(call.pk)}})

    assert error["data"]["code"] == "CALL_NOT_FOUND"
    await socket.disconnect()


async def test_media_update_over_the_socket_reaches_the_room(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)

    reply = await request(
        doctor_socket, {"type": "media.update", "id": "m", "data": {"call_id": str(call.pk), "audio_enabled": False}}
    )
    seen_by_patient = await next_event(patient_socket)

    assert reply["data"]["audio_enabled"] is False
    assert seen_by_patient["type"] == "media.updated"
    assert seen_by_patient["data"]["user_id"] == str(doctor.pk)
    assert seen_by_patient["data"]["audio_enabled"] is False
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_after_the_peer_leaves_signals_to_them_are_refused(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await doctor_socket.send_json_to(
        {"type": "signal.offer", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}}
    )
    assert (await next_event(patient_socket))["type"] == "signal.offer"  # routes are now cached

    left = await request(patient_socket, {"type": "call.leave", "id": "l", "data": {"call_id": str(call.pk)}})
    ended = await next_event(doctor_socket)
    error = await request(
        doctor_socket,
        {"type": "signal.offer", "id": "after", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}},
    )

    assert left["type"] == "ack"
    assert ended["type"] == "call.ended"
    assert error["data"]["code"] == "PERMISSION_DENIED"
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_dropped_connection_leaves_the_call_once_the_grace_period_passes(call, doctor):
    doctor_socket, _ = await _in_call(doctor, call)

    await doctor_socket.disconnect()  # Celery runs eagerly in tests: the grace task runs now

    # Through a real server the disconnect is handled after the client's close returns.
    read_status = database_sync_to_async(lambda: type(call).objects.get(pk=call.pk).status)
    for _ in range(100):
        if await read_status() == CallStatus.COMPLETED:
            break
        await asyncio.sleep(0.05)
    assert await read_status() == CallStatus.COMPLETED  # leaving a 1:1 call ends it


async def test_a_reconnected_user_stays_in_the_call(call, doctor):
    socket, _ = await _in_call(doctor, call)

    taken_out = await database_sync_to_async(call_leave_unless_reconnected)(str(call.pk), str(doctor.pk))

    assert taken_out is False
    assert await database_sync_to_async(PresenceConnection.objects.filter(call=call, user=doctor).exists)()
    await socket.disconnect()


async def test_a_signal_reaches_a_peer_who_connected_after_the_senders_routes_were_read(call, doctor, patient):
    doctor_socket, _ = await _in_call(doctor, call)  # the call's routes are read: the patient has no socket yet
    patient_socket, _ = await _in_call(patient, call)

    await doctor_socket.send_json_to(
        {"type": "signal.offer", "data": {"call_id": str(call.pk), "to": str(patient.pk), "sdp": SDP}}
    )

    assert (await next_event(patient_socket))["data"]["from"] == str(doctor.pk)
    await doctor_socket.disconnect()
    await patient_socket.disconnect()

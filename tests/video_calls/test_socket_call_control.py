"""Ringing over the socket (video_calls/consumers.py): ``call.initiate``, ``call.accept``,
``call.decline`` and ``call.hangup`` run the services REST's calls/initiate/, accept/, decline/ and
hangup/ run, answer what REST answers, and refuse with the codes REST refuses with, as ``error``
events on a connection that stays open."""

import uuid

import pytest
from channels.db import database_sync_to_async

from presence.models import PresenceConnection
from tests.conftest import client_for
from tests.realtime.conftest import next_event, open_socket
from tests.sessions.factories import SessionFactory
from video_calls.models import Call, CallStatus, EndReason
from video_calls.serializers_adhoc import CallPlacedSerializer
from video_calls.services.adhoc import call_initiate

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def care(doctor, patient):
    """The persona doctor and patient share a session, so they may ring each other."""
    return SessionFactory(doctor=doctor, patient=patient)


@pytest.fixture
def ringing(care, doctor, patient) -> Call:
    return call_initiate(caller=doctor, callee_id=patient.pk)


def _error(reply: dict, code: str, request_id: str) -> dict:
    """``reply`` is the documented error event with this code, answering ``request_id``."""
    assert reply["type"] == "error", reply
    assert reply["id"] == request_id
    assert set(reply["data"]) == {"code", "message", "details"}, reply
    assert reply["data"]["code"] == code, reply
    assert reply["data"]["message"]
    return reply["data"]


async def answer(socket, message: dict) -> dict:
    """Send ``message`` and return its ``ack`` or ``error``, passing over the events that an
    earlier request caused (they follow that request's ack)."""
    await socket.send_json_to(message)
    while True:
        reply = await next_event(socket)
        if reply["type"] in ("ack", "error") and reply.get("id") == message.get("id"):
            return reply


@database_sync_to_async
def _rest_post(user, path: str):
    return client_for(user).post(path)


async def _status(call: Call) -> tuple[str, str]:
    call = await database_sync_to_async(Call.objects.get)(pk=call.pk)
    return call.status, call.end_reason


# --- Success ----------------------------------------------------------------------------------


async def test_initiate_rings_the_callee_and_acks_the_call_with_the_callers_ice(care, doctor, patient, settings):
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478"]
    settings.CALL_TURN_SECRET = "secret"
    doctor_socket = await open_socket(doctor)
    patient_socket = await open_socket(patient)

    reply = await answer(
        doctor_socket,
        {"type": "call.initiate", "id": "ring", "data": {"callee_id": str(patient.pk), "media": "voice"}},
    )
    heard = await next_event(patient_socket)

    assert reply["type"] == "ack" and reply["id"] == "ring"
    data = reply["data"]
    assert data["type"] == "call.initiate"
    assert set(data) - {"type"} == set(CallPlacedSerializer.Meta.fields)  # REST's answer
    assert data["status"] == "ringing"
    assert data["media"] == "voice"
    assert data["initiated_by_id"] == str(doctor.pk)
    assert data["ice_servers"][1]["username"].endswith(f":{doctor.pk}")
    assert data["ice_expires_at"]
    assert heard["type"] == "call.initiated"
    assert heard["data"]["call_id"] == data["id"]
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_accept_acks_the_join_payload_and_puts_this_connection_in_the_call(ringing, doctor, patient):
    doctor_socket = await open_socket(doctor)
    patient_socket = await open_socket(patient)

    reply = await answer(patient_socket, {"type": "call.accept", "id": "a", "data": {"call_id": str(ringing.pk)}})
    caller_heard = await next_event(doctor_socket)
    # The caller's client joins the call on the connection that carries it, then both signal.
    await answer(doctor_socket, {"type": "call.join", "id": "j", "data": {"call_id": str(ringing.pk)}})
    await patient_socket.send_json_to(
        {"type": "signal.offer", "data": {"call_id": str(ringing.pk), "to": str(doctor.pk), "sdp": "offer"}}
    )
    offer = await next_event(doctor_socket)

    assert reply["type"] == "ack", reply
    data = reply["data"]
    assert data["type"] == "call.accept"
    assert data["call"]["status"] == "ongoing"
    assert data["participant_status"] == "joined"
    assert data["waiting"] is False
    assert data["ice_servers"]
    assert caller_heard["type"] == "call.accepted"
    assert offer["data"] == {"call_id": str(ringing.pk), "from": str(patient.pk), "sdp": "offer"}
    connection = await database_sync_to_async(PresenceConnection.objects.get)(user=patient)
    assert connection.call_id == ringing.pk
    assert await _status(ringing) == (CallStatus.ONGOING, "")
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


@pytest.mark.parametrize("reason", [None, "busy"])
async def test_decline_acks_the_declined_call(ringing, doctor, patient, reason):
    doctor_socket = await open_socket(doctor)
    patient_socket = await open_socket(patient)
    data = {"call_id": str(ringing.pk)} | ({"reason": reason} if reason else {})

    reply = await answer(patient_socket, {"type": "call.decline", "id": "d", "data": data})
    caller_heard = await next_event(doctor_socket)

    assert reply["type"] == "ack", reply
    assert reply["data"]["type"] == "call.decline"
    assert reply["data"]["status"] == "declined"
    assert reply["data"]["end_reason"] == (reason or "declined")
    assert caller_heard["type"] == "call.declined"
    assert await _status(ringing) == (CallStatus.DECLINED, reason or EndReason.DECLINED)
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_hangup_while_ringing_is_the_callers_cancel(ringing, doctor):
    socket = await open_socket(doctor)

    reply = await answer(socket, {"type": "call.hangup", "id": "h", "data": {"call_id": str(ringing.pk)}})

    assert reply["type"] == "ack", reply
    assert reply["data"]["status"] == "cancelled"
    assert await _status(ringing) == (CallStatus.CANCELLED, EndReason.CALLER_CANCELLED)
    await socket.disconnect()


async def test_hangup_ends_an_ongoing_call_and_takes_this_connection_out_of_it(ringing, doctor, patient):
    doctor_socket = await open_socket(doctor)
    patient_socket = await open_socket(patient)
    await answer(patient_socket, {"type": "call.accept", "id": "a", "data": {"call_id": str(ringing.pk)}})

    reply = await answer(patient_socket, {"type": "call.hangup", "id": "h", "data": {"call_id": str(ringing.pk)}})

    assert reply["type"] == "ack", reply
    assert reply["data"]["type"] == "call.hangup"
    assert reply["data"]["status"] == "completed"
    assert reply["data"]["end_reason"] == "hangup"
    connection = await database_sync_to_async(PresenceConnection.objects.get)(user=patient)
    assert connection.call_id is None
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


# --- Refused roles ------------------------------------------------------------------------------


async def test_the_caller_cannot_accept_or_decline_their_own_call(ringing, doctor):
    socket = await open_socket(doctor)

    accepted = await answer(socket, {"type": "call.accept", "id": "a", "data": {"call_id": str(ringing.pk)}})
    declined = await answer(socket, {"type": "call.decline", "id": "d", "data": {"call_id": str(ringing.pk)}})
    still_open = await answer(socket, {"type": "presence.heartbeat", "id": "hb"})

    _error(accepted, "NOT_CALLEE", "a")
    _error(declined, "NOT_CALLEE", "d")
    assert still_open["type"] == "ack"
    assert await _status(ringing) == (CallStatus.RINGING, "")
    await socket.disconnect()


async def test_a_patient_cannot_ring_someone_outside_their_care(patient, outsider):
    socket = await open_socket(patient)

    reply = await answer(socket, {"type": "call.initiate", "id": "r", "data": {"callee_id": str(outsider.pk)}})

    _error(reply, "USER_NOT_FOUND", "r")
    assert not await database_sync_to_async(Call.objects.exists)()
    await socket.disconnect()


async def test_ringing_someone_already_ringing_is_callee_busy(ringing, staff, patient):
    socket = await open_socket(staff)

    reply = await answer(socket, {"type": "call.initiate", "id": "r", "data": {"callee_id": str(patient.pk)}})

    _error(reply, "CALLEE_BUSY", "r")
    await socket.disconnect()


# --- Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "data", "field", "code"),
    [
        ("call.initiate", {}, "callee_id", "required"),
        ("call.initiate", {"callee_id": "not-a-uuid"}, "callee_id", "invalid"),
        ("call.initiate", {"callee_id": str(uuid.uuid4()), "media": "fax"}, "media", "invalid_choice"),
        ("call.accept", {}, "call_id", "required"),
        ("call.decline", {"call_id": str(uuid.uuid4()), "reason": "maybe"}, "reason", "invalid_choice"),
        ("call.hangup", {"call_id": "7"}, "call_id", "invalid"),
    ],
)
async def test_bad_input_is_a_validation_error_per_field(patient, message_type, data, field, code):
    socket = await open_socket(patient)

    reply = await answer(socket, {"type": message_type, "id": "x", "data": data})

    error = _error(reply, "VALIDATION_ERROR", "x")
    assert set(error["details"]) == {field}
    [item] = error["details"][field]
    assert set(item) == {"message", "code"}
    assert item["code"] == code
    await socket.disconnect()


async def test_calling_yourself_is_refused_as_over_rest(patient):
    socket = await open_socket(patient)

    reply = await answer(socket, {"type": "call.initiate", "id": "r", "data": {"callee_id": str(patient.pk)}})

    _error(reply, "CANNOT_CALL_SELF", "r")
    await socket.disconnect()


# --- Someone else's call: the same "not found" as REST ----------------------------------------------


@pytest.mark.parametrize("action", ["accept", "decline", "hangup"])
async def test_another_users_call_is_not_found_like_over_rest(ringing, outsider, action):
    socket = await open_socket(outsider)
    rest = await _rest_post(outsider, f"/api/v1/calls/{ringing.pk}/{action}/")

    reply = await answer(socket, {"type": f"call.{action}", "id": "x", "data": {"call_id": str(ringing.pk)}})
    unknown = await answer(socket, {"type": f"call.{action}", "id": "y", "data": {"call_id": str(uuid.uuid4())}})

    assert rest.status_code == 404
    assert rest.json()["error"]["code"] == "CALL_NOT_FOUND"
    _error(reply, "CALL_NOT_FOUND", "x")
    _error(unknown, "CALL_NOT_FOUND", "y")
    assert await _status(ringing) == (CallStatus.RINGING, "")
    await socket.disconnect()


async def test_the_same_refusals_as_rest_for_a_call_in_the_wrong_state(ringing, patient):
    socket = await open_socket(patient)
    await answer(socket, {"type": "call.decline", "id": "d", "data": {"call_id": str(ringing.pk)}})
    rest = await _rest_post(patient, f"/api/v1/calls/{ringing.pk}/accept/")

    reply = await answer(socket, {"type": "call.accept", "id": "a", "data": {"call_id": str(ringing.pk)}})

    assert rest.status_code == 409
    assert rest.json()["error"]["code"] == "INVALID_CALL_STATE"
    _error(reply, "INVALID_CALL_STATE", "a")
    await socket.disconnect()


# --- Rate limits ------------------------------------------------------------------------------


async def test_ringing_over_the_socket_shares_the_rest_initiation_limit(care, doctor, patient, settings):
    """1 per 5 seconds per user by default, counted once for REST and the socket together."""
    settings.CALL_INITIATE_THROTTLE_RATE = "1/5s"
    doctor_socket = await open_socket(doctor)
    ring = {"type": "call.initiate", "data": {"callee_id": str(patient.pk)}}

    first = await answer(doctor_socket, {**ring, "id": "first"})
    second = await answer(doctor_socket, {**ring, "id": "second"})
    over_rest = await database_sync_to_async(
        lambda: client_for(doctor).post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk)})
    )()

    assert first["type"] == "ack"
    refused = _error(second, "RATE_LIMITED", "second")
    assert 1 <= refused["details"]["retry_after"] <= 5
    assert over_rest.status_code == 429
    assert await database_sync_to_async(Call.objects.filter(initiated_by=doctor).count)() == 1


async def test_every_call_control_message_counts_on_the_call_endpoints_budget(ringing, patient, settings):
    settings.VIDEO_CALL_THROTTLE_RATE = "1/min"
    patient_socket = await open_socket(patient)

    first = await answer(patient_socket, {"type": "call.decline", "id": "no", "data": {"call_id": str(ringing.pk)}})
    second = await answer(patient_socket, {"type": "call.hangup", "id": "bye", "data": {"call_id": str(ringing.pk)}})

    assert first["type"] == "ack"
    _error(second, "RATE_LIMITED", "bye")

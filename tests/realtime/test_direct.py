"""The direct path of the production protocol (realtime/direct.py): signals relayed in the
server's read callback, in order with everything else the client sends (never ahead of a slower
message sent before them), with the same checks, rate limit and replies as the ordinary path,
and left to the ordinary path, which waits, when a peer stops reading. Behaviour shared with the
ordinary path is covered by test_signaling.py, which runs on both."""

import asyncio
import dataclasses
import json

import pytest
from websockets.frames import Opcode

from realtime.consumers import LOCAL_CONNECTIONS, RealtimeConsumer
from realtime.registry import HANDLERS
from tests.realtime.conftest import next_event, open_socket, request
from tests.realtime.test_frames import RawClient, ack_id, masked
from tests.realtime.test_signaling import SDP, _in_call, _ongoing_call

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("served")]


@pytest.fixture
def call(doctor, patient):
    return _ongoing_call(doctor, patient)


def record_asgi_path(monkeypatch) -> list[str]:
    """The types of the messages that take the ordinary (ASGI) path from here on, in order."""
    seen: list[str] = []
    original = RealtimeConsumer._receive

    async def recording(self, text_data, bytes_data):
        seen.append(json.loads(text_data)["type"])
        await original(self, text_data, bytes_data)

    monkeypatch.setattr(RealtimeConsumer, "_receive", recording)
    return seen


@pytest.fixture
def through_asgi(monkeypatch):
    return record_asgi_path(monkeypatch)


@pytest.fixture
def held_heartbeat(monkeypatch):
    """``presence.heartbeat`` (database work, on the ordinary path) held once it has started,
    until the test lets it go: a slow message the client sent first."""
    started, release = asyncio.Event(), asyncio.Event()
    ordinary = HANDLERS["presence.heartbeat"]

    async def held(connection, data):
        started.set()
        await release.wait()
        return await ordinary.func(connection, data)

    monkeypatch.setitem(HANDLERS, "presence.heartbeat", dataclasses.replace(ordinary, func=held))
    yield started, release
    release.set()


def _offer(call, to, number: int, **extra) -> dict:
    return {
        "type": "signal.offer",
        "data": {"call_id": str(call.pk), "to": str(to.pk), "sdp": f"{SDP}{number}"},
        **extra,
    }


def _frame(message: dict) -> bytes:
    return masked(Opcode.TEXT, json.dumps(message).encode())


async def _events_within(socket, seconds: float) -> list[dict]:
    """What reaches ``socket`` (presence updates aside) in the next ``seconds``."""
    events = []
    try:
        while True:
            events.append(await next_event(socket, timeout=seconds))
    except TimeoutError:
        return events


async def _raw_in_call(user, call) -> RawClient:
    client = await RawClient.open(user)
    await client.write(_frame({"type": "call.join", "id": "join", "data": {"call_id": str(call.pk)}}))
    assert ack_id(await client.next_text()) == "join"
    return client


def _server_protocol_of(user):
    """The server's protocol instance serving ``user``'s connection."""
    (connection,) = [consumer for consumer in LOCAL_CONNECTIONS.values() if consumer.user_id == str(user.pk)]
    return connection.direct._protocol


async def _both_in_call(call, doctor, patient):
    """Doctor and patient joined over sockets, with one offer relayed: the routes are cached."""
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await doctor_socket.send_json_to(_offer(call, patient, 0))
    assert (await next_event(patient_socket))["type"] == "signal.offer"
    return doctor_socket, patient_socket


async def test_signals_between_connected_participants_skip_the_asgi_queue(call, doctor, patient, through_asgi):
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    through_asgi.clear()

    for number in range(1, 21):
        await doctor_socket.send_json_to(_offer(call, patient, number))
    received = [await next_event(patient_socket) for _ in range(20)]

    assert [message["data"]["sdp"] for message in received] == [f"{SDP}{number}" for number in range(1, 21)]
    assert through_asgi == []
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_signal_sent_right_behind_a_join_waits_for_the_join(call, doctor, patient, through_asgi):
    """The join is database work on the ordinary path; the offer behind it must not overtake
    it (it would be refused: the sender would not be in the call yet)."""
    patient_socket, _ = await _in_call(patient, call)
    doctor_socket = await open_socket(doctor)

    await doctor_socket.send_json_to({"type": "call.join", "id": "join", "data": {"call_id": str(call.pk)}})
    await doctor_socket.send_json_to(_offer(call, patient, 1, id="offer"))
    replies = [await next_event(doctor_socket) for _ in range(2)]
    offer = await next_event(patient_socket)

    assert [(reply["type"], reply["id"]) for reply in replies] == [("ack", "join"), ("ack", "offer")]
    assert offer["type"] == "signal.offer"
    assert offer["data"]["from"] == str(doctor.pk)
    assert through_asgi[:1] == ["call.join"]
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_request_id_is_acknowledged_after_the_relay(call, doctor, patient, through_asgi):
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    through_asgi.clear()

    ack = await request(doctor_socket, _offer(call, patient, 1, id="o-1"))

    assert ack == {"type": "ack", "id": "o-1", "data": {"type": "signal.offer"}}
    assert (await next_event(patient_socket))["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == []
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_refusals_on_the_direct_path_carry_the_request_id(call, doctor, patient, outsider, through_asgi):
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    through_asgi.clear()

    to_outsider = await request(doctor_socket, _offer(call, outsider, 1, id="x"))
    no_sdp = await request(
        doctor_socket, {"type": "signal.offer", "id": "y", "data": {"call_id": str(call.pk), "to": str(patient.pk)}}
    )

    assert (to_outsider["type"], to_outsider["id"], to_outsider["data"]["code"]) == ("error", "x", "PERMISSION_DENIED")
    assert (no_sdp["id"], no_sdp["data"]["code"]) == ("y", "VALIDATION_ERROR")
    assert no_sdp["data"]["details"]["sdp"][0]["code"] == "required"
    # Someone the cached routes do not know may have just joined elsewhere: that one is looked up.
    assert through_asgi == ["signal.offer"]
    assert await patient_socket.receive_nothing(timeout=0.2)
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_the_rate_limit_holds_on_the_direct_path(call, doctor, patient, settings):
    settings.REALTIME_RATE_BURST = 4  # the join and the first offer take two
    settings.REALTIME_RATE_PER_SECOND = 0.001
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)

    replies = [await request(doctor_socket, _offer(call, patient, number, id=str(number))) for number in (1, 2, 3)]

    assert [reply["type"] for reply in replies] == ["ack", "ack", "error"]
    assert replies[2]["data"]["code"] == "RATE_LIMITED"
    assert [(await next_event(patient_socket))["data"]["sdp"] for _ in range(2)] == [f"{SDP}1", f"{SDP}2"]
    assert await patient_socket.receive_nothing(timeout=0.2)
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_routes_past_their_lifetime_still_relay_while_they_are_read_again(call, doctor, patient, through_asgi):
    from video_calls import consumers as call_consumers

    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    _, routes = call_consumers._ROUTES[str(call.pk)]
    call_consumers._ROUTES[str(call.pk)] = (0.0, routes)  # expired long ago
    through_asgi.clear()

    await doctor_socket.send_json_to(_offer(call, patient, 1))
    relayed = await next_event(patient_socket)
    for _ in range(100):  # the background read replaces the entry
        if call_consumers._ROUTES[str(call.pk)][0] > 0:
            break
        await asyncio.sleep(0.02)

    assert relayed["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == []
    assert call_consumers._ROUTES[str(call.pk)][0] > 0
    assert str(call.pk) not in call_consumers._REFRESHING
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_signal_sent_while_an_earlier_message_is_being_handled_waits_for_it(
    call, doctor, patient, through_asgi, held_heartbeat
):
    """The heartbeat has left the ASGI queue and is doing its database work when the offer
    arrives: the queue is empty, and still the offer must not overtake it."""
    started, release = held_heartbeat
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    through_asgi.clear()

    await doctor_socket.send_json_to({"type": "presence.heartbeat", "id": "beat", "data": {}})
    await asyncio.wait_for(started.wait(), 5)
    await doctor_socket.send_json_to(_offer(call, patient, 1, id="offer"))
    assert await _events_within(patient_socket, 0.2) == [], "the offer overtook the heartbeat"
    release.set()
    replies = [await next_event(doctor_socket) for _ in range(2)]
    relayed = await next_event(patient_socket)

    assert [(reply["type"], reply["id"]) for reply in replies] == [("ack", "beat"), ("ack", "offer")]
    assert relayed["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == ["presence.heartbeat", "signal.offer"]
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


async def test_a_signal_read_together_with_an_earlier_message_waits_for_it(
    call, doctor, patient, through_asgi, held_heartbeat
):
    """Both frames arrive in one read: the heartbeat is queued for ASGI, not yet handled, when
    the offer is read."""
    started, release = held_heartbeat
    doctor_client = await _raw_in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    await doctor_client.write(_frame(_offer(call, patient, 0)))
    assert (await next_event(patient_socket))["data"]["sdp"] == f"{SDP}0"  # the routes are cached
    through_asgi.clear()

    await doctor_client.write(
        _frame({"type": "presence.heartbeat", "id": "beat", "data": {}}) + _frame(_offer(call, patient, 1, id="offer"))
    )
    await asyncio.wait_for(started.wait(), 5)
    assert await _events_within(patient_socket, 0.2) == [], "the offer overtook the heartbeat"
    release.set()
    acks = [ack_id(await doctor_client.next_text()) for _ in range(2)]
    relayed = await next_event(patient_socket)

    assert acks == ["beat", "offer"]
    assert relayed["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == ["presence.heartbeat", "signal.offer"]
    doctor_client.close()
    await patient_socket.disconnect()


# About 50 KB: a few dozen fill a peer's socket buffers.
LARGE_SDP = "v=0\r\n" + "a=x-filler:" + "x" * 50_000 + "\r\n"


def _large_offer(call, to, label: str) -> dict:
    return {
        "type": "signal.offer",
        "id": label,
        "data": {"call_id": str(call.pk), "to": str(to.pk), "sdp": f"{LARGE_SDP}{label}"},
    }


async def test_a_signal_to_a_peer_that_stopped_reading_waits_on_the_ordinary_path_and_is_not_lost(
    call, doctor, patient, through_asgi, settings
):
    settings.REALTIME_MAX_FRAME_BYTES = 1 << 20  # large offers, still on the direct path
    settings.REALTIME_RATE_BURST = 100_000
    patient_client = await _raw_in_call(patient, call)  # reads only when the test asks it to
    doctor_socket, _ = await _in_call(doctor, call)
    patient_protocol = _server_protocol_of(patient)
    through_asgi.clear()
    # Relayed directly while the patient does not read, until the server's buffer for the
    # patient is over its high-water mark.
    sent = 0
    while patient_protocol.writable.is_set() and sent < 2_000:
        sent += 1
        await request(doctor_socket, _large_offer(call, patient, str(sent)))
    assert not patient_protocol.writable.is_set(), "the patient's socket never filled"
    assert through_asgi == []

    await doctor_socket.send_json_to(_large_offer(call, patient, "last"))
    assert await _events_within(doctor_socket, 0.3) == [], "relayed without waiting for the patient to read"
    relayed = [json.loads(await patient_client.next_text()) for _ in range(sent + 1)]
    ack = await next_event(doctor_socket)

    assert through_asgi == ["signal.offer"]
    assert [message["data"]["sdp"].removeprefix(LARGE_SDP) for message in relayed] == [
        *[str(number) for number in range(1, sent + 1)],
        "last",
    ]
    assert ack == {"type": "ack", "id": "last", "data": {"type": "signal.offer"}}
    patient_client.close()
    await doctor_socket.disconnect()

"""End to end: two real WebRTC peers (aiortc) set a call up the way our clients do.

The doctor rings the patient and the patient answers over REST, each getting the call's ICE
servers from the API; each opens the realtime socket with a ticket from the REST API and joins
the call on it; offer, answer and ICE candidates then travel only through the server's relay
(the candidates are taken out of the SDP and trickled as ``signal.ice`` batches). The test
passes when both peer connections are ``connected`` and each side decodes video frames the
other sent.

The machine has no internet: the STUN/TURN settings are emptied, so the API hands out no ICE
servers, and aioice gathers its host candidates on 127.0.0.1 only (it skips loopback by
default), so the media path is loopback and does not depend on the machine's interfaces.
"""

import asyncio
import contextlib
from urllib.parse import urlsplit

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.conftest import client_for
from tests.realtime.conftest import next_event
from tests.sessions.factories import SessionFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30  # seconds, around every await that depends on the network or the server
ORIGIN = (b"origin", b"http://localhost:8000")
FRAMES = 5
# What aiortc's VideoStreamTrack sends.
FRAME_SIZE = (640, 480)


@pytest.fixture
def loopback_media(settings, monkeypatch):
    settings.CALL_STUN_URLS = []
    settings.CALL_TURN_URLS = []
    settings.CALL_TURN_SECRET = ""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def care_relationship(doctor, patient):
    """A doctor may ring a patient they have a session with."""
    return SessionFactory(doctor=doctor, patient=patient)


async def _post(user, path: str, body: dict | None = None) -> tuple[int, dict]:
    def post() -> tuple[int, dict]:
        response = client_for(user).post(path, body or {}, format="json")
        return response.status_code, response.json()

    return await database_sync_to_async(post)()


async def _open_call_socket(user, call_id: str) -> WebsocketCommunicator:
    """A ticket from the REST API, the socket at the URL it names, and ``call.join`` on it."""
    status, ticket = await _post(user, "/api/v1/realtime/tickets/")
    assert status == 201, ticket
    url = urlsplit(ticket["url"])
    socket = WebsocketCommunicator(application, f"{url.path}?{url.query}", headers=[ORIGIN])
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    ready = await next_event(socket, TIMEOUT)
    assert ready["type"] == "connection.ready", ready
    await socket.send_json_to({"type": "call.join", "id": "join", "data": {"call_id": call_id}})
    joined = await next_event(socket, TIMEOUT)
    assert (joined["type"], joined["id"], joined["data"]["call"]["status"]) == ("ack", "join", "ongoing"), joined
    return socket


def _split_candidates(sdp: str) -> tuple[str, list[dict | None]]:
    """The SDP without its candidate lines, and those candidates as RTCIceCandidateInit objects
    (ending with null, end of candidates), as a browser would trickle them."""
    lines, candidates = [], []
    mline_index, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline_index, mid = mline_index + 1, None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:")
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line.removeprefix("a="), "sdpMid": mid, "sdpMLineIndex": mline_index})
        elif line != "a=end-of-candidates":
            lines.append(line)
    return "\r\n".join(lines) + "\r\n", [*candidates, None]


async def _add_remote_candidates(peer: RTCPeerConnection, candidates: list[dict | None]) -> None:
    for init in candidates:
        if init is None:
            await peer.addIceCandidate(None)
            continue
        candidate = candidate_from_sdp(init["candidate"].removeprefix("candidate:"))
        candidate.sdpMid = init["sdpMid"]
        candidate.sdpMLineIndex = init["sdpMLineIndex"]
        await peer.addIceCandidate(candidate)


async def _describe(peer: RTCPeerConnection, description: RTCSessionDescription) -> tuple[str, list[dict | None]]:
    await asyncio.wait_for(peer.setLocalDescription(description), TIMEOUT)  # gathers the candidates
    return _split_candidates(peer.localDescription.sdp)


async def _send_signals(socket, *, kind: str, call_id: str, to, sdp: str, candidates: list) -> None:
    await socket.send_json_to({"type": kind, "data": {"call_id": call_id, "to": str(to), "sdp": sdp}})
    await socket.send_json_to(
        {"type": "signal.ice", "data": {"call_id": call_id, "to": str(to), "candidates": candidates}}
    )


async def _connected(peer: RTCPeerConnection) -> str:
    while peer.connectionState not in ("connected", "failed", "closed"):
        await asyncio.sleep(0.05)
    return peer.connectionState


def _peer(ice_servers: list[dict]) -> tuple[RTCPeerConnection, asyncio.Future]:
    """A peer sending a test video track; the future resolves to the track it receives."""
    peer = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**server) for server in ice_servers]))
    peer.addTrack(VideoStreamTrack())
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @peer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not received.done():
            received.set_result(track)

    return peer, received


async def _frame_sizes(received: asyncio.Future) -> list[tuple[int, int]]:
    track = await asyncio.wait_for(received, TIMEOUT)
    frames = [await asyncio.wait_for(track.recv(), TIMEOUT) for _ in range(FRAMES)]
    return [(frame.width, frame.height) for frame in frames]


async def test_two_webrtc_peers_connect_and_exchange_video_through_our_signaling(
    loopback_media, care_relationship, doctor, patient
):
    # Given an ad-hoc video call the doctor placed and the patient answered over REST
    status, ringing = await _post(doctor, "/api/v1/calls/initiate/", {"callee_id": str(patient.pk)})
    assert status == 201, ringing
    call_id = ringing["id"]
    status, accepted = await _post(patient, f"/api/v1/calls/{call_id}/accept/")
    assert status == 200, accepted
    status, rejoined = await _post(doctor, f"/api/v1/calls/{call_id}/join/")
    assert status == 200, rejoined
    assert accepted["ice_servers"] == rejoined["ice_servers"] == []  # loopback: nothing to reach

    doctor_peer, doctor_received = _peer(rejoined["ice_servers"])
    patient_peer, patient_received = _peer(accepted["ice_servers"])
    sockets: list[WebsocketCommunicator] = []
    try:
        doctor_socket = await _open_call_socket(doctor, call_id)
        sockets.append(doctor_socket)
        patient_socket = await _open_call_socket(patient, call_id)
        sockets.append(patient_socket)

        # When the doctor offers, the patient answers, and both trickle candidates through the socket
        offer_sdp, doctor_candidates = await _describe(doctor_peer, await doctor_peer.createOffer())
        await _send_signals(
            doctor_socket,
            kind="signal.offer",
            call_id=call_id,
            to=patient.pk,
            sdp=offer_sdp,
            candidates=doctor_candidates,
        )
        offer = await next_event(patient_socket, TIMEOUT)
        offered_candidates = await next_event(patient_socket, TIMEOUT)
        await asyncio.wait_for(
            patient_peer.setRemoteDescription(RTCSessionDescription(offer["data"]["sdp"], "offer")), TIMEOUT
        )
        await asyncio.wait_for(_add_remote_candidates(patient_peer, offered_candidates["data"]["candidates"]), TIMEOUT)

        answer_sdp, patient_candidates = await _describe(patient_peer, await patient_peer.createAnswer())
        await _send_signals(
            patient_socket,
            kind="signal.answer",
            call_id=call_id,
            to=doctor.pk,
            sdp=answer_sdp,
            candidates=patient_candidates,
        )
        answer = await next_event(doctor_socket, TIMEOUT)
        answered_candidates = await next_event(doctor_socket, TIMEOUT)
        await asyncio.wait_for(
            doctor_peer.setRemoteDescription(RTCSessionDescription(answer["data"]["sdp"], "answer")), TIMEOUT
        )
        await asyncio.wait_for(_add_remote_candidates(doctor_peer, answered_candidates["data"]["candidates"]), TIMEOUT)

        doctor_state = await asyncio.wait_for(_connected(doctor_peer), TIMEOUT)
        patient_state = await asyncio.wait_for(_connected(patient_peer), TIMEOUT)
        seen_by_patient = await _frame_sizes(patient_received)
        seen_by_doctor = await _frame_sizes(doctor_received)

        # Then every signal came through the relay from the right peer, and media flows both ways
        assert (offer["type"], offer["data"]["from"], offer["data"]["call_id"]) == (
            "signal.offer",
            str(doctor.pk),
            call_id,
        )
        assert (answer["type"], answer["data"]["from"]) == ("signal.answer", str(patient.pk))
        assert (offered_candidates["type"], offered_candidates["data"]["from"]) == ("signal.ice", str(doctor.pk))
        assert (answered_candidates["type"], answered_candidates["data"]["from"]) == ("signal.ice", str(patient.pk))
        assert "a=candidate:" not in offer["data"]["sdp"] + answer["data"]["sdp"]  # ICE went only as signal.ice
        assert offered_candidates["data"]["candidates"] == doctor_candidates
        assert answered_candidates["data"]["candidates"] == patient_candidates
        assert len(doctor_candidates) > 1 and len(patient_candidates) > 1
        assert (doctor_state, patient_state) == ("connected", "connected")
        assert seen_by_patient == [FRAME_SIZE] * FRAMES
        assert seen_by_doctor == [FRAME_SIZE] * FRAMES
    finally:
        for peer in (doctor_peer, patient_peer):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.close(), TIMEOUT)
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.disconnect(timeout=TIMEOUT)

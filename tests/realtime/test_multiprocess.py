"""Scale-out: two real server processes sharing PostgreSQL and Redis serve one call.

Each test runs twice, on daphne (the ordinary ASGI path) and on the production server
(``config.serve``: uvicorn with the direct path). It starts two processes on free loopback ports with the test settings, pointed at
the test run's own database and Redis, so the rows a test commits (``transaction=True``) are what
the servers see and the tickets and tokens they issue check out. Clients are real WebSocket and
HTTP clients over 127.0.0.1. The two participants of a call sit on different processes, so every
relayed signal crosses the Redis channel layer; a user connected to both processes stays online
until both connections are closed, because connections are counted in the database, not in one
process's memory.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from websockets.sync.client import ClientConnection, connect

from accounts.tokens import token_pair_for
from presence.models import PresenceConnection, PresenceStatus, UserPresence
from tests.drills.processes import free_port, run_database_url
from tests.realtime.conftest import kill_redis_clients
from tests.sessions.factories import SessionFactory
from video_calls.services.adhoc import call_accept, call_initiate

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TIMEOUT = 10  # seconds for any one network step
STARTUP_TIMEOUT = 30
STOP_TIMEOUT = 5  # after SIGTERM, before SIGKILL
ORIGIN = "http://localhost:8000"
# Direct loopback connections only: no proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _http(method: str, url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# How a test starts a server: daphne (the ordinary ASGI path) or the production server,
# ``config.serve`` (uvicorn with the direct path, realtime/direct.py).
DAPHNE = ("daphne", "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application")
PRODUCTION = ("config.serve", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning")


def _start(log: Path, command: tuple[str, ...] = DAPHNE) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",  # same SECRET_KEY as this process
        "DATABASE_URL": run_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
        "WEBSOCKET_ALLOWED_ORIGINS": ORIGIN,  # config.serve would allow only its own address
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *(part.format(port=port) for part in command)],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Server(process=process, port=port, log=log)


def _wait_until_live(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"server on {server.port} exited:\n{server.output()}"
        try:
            if _http("GET", f"{server.http}/api/health/live")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server on {server.port} not live after {STARTUP_TIMEOUT}s:\n{server.output()}")


def _stop(server: Server) -> bool:
    """SIGTERM, then SIGKILL if the server has not exited in time. True if it exited by itself:
    a restart during live calls must not hang (events from disconnects are sent from the event
    loop, not from a worker thread waiting on a loop that has stopped)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=STOP_TIMEOUT)
        return True
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=TIMEOUT)
        return False


@pytest.fixture(params=[DAPHNE, PRODUCTION], ids=["daphne", "production"])
def servers(request, transactional_db, tmp_path):
    """Two server processes, stopped before the test's data is flushed."""
    started = [_start(tmp_path / "server-a.log", request.param), _start(tmp_path / "server-b.log", request.param)]
    try:
        for server in started:
            _wait_until_live(server)
        yield started
    finally:
        hung = [server.port for server in started if not _stop(server)]
    assert not hung, f"servers on {hung} did not exit on SIGTERM:\n" + "\n".join(s.output() for s in started)


@pytest.fixture
def care_relationship(doctor, patient):
    return SessionFactory(doctor=doctor, patient=patient)


@pytest.fixture
def call(care_relationship, doctor, patient):
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call


def _open(sockets: contextlib.ExitStack, server: Server, user) -> ClientConnection:
    """A socket to ``server`` with a ticket that server issued over REST, closed when ``sockets``
    exits; ``connection.ready`` is read."""
    status, ticket = _http("POST", f"{server.http}/api/v1/realtime/tickets/", token_pair_for(user)["access"])
    assert status == 201, ticket
    socket = sockets.enter_context(
        connect(
            f"ws://127.0.0.1:{server.port}/ws/?ticket={ticket['ticket']}",
            origin=ORIGIN,
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
        )
    )
    ready = json.loads(socket.recv(timeout=TIMEOUT))
    assert ready["type"] == "connection.ready", ready
    return socket


def _next(socket: ClientConnection, *, skip_presence: bool = True) -> dict:
    while True:
        message = json.loads(socket.recv(timeout=TIMEOUT))
        if not (skip_presence and message["type"] == "presence.updated"):
            return message


def _request(socket: ClientConnection, message: dict) -> dict:
    socket.send(json.dumps(message))
    return _next(socket)


def _received_within(socket: ClientConnection, seconds: float) -> list[dict]:
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            messages.append(json.loads(socket.recv(timeout=left)))
        except TimeoutError:
            break
    return messages


def _connection_count(user) -> int:
    return PresenceConnection.objects.filter(user=user).count()


def _wait_for_connection_count(user, count: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while _connection_count(user) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return _connection_count(user)


def test_offer_answer_and_ice_cross_between_processes(servers, call, doctor, patient):
    server_a, server_b = servers
    call_id = str(call.pk)
    with contextlib.ExitStack() as sockets:
        # Given the doctor on one process and the patient on the other, both in the call
        doctor_socket = _open(sockets, server_a, doctor)
        patient_socket = _open(sockets, server_b, patient)
        doctor_joined = _request(doctor_socket, {"type": "call.join", "id": "j", "data": {"call_id": call_id}})
        patient_joined = _request(patient_socket, {"type": "call.join", "id": "j", "data": {"call_id": call_id}})

        # When they exchange offer, answer and ICE
        candidates = [{"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"}, None]
        patient_candidates = [
            {"candidate": "candidate:2 1 udp 2122260223 127.0.0.1 50002 typ host", "sdpMLineIndex": 0}
        ]
        doctor_socket.send(
            json.dumps({"type": "signal.offer", "data": {"call_id": call_id, "to": str(patient.pk), "sdp": SDP}})
        )
        offer = _next(patient_socket)
        patient_socket.send(
            json.dumps({"type": "signal.answer", "data": {"call_id": call_id, "to": str(doctor.pk), "sdp": SDP + "a"}})
        )
        answer = _next(doctor_socket)
        doctor_socket.send(
            json.dumps(
                {"type": "signal.ice", "data": {"call_id": call_id, "to": str(patient.pk), "candidates": candidates}}
            )
        )
        ice_to_patient = _next(patient_socket)
        patient_socket.send(
            json.dumps(
                {
                    "type": "signal.ice",
                    "data": {"call_id": call_id, "to": str(doctor.pk), "candidate": patient_candidates[0]},
                }
            )
        )
        ice_to_doctor = _next(doctor_socket)

        # Then each reached the other process's client intact, from the right sender
        assert (doctor_joined["type"], patient_joined["type"]) == ("ack", "ack")
        assert offer == {"type": "signal.offer", "data": {"call_id": call_id, "from": str(doctor.pk), "sdp": SDP}}
        assert answer == {
            "type": "signal.answer",
            "data": {"call_id": call_id, "from": str(patient.pk), "sdp": SDP + "a"},
        }
        assert ice_to_patient == {
            "type": "signal.ice",
            "data": {"call_id": call_id, "from": str(doctor.pk), "candidates": candidates},
        }
        assert ice_to_doctor == {
            "type": "signal.ice",
            "data": {"call_id": call_id, "from": str(patient.pk), "candidates": patient_candidates},
        }


def test_a_user_on_two_processes_goes_offline_only_when_both_connections_close(
    servers, care_relationship, doctor, patient
):
    server_a, server_b = servers
    doctor_token = token_pair_for(doctor)["access"]
    presence_url = f"{server_b.http}/api/v1/presence/{patient.pk}/"
    with contextlib.ExitStack() as sockets:
        # Given the doctor watching, and the patient connected to both processes
        doctor_socket = _open(sockets, server_b, doctor)
        patient_on_a = _open(sockets, server_a, patient)
        came_online = _next(doctor_socket, skip_presence=False)
        patient_on_b = _open(sockets, server_b, patient)
        connections_with_both_open = _connection_count(patient)

        # When the connection on one process closes
        patient_on_a.close()
        connections_after_first_close = _wait_for_connection_count(patient, 1)
        told_after_first_close = _received_within(doctor_socket, 1.0)
        status_after_first_close = UserPresence.objects.get(user=patient).status
        api_after_first_close = _http("GET", presence_url, doctor_token)

        # And then the one on the other process
        patient_on_b.close()
        went_offline = _next(doctor_socket, skip_presence=False)
        connections_after_both_close = _connection_count(patient)
        api_after_both_close = _http("GET", presence_url, doctor_token)

        # Then the patient was online throughout, and offline only after the second close
        assert came_online["type"] == "presence.updated"
        assert (came_online["data"]["user_id"], came_online["data"]["status"]) == (str(patient.pk), "online")
        assert connections_with_both_open == 2
        assert connections_after_first_close == 1
        assert told_after_first_close == []
        assert status_after_first_close == PresenceStatus.ONLINE
        assert (api_after_first_close[0], api_after_first_close[1]["status"]) == (200, "online")
        assert went_offline["type"] == "presence.updated"
        assert (went_offline["data"]["user_id"], went_offline["data"]["status"]) == (str(patient.pk), "offline")
        assert connections_after_both_close == 0
        assert UserPresence.objects.get(user=patient).status == PresenceStatus.OFFLINE
        assert (api_after_both_close[0], api_after_both_close[1]["status"]) == (200, "offline")


def _join(socket: ClientConnection, call_id: str, request_id: str = "j") -> None:
    socket.send(json.dumps({"type": "call.join", "id": request_id, "data": {"call_id": call_id}}))


def _offer(call_id: str, to, sdp: str = SDP) -> str:
    return json.dumps({"type": "signal.offer", "id": "o", "data": {"call_id": call_id, "to": str(to), "sdp": sdp}})


def _until(socket: ClientConnection, wanted: set[str]) -> list[dict]:
    """What ``socket`` receives until one of the ``wanted`` types arrives (presence skipped)."""
    received = []
    while True:
        message = _next(socket)
        received.append(message)
        if message["type"] in wanted:
            return received


@pytest.fixture
def room(doctor, patient):
    """A paid, confirmed session starting in two minutes, and its room with no waiting room: each
    join of the patient is announced to the room, and leaving does not end it."""
    from django.utils import timezone

    from tests.sessions.factories import ConfirmedPaidSessionFactory
    from video_calls.services.rooms import session_room_get_or_create

    session = ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=timezone.now() + timedelta(minutes=2)
    )
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    room.waiting_room_enabled = False
    room.save(update_fields=["waiting_room_enabled"])
    return room


def test_an_offer_never_overtakes_the_join_it_follows_across_processes(servers, room, doctor, patient):
    """The patient joins on one process and sends an offer right behind the join, without
    waiting for its answer; the doctor, on the other process, hears the join first, every time."""
    server_a, server_b = servers
    call_id = str(room.pk)
    seen = []
    with contextlib.ExitStack() as sockets:
        doctor_socket = _open(sockets, server_a, doctor)
        assert _request(doctor_socket, {"type": "call.join", "id": "j", "data": {"call_id": call_id}})["type"] == "ack"
        for attempt in range(5):
            patient_socket = _open(sockets, server_b, patient)
            _join(patient_socket, call_id)
            patient_socket.send(_offer(call_id, doctor.pk, sdp=f"{SDP}a=attempt:{attempt}\r\n"))
            replies = [_until(patient_socket, {"ack", "error"})[-1].get("id") for _ in range(2)]
            heard = _until(doctor_socket, {"signal.offer"})
            seen.append(([message["type"] for message in heard], heard[-1]["data"]["sdp"], replies))
            assert (
                _request(patient_socket, {"type": "call.leave", "id": "l", "data": {"call_id": call_id}})["type"]
                == "ack"
            )
            _until(doctor_socket, {"call.participant_left"})
            patient_socket.close()

    for attempt, (types, sdp, replies) in enumerate(seen):
        assert "call.participant_joined" in types, types
        assert types.index("call.participant_joined") < types.index("signal.offer"), types
        assert sdp.endswith(f"a=attempt:{attempt}\r\n")
        assert replies == ["j", "o"]  # both acknowledged, in order


def _close_code(socket: ClientConnection) -> int | None:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            socket.recv(timeout=TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_when_redis_drops_every_socket_re_syncs_and_signaling_resumes_across_processes(servers, room, doctor, patient):
    server_a, server_b = servers
    call_id = str(room.pk)
    with contextlib.ExitStack() as sockets:
        # Given the doctor on one process and the patient on the other, signaling in a call
        doctor_socket = _open(sockets, server_a, doctor)
        patient_socket = _open(sockets, server_b, patient)
        for socket_ in (doctor_socket, patient_socket):
            socket_.send(json.dumps({"type": "call.join", "id": "j", "data": {"call_id": call_id}}))
            assert _until(socket_, {"ack", "error"})[-1]["type"] == "ack"
        doctor_socket.send(_offer(call_id, patient.pk))
        before = _until(patient_socket, {"signal.offer"})[-1]

        # When Redis drops every connection, the servers' subscriptions among them
        kill_redis_clients()
        codes = [_close_code(doctor_socket), _close_code(patient_socket)]

        # Then both clients are told to re-sync; reconnected and re-joined, they signal again
        doctor_again = _open(sockets, server_a, doctor)
        patient_again = _open(sockets, server_b, patient)
        rejoined = []
        for socket_ in (doctor_again, patient_again):
            socket_.send(json.dumps({"type": "call.join", "id": "j", "data": {"call_id": call_id}}))
            rejoined.append(_until(socket_, {"ack", "error"})[-1])
        patient_again.send(_offer(call_id, doctor.pk, sdp=SDP + "a=after\r\n"))
        after = _until(doctor_again, {"signal.offer"})[-1]

    assert before["data"]["from"] == str(doctor.pk)
    assert codes == [4503, 4503]
    assert [reply["type"] for reply in rejoined] == ["ack", "ack"]
    connected = {p["user"]["id"] for p in rejoined[1]["data"]["call"]["participants"] if p["status"] == "joined"}
    assert connected == {str(doctor.pk), str(patient.pk)}  # the call's state, re-read on re-joining
    assert after["data"] == {"call_id": call_id, "from": str(patient.pk), "sdp": SDP + "a=after\r\n"}

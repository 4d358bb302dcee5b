"""Scale-out: two real daphne processes sharing PostgreSQL and Redis serve one call.

Each test starts two daphne processes on free loopback ports with the test settings, pointed at
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
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from websockets.sync.client import ClientConnection, connect

from accounts.tokens import token_pair_for
from presence.models import PresenceConnection, PresenceStatus, UserPresence
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _test_database_url() -> str:
    """The database this test run uses (pytest-django's ``test_...`` copy), as a URL."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"


def _http(method: str, url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _start(log: Path) -> Server:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",  # same SECRET_KEY as this process
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Server(process=process, port=port, log=log)


def _wait_until_live(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"daphne on {server.port} exited:\n{server.output()}"
        try:
            if _http("GET", f"{server.http}/api/health/live")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"daphne on {server.port} not live after {STARTUP_TIMEOUT}s:\n{server.output()}")


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


@pytest.fixture
def servers(transactional_db, tmp_path):
    """Two daphne processes, stopped before the test's data is flushed."""
    started = [_start(tmp_path / "daphne-a.log"), _start(tmp_path / "daphne-b.log")]
    try:
        for server in started:
            _wait_until_live(server)
        yield started
    finally:
        hung = [server.port for server in started if not _stop(server)]
    assert not hung, f"daphne on {hung} did not exit on SIGTERM:\n" + "\n".join(s.output() for s in started)


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

"""The embedded defaults behave like production: events a Celery worker sends reach the sockets
a separate server process holds.

One stack for the module, started the way ``make run`` starts it (``python -m config.run``): a
SQLite file database in a temporary ``VAR_DIR``, the embedded Redis channel layer
(config/embedded_redis.py), kombu's filesystem broker, and real processes — ``config.serve`` on a
free loopback port, a Celery worker and beat with sweeps every second. Clients are real WebSocket
clients; test data is written by a short-lived process with the stack's settings
(tests/realtime/embedded_stack.py). ``DATABASE_URL`` and ``REDIS_URL`` are removed from the
stack's environment, so this runs the same in both CI runs.
"""

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from config import embedded_redis
from tests.realtime.embedded_stack import (
    STOP_LIMIT,
    embedded_environment,
    free_port,
    kill_session,
    session_members,
    stop_within,
)

TIMEOUT = 10  # seconds for any one network step
EVENT_TIMEOUT = 30  # seconds for a sweep's event: beat every second, a loaded 2-core machine
STARTUP_TIMEOUT = 60
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PAIRS = ("missed", "no_show", "presence")


@dataclass
class Stack:
    process: subprocess.Popen
    port: int
    var_dir: Path
    environment: dict[str, str]
    log: Path
    users: dict

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def helper(self, *arguments: str) -> dict:
        """Run tests/realtime/embedded_stack.py with the stack's settings; its JSON answer."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.realtime.embedded_stack", *arguments],
            cwd=settings.BASE_DIR,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


def _http(method: str, url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("embedded") / "var"
    port = free_port()
    environment = embedded_environment(var_dir, port)
    log = var_dir.parent / "run.log"
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT * 2,
    )
    assert migrate.returncode == 0, migrate.stderr[-4000:]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.run"],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(process=process, port=port, var_dir=var_dir, environment=environment, log=log, users={})
    try:
        stack.users = stack.helper("seed", *PAIRS)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"config.run exited:\n{stack.output()}"
            with contextlib.suppress(OSError):
                if _http("GET", f"{stack.origin}/api/health/live")[0] == 200:
                    break
            assert time.monotonic() < deadline, f"not live after {STARTUP_TIMEOUT}s:\n{stack.output()}"
            time.sleep(0.2)
        yield stack
    finally:
        stopped_after = stop_within(process, STOP_LIMIT)
        left = session_members(process.pid)
        kill_session(process.pid)
        redis_left = embedded_redis.is_serving(embedded_redis.socket_path(var_dir))
        if redis_left:
            embedded_redis.stop(var_dir)
    assert stopped_after is not None, f"config.run still running {STOP_LIMIT}s after SIGINT:\n{stack.output()}"
    assert left == [], left
    assert not redis_left, "the embedded Redis outlived config.run"


def _open(sockets: contextlib.ExitStack, stack: Stack, user: dict) -> ClientConnection:
    status, ticket = _http("POST", f"{stack.origin}/api/v1/realtime/tickets/", user["access"])
    assert status == 201, ticket
    client = sockets.enter_context(
        connect(
            f"ws://127.0.0.1:{stack.port}/ws/?ticket={ticket['ticket']}",
            origin=stack.origin,  # the server's own origin, at the port it serves
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
        )
    )
    ready = json.loads(client.recv(timeout=TIMEOUT))
    assert ready["type"] == "connection.ready", ready
    return client


def _wait_for(client: ClientConnection, matches, stack: Stack) -> tuple[dict, list[str]]:
    """The first event ``matches`` accepts, and the types of those before it, polling with a
    deadline."""
    seen = []
    deadline = time.monotonic() + EVENT_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(client.recv(timeout=left))
        except TimeoutError:
            break
        if matches(message):
            return message, seen
        seen.append(message["type"])
    pytest.fail(f"no matching event in {EVENT_TIMEOUT}s (saw {seen}):\n{stack.output()}")


def test_the_socket_accepts_the_origin_at_the_port_served_and_not_another(stack):
    user = stack.users["missed"]["patient"]
    assert stack.port != 8000
    with contextlib.ExitStack() as sockets:
        # The server's own origin, under both loopback names, at the port it serves
        for origin in (f"http://localhost:{stack.port}", f"http://127.0.0.1:{stack.port}"):
            _, ticket = _http("POST", f"{stack.origin}/api/v1/realtime/tickets/", user["access"])
            # The ticket's URL is the socket at the port served too (WEBSOCKET_PUBLIC_URL from make run)
            assert ticket["url"].startswith(f"ws://127.0.0.1:{stack.port}/ws/?ticket=")
            client = sockets.enter_context(connect(ticket["url"], origin=origin, proxy=None, open_timeout=TIMEOUT))
            assert json.loads(client.recv(timeout=TIMEOUT))["type"] == "connection.ready"
        # The old fixed default, at a port this server does not serve
        _, ticket = _http("POST", f"{stack.origin}/api/v1/realtime/tickets/", user["access"])
        with pytest.raises(InvalidStatus) as refused:
            connect(ticket["url"], origin="http://127.0.0.1:8000", proxy=None, open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 403


def test_a_missed_call_swept_by_the_worker_reaches_both_sockets(stack):
    doctor, patient = stack.users["missed"]["doctor"], stack.users["missed"]["patient"]
    with contextlib.ExitStack() as sockets:
        # Given the doctor and the patient connected to the server process
        doctor_socket = _open(sockets, stack, doctor)
        patient_socket = _open(sockets, stack, patient)

        # When the doctor rings (from another process) and nobody answers within the ring timeout
        call_id = stack.helper("call", doctor["id"], patient["id"])["call_id"]

        # Then the worker's ring sweep tells both sockets the call was missed
        to_patient, _ = _wait_for(patient_socket, lambda m: m["type"] == "call.missed", stack)
        to_doctor, _ = _wait_for(doctor_socket, lambda m: m["type"] == "call.missed", stack)
    assert to_patient["data"]["call_id"] == call_id
    assert to_patient["data"]["reason"] == "ring_timeout"
    assert to_doctor["data"]["call_id"] == call_id


def test_a_no_show_swept_by_the_worker_reaches_both_sockets(stack):
    doctor, patient = stack.users["no_show"]["doctor"], stack.users["no_show"]["patient"]
    with contextlib.ExitStack() as sockets:
        doctor_socket = _open(sockets, stack, doctor)
        patient_socket = _open(sockets, stack, patient)

        # When a confirmed session's join window closes with nobody having joined
        session_id = stack.helper("no-show", doctor["id"], patient["id"])["session_id"]

        # Then the worker's no-show sweep tells both participants
        to_patient, _ = _wait_for(patient_socket, lambda m: m["type"] == "session.no_show", stack)
        to_doctor, _ = _wait_for(doctor_socket, lambda m: m["type"] == "session.no_show", stack)
    assert json.dumps(to_patient["data"]).count(session_id) >= 1
    assert json.dumps(to_doctor["data"]).count(session_id) >= 1


def test_going_offline_in_the_worker_presence_sweep_reaches_a_watching_socket(stack):
    doctor, patient = stack.users["presence"]["doctor"], stack.users["presence"]["patient"]

    def about_patient(status):
        return lambda m: (
            m["type"] == "presence.updated" and (m["data"]["user_id"], m["data"]["status"]) == (patient["id"], status)
        )

    with contextlib.ExitStack() as sockets:
        # Given the doctor watching, and the patient connected but sending no heartbeat
        doctor_socket = _open(sockets, stack, doctor)
        _open(sockets, stack, patient)
        _wait_for(doctor_socket, about_patient("online"), stack)

        # When the patient's connection outlives PRESENCE_TIMEOUT_SECONDS without a heartbeat,
        # the worker's presence sweep drops it (the socket itself stays open: the server has
        # not seen it close)
        went_offline, _ = _wait_for(doctor_socket, about_patient("offline"), stack)

    # Then the doctor heard it
    assert went_offline["data"]["status"] == "offline"

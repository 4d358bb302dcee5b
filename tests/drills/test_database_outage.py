"""Fault drill: PostgreSQL stops for a few seconds under a running server.

The server process runs against a PostgreSQL cluster of the drill's own (never the machine's),
migrated and seeded before it starts. The cluster is stopped (fast shutdown: sessions are cut),
then started again. What must hold (docs/realtime.md, "Overload and retrying"; core/outages.py):
while it is down, REST answers 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` within about the
pool timeout, a message on an open socket gets an ``error`` event and the socket stays open, a
handshake gets the error and close 1013; nothing a refused request began is in the database
afterwards; and once the database is back the same process serves again, with no restart: the
refused writes, sent again with their ``client_message_id``, are stored once each.
"""

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.drills.clients import DrillSocket, backoff, http
from tests.drills.processes import PostgresCluster, postgres_bin, process_environment, require_tool, server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

POOL_TIMEOUT_SECONDS = 1
CONNECT_TIMEOUT_SECONDS = 1
# A refusal comes within the pool's wait plus one connection attempt; one more second of slack.
REFUSED_WITHIN = POOL_TIMEOUT_SECONDS + CONNECT_TIMEOUT_SECONDS + 1
TRY_AGAIN_LATER = 1013


@pytest.fixture
def cluster():
    """A cluster in a directory of its own under the system's temporary directory: pytest's
    ``tmp_path`` sits below a directory only root may enter, and the cluster's owner must."""
    bindir = require_tool(postgres_bin(), "PostgreSQL's server binaries (initdb, pg_ctl)")
    directory = Path(tempfile.mkdtemp(prefix="telehealth-drill-postgres-"))
    cluster = PostgresCluster(bindir=bindir, directory=directory)
    try:
        cluster.init()
        cluster.start()
        cluster.create_database("drill")
        yield cluster
    finally:
        if cluster.running():
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _run(module_or_command: list[str], environment: dict) -> str:
    result = subprocess.run(
        [sys.executable, *module_or_command],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _stored(database_url: str) -> dict:
    """What the drill database holds of the messages: each message's key and receipt count, and
    each conversation's message counter against its messages."""
    with psycopg.connect(database_url, connect_timeout=5) as db:
        messages = db.execute(
            "SELECT m.client_message_id, count(r.id) FROM messaging_message m "
            "LEFT JOIN messaging_messagereceipt r ON r.message_id = m.id GROUP BY m.id ORDER BY m.seq"
        ).fetchall()
        counters = db.execute(
            "SELECT c.last_seq, (SELECT coalesce(max(seq), 0) FROM messaging_message WHERE conversation_id = c.id) "
            "FROM messaging_conversation c"
        ).fetchall()
    return {"messages": messages, "counters": counters}


def _send(server_http: str, token: str, doctor_id: str, key: str):
    return http(
        "POST",
        f"{server_http}/api/v1/messages/",
        token,
        {"user_id": doctor_id, "body": f"body of {key}", "client_message_id": key},
    )


def test_a_database_outage_answers_503_fast_writes_nothing_half_and_recovers_without_a_restart(
    cluster, redis_instance, processes, tmp_path
):
    database_url = cluster.url("drill")
    environment = process_environment(
        database_url=database_url,
        redis_url=redis_instance.url,
        var_dir=tmp_path,
        DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT_SECONDS),
        DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_SECONDS),
        SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS="1",
    )
    _run(["manage.py", "migrate", "--verbosity", "0"], environment)
    people = json.loads(_run(["-m", "tests.drills.seed_outage_database"], environment))
    token, doctor_id = people["patient_token"], people["doctor_id"]
    app_server = server("server", environment, tmp_path)
    processes.start(app_server)
    app_server.wait_until_live()
    pid = app_server.process.pid

    # Given a patient who has written to their doctor, with a socket open and a spare ticket
    first = _send(app_server.http, token, doctor_id, "m1")
    socket = DrillSocket(app_server, token)
    spare_ticket = http("POST", f"{app_server.http}/api/v1/realtime/tickets/", token)

    # When PostgreSQL stops
    cluster.stop()
    started = time.monotonic()
    listed = http("GET", f"{app_server.http}/api/v1/sessions/", token)
    listed_after = time.monotonic() - started
    started = time.monotonic()
    written = _send(app_server.http, token, doctor_id, "m2")
    written_after = time.monotonic() - started
    on_socket = socket.request(
        {
            "type": "chat.send",
            "id": "m3",
            "data": {"user_id": doctor_id, "body": "body of m3", "client_message_id": "m3"},
        }
    )
    handshake_reply, handshake_close = _handshake(app_server, spare_ticket.body["ticket"])
    ready = http("GET", f"{app_server.http}/api/health/ready")

    # And starts again
    cluster.start()
    stored_while_down = _stored(database_url)
    recovered = _until_served(app_server.http, token)
    resent = _send(app_server.http, token, doctor_id, "m2")
    resent_on_socket = socket.request(
        {
            "type": "chat.send",
            "id": "m3b",
            "data": {"user_id": doctor_id, "body": "body of m3", "client_message_id": "m3"},
        }
    )
    resent_again = _send(app_server.http, token, doctor_id, "m2")
    stored = _stored(database_url)

    # Then before the outage all was well
    assert (first.status, spare_ticket.status) == (201, 201), (first.body, spare_ticket.body)
    # And during it every answer was a fast 503 with Retry-After, on REST and on the socket
    for response, took in ((listed, listed_after), (written, written_after)):
        assert response.status == 503, response.body
        assert response.body["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers.get("Retry-After") == "1"
        assert took <= REFUSED_WITHIN, f"refused after {took:.2f}s"
    assert on_socket["type"] == "error"
    assert (on_socket["data"]["code"], on_socket["data"]["details"]["retry_after"]) == ("SERVICE_UNAVAILABLE", 1)
    assert handshake_reply["type"] == "error" and handshake_reply["data"]["code"] == "SERVICE_UNAVAILABLE"
    assert handshake_close == TRY_AGAIN_LATER
    assert ready.status == 503
    # And nothing the refused requests began was stored
    assert stored_while_down == {"messages": [("m1", 1)], "counters": [(1, 1)]}
    # And afterwards the same process served again, the open socket included
    assert recovered.status == 200, recovered.body
    assert (app_server.running(), app_server.process.pid) == (True, pid)
    assert socket.close_code is None
    assert (resent.status, resent_on_socket["type"], resent_again.status) == (201, "ack", 200)
    assert resent_on_socket["data"]["created"] is True
    # And each message is stored once, whole: its receipt, and the conversation's counter
    assert stored == {"messages": [("m1", 1), ("m2", 1), ("m3", 1)], "counters": [(3, 3)]}
    socket.close()


def _handshake(app_server, ticket: str) -> tuple[dict, int]:
    """Open a socket with ``ticket``; the first message and the close code."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from tests.drills.clients import ORIGIN, TIMEOUT

    with connect(f"{app_server.ws}/ws/?ticket={ticket}", origin=ORIGIN, proxy=None, open_timeout=TIMEOUT) as raw:
        first = json.loads(raw.recv(timeout=TIMEOUT))
        with contextlib.suppress(ConnectionClosed):
            raw.recv(timeout=TIMEOUT)
        return first, raw.close_code


def _until_served(server_http: str, token: str):
    """Retry as a client does until the server answers something other than 503."""
    deadline = time.monotonic() + 20
    for attempt in range(100):
        response = http("GET", f"{server_http}/api/v1/sessions/", token)
        if response.status != 503 or time.monotonic() > deadline:
            return response
        time.sleep(backoff(attempt))
    return response

"""The embedded SQLite database under concurrent requests, on a real database file with real
threads: writers queue for the lock (WAL, IMMEDIATE transactions, a busy timeout) instead of
answering 500 "database is locked"; the loser of a race gets its documented 4xx; and a lock
held past the busy timeout is 503 SERVICE_UNAVAILABLE with Retry-After.

Each case runs in a subprocess on its own copy of a migrated database file: the suite's own
database is in memory, which has neither a journal nor file locks.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

# The clock of make test-clock-ahead moves the subprocesses too (tests/clock_ahead).
_CLOCK = {name: os.environ[name] for name in ("CLOCK_AHEAD_DAYS",) if name in os.environ}
_PYTHONPATH = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]))

BASE_ENVIRONMENT = {
    **_CLOCK,
    "PYTHONPATH": _PYTHONPATH,
    "PATH": "/usr/bin:/bin",
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "ALLOWED_HOSTS": "testserver",
    "LOG_LEVEL": "CRITICAL",
    "AUTH_THROTTLE_RATE_IP": "10000/min",
    "AUTH_THROTTLE_RATE_ACCOUNT": "10000/min",
}

_PROBE = """
import json, sqlite3, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import django
django.setup()
from django.db import connections
from django.test import Client
from accounts.tokens import token_pair_for
from tests.factories import PatientFactory

THREADS = 30
case = sys.argv[1]
everyone = threading.Barrier(THREADS)

def at_once(request):
    def run(number):
        client = Client(raise_request_exception=False)
        everyone.wait(timeout=30)
        try:
            response = request(client, number)
            return {"status": response.status_code, "code": response.json().get("error", {}).get("code"),
                    "retry_after": response.headers.get("Retry-After")}
        finally:
            connections.close_all()
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))

if case == "refresh":
    refresh = token_pair_for(PatientFactory())["refresh"]
    connections.close_all()
    answers = at_once(lambda client, number: client.post(
        "/api/v1/auth/token/refresh/", {"refresh": refresh}, content_type="application/json"))
elif case == "presence":
    tokens = [token_pair_for(PatientFactory())["access"] for _ in range(10)]
    connections.close_all()
    statuses = ["online", "away", "dnd"]
    answers = at_once(lambda client, number: client.put(
        "/api/v1/presence/me/", {"status": statuses[number % 3]}, content_type="application/json",
        HTTP_AUTHORIZATION="Bearer " + tokens[number % 10]))
elif case == "call":
    from datetime import timedelta
    from django.utils import timezone
    from tests.factories import DoctorFactory
    from tests.sessions.factories import ConfirmedPaidSessionFactory
    doctor, patient = DoctorFactory(), PatientFactory()
    session = ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=timezone.now() + timedelta(minutes=5))
    tokens = {"doctor": token_pair_for(doctor)["access"], "patient": token_pair_for(patient)["access"]}
    room = Client().post(f"/api/v1/sessions/{session.pk}/room/",
                         HTTP_AUTHORIZATION="Bearer " + tokens["doctor"]).json()["id"]
    connections.close_all()
    joins = at_once(lambda client, number: client.post(
        f"/api/v1/calls/{room}/join/", {}, content_type="application/json",
        HTTP_AUTHORIZATION="Bearer " + tokens["doctor" if number % 2 else "patient"]))
    ends = at_once(lambda client, number: client.post(
        f"/api/v1/calls/{room}/end/", HTTP_AUTHORIZATION="Bearer " + tokens["doctor"]))
    answers = {"joins": joins, "ends": ends}
elif case == "sweeps":
    from presence.tasks import sweep_stale_connections
    from sessions.tasks import sessions_lapse_requests, sessions_mark_no_shows
    from video_calls.tasks import calls_end_stale, calls_expire_ringing
    sweeps = [sweep_stale_connections, sessions_mark_no_shows, sessions_lapse_requests, calls_end_stale,
              calls_expire_ringing]
    tokens = [token_pair_for(PatientFactory())["access"] for _ in range(15)]
    connections.close_all()

    def sweep_or_update(client, number):
        if number % 2:
            return client.put("/api/v1/presence/me/", {"status": "away"}, content_type="application/json",
                              HTTP_AUTHORIZATION="Bearer " + tokens[number // 2])
        try:
            sweeps[number // 2 % len(sweeps)]()
        except Exception as error:
            return type("Answer", (), {"status_code": type(error).__name__, "json": lambda self: {},
                                       "headers": {}})()
        return type("Answer", (), {"status_code": "swept", "json": lambda self: {}, "headers": {}})()

    answers = at_once(sweep_or_update)
elif case == "held-lock":
    access = token_pair_for(PatientFactory())["access"]
    connections.close_all()
    holder = sqlite3.connect(sys.argv[2], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    client = Client(raise_request_exception=False)
    response = client.put("/api/v1/presence/me/", {"status": "away"}, content_type="application/json",
                          HTTP_AUTHORIZATION="Bearer " + access)
    holder.rollback()
    answers = [{"status": response.status_code, "code": response.json().get("error", {}).get("code"),
                "retry_after": response.headers.get("Retry-After"), "seconds": time.monotonic() - started}]
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sqlite") / "template.sqlite3")
    environment = {**BASE_ENVIRONMENT, "DATABASE_URL": f"sqlite:///{path}"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity=0"],
        cwd=django_settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert migrate.returncode == 0, migrate.stderr
    return path


def run_case(migrated_database: str, tmp_path, case: str, **environment: str) -> list[dict]:
    path = str(tmp_path / "db.sqlite3")
    shutil.copyfile(migrated_database, path)
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, case, path],
        cwd=django_settings.BASE_DIR,
        env={**BASE_ENVIRONMENT, "DATABASE_URL": f"sqlite:///{path}", **environment},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    return json.loads(probe.stdout.strip().splitlines()[-1])


def test_concurrent_rotations_of_one_refresh_token_have_one_winner(migrated_database, tmp_path):
    answers = run_case(migrated_database, tmp_path, "refresh")

    statuses = sorted(answer["status"] for answer in answers)
    assert statuses == [200] + [401] * 29, answers
    assert {answer["code"] for answer in answers if answer["status"] == 401} == {"TOKEN_INVALID"}


def test_concurrent_presence_updates_all_succeed(migrated_database, tmp_path):
    answers = run_case(migrated_database, tmp_path, "presence")

    assert [answer["status"] for answer in answers] == [200] * 30, answers


def test_a_write_lock_held_past_the_busy_timeout_is_service_unavailable(migrated_database, tmp_path):
    [answer] = run_case(migrated_database, tmp_path, "held-lock", SQLITE_BUSY_TIMEOUT="0.3")

    assert answer["status"] == 503, answer
    assert answer["code"] == "SERVICE_UNAVAILABLE"
    assert answer["retry_after"] == "5"
    assert answer["seconds"] < 5


def test_concurrent_joins_and_ends_of_a_call_resolve_without_errors(migrated_database, tmp_path):
    answers = run_case(migrated_database, tmp_path, "call")

    # the doctor (host) joins, the patient waits to be admitted: 200 and 202, fifteen of each
    assert [answer["status"] for answer in answers["joins"]] == [202, 200] * 15, answers["joins"]
    ends = sorted(answer["status"] for answer in answers["ends"])
    assert ends == [200] + [409] * 29, answers["ends"]
    assert {answer["code"] for answer in answers["ends"] if answer["status"] == 409} == {"INVALID_CALL_STATE"}


def test_sweeps_running_beside_requests_neither_fail(migrated_database, tmp_path):
    answers = run_case(migrated_database, tmp_path, "sweeps")

    assert [answer["status"] for answer in answers] == ["swept", 200] * 15, answers

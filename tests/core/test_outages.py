"""A dependency that is down answers 503 SERVICE_UNAVAILABLE with Retry-After, soon, on DRF views,
on Django's own views and on the readiness probe; a bug stays a 500.

The outages are real: Redis and PostgreSQL addresses on a loopback port nothing listens on. The
PostgreSQL case runs in a subprocess, since this process's database connection is the suite's.
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

from core.outages import outage_of
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db

# Loose guards against waiting for an operating system's connect timeout, not benchmarks.
FAST_SECONDS = 5


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again once the probe socket is


def unreachable_redis():
    url = f"redis://127.0.0.1:{closed_port()}/0"
    caches = {
        "default": {
            "BACKEND": "core.redis_pool.SharedRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0},
        }
    }
    return override_settings(CACHES=caches, REDIS_URL=url)


def assert_service_unavailable(response) -> None:
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == "5"
    assert error["details"] == {"retry_after": 5}


def test_login_with_redis_down_is_service_unavailable(anon_client, patient):
    with unreachable_redis():
        started = time.monotonic()
        response = anon_client.post("/api/v1/auth/login/", {"email": patient.email, "password": "x"}, format="json")
        elapsed = time.monotonic() - started

    assert_service_unavailable(response)
    assert elapsed < FAST_SECONDS


def test_socket_ticket_with_redis_down_is_service_unavailable(patient_client):
    with unreachable_redis():
        response = patient_client.post("/api/v1/realtime/tickets/")

    assert_service_unavailable(response)


def test_retry_after_follows_the_setting(anon_client, patient, settings):
    settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 30
    with unreachable_redis():
        response = anon_client.post("/api/v1/auth/login/", {"email": patient.email, "password": "x"}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"


def test_readiness_with_redis_down_answers_within_its_deadline(anon_client):
    with unreachable_redis():
        started = time.monotonic()
        response = anon_client.get("/api/health/ready")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["status"] == "unavailable"
    assert elapsed < FAST_SECONDS


def test_readiness_reports_a_check_that_hangs_past_the_deadline(anon_client, monkeypatch, settings):
    from core import views

    settings.READINESS_TIMEOUT_SECONDS = 0.2
    monkeypatch.setattr(views, "check_database", lambda: time.sleep(2))

    started = time.monotonic()
    response = anon_client.get("/api/health/ready")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "unavailable"
    assert elapsed < 1.5


def test_a_locked_sqlite_database_is_an_outage_and_a_broken_query_is_not():
    def wrapped(message: str) -> OperationalError:
        error = OperationalError(message)
        error.__cause__ = sqlite3.OperationalError(message)
        return error

    assert outage_of(wrapped("database is locked")) == "database"
    assert outage_of(wrapped("no such table: accounts_user")) is None
    assert outage_of(RuntimeError("bug")) is None


def test_an_outage_outside_drf_is_service_unavailable_too(monkeypatch, staff):
    """Django's own views (the admin here) go through handler500, which sees the exception."""
    from django.contrib.auth import views as auth_views

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(auth_views.LoginView, "get", database_down)

    response = Client(raise_request_exception=False).get("/admin/login/")

    assert_service_unavailable(response)


_POSTGRES_DOWN_PROBE = """
import json, time, django
django.setup()
from django.test import Client
client = Client(raise_request_exception=False)
client.cookies["sessionid"] = "a" * 32  # the admin then reads the session from the database
answers = {}
for name, method, path, body in [
    ("login", "post", "/api/v1/auth/login/", {"email": "a@example.test", "password": "x"}),
    ("ready", "get", "/api/health/ready", None),
    ("admin", "get", "/admin/", None),
]:
    started = time.monotonic()
    if method == "post":
        response = client.post(path, body, content_type="application/json")
    else:
        response = client.get(path)
    answers[name] = {
        "status": response.status_code,
        "retry_after": response.headers.get("Retry-After"),
        "body": response.content.decode(),
        "seconds": time.monotonic() - started,
    }
print(json.dumps(answers))
"""


def test_every_kind_of_view_with_postgresql_down_answers_service_unavailable_fast():
    environment = {
        # The clock of make test-clock-ahead moves the subprocess too (tests/clock_ahead).
        **{name: os.environ[name] for name in ("CLOCK_AHEAD_DAYS", "PYTHONPATH") if name in os.environ},
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/telehealth",
        "DATABASE_POOL_TIMEOUT": "1",
        "DATABASE_CONNECT_TIMEOUT": "1",
        "LOG_LEVEL": "CRITICAL",
        "ALLOWED_HOSTS": "testserver",
    }
    probe = subprocess.run(
        [sys.executable, "-c", _POSTGRES_DOWN_PROBE], env=environment, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    answers = json.loads(probe.stdout.strip().splitlines()[-1])

    for name in ("login", "admin"):
        assert answers[name]["status"] == 503, answers[name]
        assert json.loads(answers[name]["body"])["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert answers[name]["retry_after"] == "5"
        assert answers[name]["seconds"] < FAST_SECONDS
    assert answers["ready"]["status"] == 503
    assert json.loads(answers["ready"]["body"])["checks"]["database"]["status"] == "unavailable"
    assert answers["ready"]["seconds"] < 2.5

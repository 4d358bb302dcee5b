"""Health: ``live`` and ``ready`` for anyone (ok or unavailable, nothing more), ``info`` for staff
or the configured token. ``ready`` is tested against real refusals: each dependency pointed at a
loopback port nothing listens on."""

import socket
import time

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler
from django.test import override_settings

from core import views
from tests.conftest import client_for

CHECKS = {"database", "cache", "channel_layer", "broker"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed when the block ends: connections are refused


@pytest.mark.django_db
def test_live_answers_without_authentication(anon_client):
    response = anon_client.get("/api/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_every_dependency_with_its_latency(anon_client):
    response = anon_client.get("/api/health/ready")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    assert {check["status"] for check in body["checks"].values()} == {"ok"}
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())


@pytest.mark.django_db
def test_ready_names_the_failing_check(anon_client, monkeypatch):
    def database_down():
        raise ConnectionError("refused")

    monkeypatch.setattr(views, "check_database", database_down)

    response = anon_client.get("/api/health/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == {"status": "unavailable", "latency_ms": None}
    assert response.json()["checks"]["cache"]["status"] == "ok"


@pytest.mark.django_db
def test_ready_answers_within_its_deadline_when_a_check_hangs(anon_client, monkeypatch, settings):
    settings.READINESS_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr(views, "check_broker", lambda: time.sleep(3))

    started = time.monotonic()
    response = anon_client.get("/api/health/ready")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] == "unavailable"
    assert elapsed < 1.5


def _redis_at(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("dependency", "failing"),
    [
        ("cache", "cache"),
        ("channel_layer", "channel_layer"),
        ("broker", "broker"),
    ],
)
def test_ready_names_an_unreachable_redis_or_broker_within_two_seconds(anon_client, dependency, failing):
    unreachable = _redis_at(_closed_port())
    overrides = {
        "cache": {
            "CACHES": {
                "default": {
                    "BACKEND": "core.redis_pool.SharedRedisCache",
                    "LOCATION": unreachable,
                    "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
                }
            }
        },
        "channel_layer": {
            "CHANNEL_LAYERS": {
                "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [unreachable]}}
            }
        },
        "broker": {"CELERY_BROKER_URL": unreachable},
    }[dependency]

    with override_settings(**overrides):
        started = time.monotonic()
        response = anon_client.get("/api/health/ready")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert {name for name, check in checks.items() if check["status"] == "unavailable"} == {failing}
    assert elapsed < 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_ready_names_an_unreachable_postgresql_within_two_seconds(anon_client, monkeypatch):
    # The check's connections come from a handler whose server refuses them. Without the pool:
    # the pools are per alias and process, and the running one is connected to the real server.
    unreachable = {**connections.settings["default"], "HOST": "127.0.0.1", "PORT": str(_closed_port())}
    unreachable["OPTIONS"] = {name: value for name, value in unreachable["OPTIONS"].items() if name != "pool"}
    monkeypatch.setattr(views, "connections", ConnectionHandler({"default": unreachable}))

    started = time.monotonic()
    response = anon_client.get("/api/health/ready")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "unavailable"
    assert elapsed < 2


@pytest.mark.redis
@pytest.mark.django_db
def test_ready_checks_the_configured_redis(anon_client):
    response = anon_client.get("/api/health/ready")

    assert response.status_code == 200, response.json()
    assert {name: check["status"] for name, check in response.json()["checks"].items()} == dict.fromkeys(CHECKS, "ok")


# --- info ----------------------------------------------------------------------------------

INFO_FIELDS = {"version", "git_revision", "started_at", "uptime_seconds", "process", "disk", "python", "dependencies"}


@pytest.mark.django_db
def test_info_is_refused_to_anonymous_callers(anon_client):
    response = anon_client.get("/api/health/info")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "NOT_AUTHENTICATED"


@pytest.mark.django_db
def test_info_is_refused_to_patients_and_doctors(patient_client, doctor_client):
    assert patient_client.get("/api/health/info").status_code == 403
    assert doctor_client.get("/api/health/info").status_code == 403


@pytest.mark.django_db
def test_info_for_staff(staff):
    response = client_for(staff).get("/api/health/info")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == INFO_FIELDS
    assert body["version"] == "1.0.0"
    assert body["process"]["memory_rss_bytes"] > 0
    assert body["disk"]["free_bytes"] > 0
    assert body["dependencies"]["Django"].startswith("5.2")


@pytest.mark.django_db
def test_info_for_the_configured_token(anon_client, settings):
    settings.HEALTH_INFO_TOKEN = "info-token-0123456789abcdef"

    anon_client.credentials(HTTP_AUTHORIZATION="Bearer info-token-0123456789abcdef")
    response = anon_client.get("/api/health/info")

    assert response.status_code == 200
    assert set(response.json()) == INFO_FIELDS


@pytest.mark.django_db
def test_info_refuses_another_token(anon_client, settings):
    settings.HEALTH_INFO_TOKEN = "info-token-0123456789abcdef"
    settings.METRICS_TOKEN = "metrics-token-0123456789abcdef"

    anon_client.credentials(HTTP_AUTHORIZATION="Bearer metrics-token-0123456789abcdef")

    assert anon_client.get("/api/health/info").status_code == 401

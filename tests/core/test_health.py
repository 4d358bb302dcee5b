import pytest
from django.test import override_settings

from core import views


@pytest.mark.django_db
def test_live_answers_without_authentication(anon_client):
    response = anon_client.get("/api/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_the_database(anon_client, settings):
    response = anon_client.get("/api/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert ("redis" in body["checks"]) == bool(settings.REDIS_URL)


@pytest.mark.django_db
def test_ready_names_the_failing_check(anon_client, monkeypatch):
    def database_down():
        raise ConnectionError("refused")

    monkeypatch.setattr(views, "check_database", database_down)

    response = anon_client.get("/api/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_ready_reports_unreachable_redis(anon_client):
    response = anon_client.get("/api/health/ready")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "unavailable"}}


@pytest.mark.redis
@pytest.mark.django_db
def test_ready_checks_the_configured_redis(anon_client):
    response = anon_client.get("/api/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}

"""Health probes addressed to the pod's IP (Kubernetes' Host header) are served whatever
ALLOWED_HOSTS says; the rest of the site still refuses hosts it does not know. The addresses
are documentation ranges, only ever written in a Host header."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

POD_HOSTS = ["192.0.2.17:8000", "192.0.2.17", "[2001:db8::5]:8000"]


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("host", POD_HOSTS)
def test_liveness_probe_to_the_pod_ip_is_served(client, host):
    response = client.get("/api/health/live", HTTP_HOST=host)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"]


@pytest.mark.parametrize("host", POD_HOSTS)
def test_readiness_probe_to_the_pod_ip_is_served(client, host):
    response = client.get("/api/health/ready", HTTP_HOST=host)

    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database"]["status"] == "ok"


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/api/v1/doctors/", "192.0.2.17:8000"),
        ("/api/schema/", "192.0.2.17:8000"),
        ("/admin/login/", "[2001:db8::5]:8000"),
        ("/api/health/live/", "192.0.2.17:8000"),  # not a probe path
        ("/api/health/live", "unknown.example"),  # a name, not the pod's address
        ("/api/health/live", "192.0.2.17.evil.example"),
    ],
)
def test_other_paths_and_unknown_host_names_are_still_refused(client, path, host):
    response = client.get(path, HTTP_HOST=host)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"


def test_only_reads_of_the_probes_bypass_the_host_check(client):
    response = client.post("/api/health/live", HTTP_HOST="192.0.2.17:8000")

    assert response.status_code == 400


def test_probes_to_an_allowed_host_go_through_the_usual_chain(client):
    response = client.get("/api/health/live", HTTP_HOST="localhost")

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware ran


def test_a_metrics_scrape_of_the_pod_ip_is_served_to_the_configured_token(client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789abcdef"

    scraped = client.get(
        "/api/health/metrics", HTTP_HOST="192.0.2.17:8000", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789abcdef"
    )
    refused = client.get("/api/health/metrics", HTTP_HOST="192.0.2.17:8000")

    assert scraped.status_code == 200, scraped.content
    assert scraped["Content-Type"].startswith("text/plain")
    assert refused.status_code == 401

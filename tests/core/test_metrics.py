"""The metrics endpoint: who may scrape it, and what each figure counts. Figures are summed
over every process writing to PROMETHEUS_MULTIPROC_DIR, so each test reads how a figure moved,
not its value."""

import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from config.celery_app import app as celery_app
from core import metrics
from presence.tasks import sweep_stale_connections
from tests.conftest import client_for
from tests.realtime.conftest import served, transport  # noqa: F401  fixtures of the socket tests
from tests.video_calls.factories import CallFactory
from video_calls.models import CallStatus

pytestmark = pytest.mark.django_db

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple, float]:
    response = client.get("/api/health/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


@pytest.fixture
def scraper(staff):
    return client_for(staff)


def test_metrics_are_refused_to_anonymous_callers_and_patients(anon_client, patient_client):
    assert anon_client.get("/api/health/metrics").status_code == 401
    assert patient_client.get("/api/health/metrics").status_code == 403


def test_metrics_for_the_configured_token(anon_client, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    assert anon_client.get("/api/health/metrics").status_code == 200


def test_metrics_refuse_a_wrong_token(anon_client, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer metrics-token-0123456789abcdeX")

    assert anon_client.get("/api/health/metrics").status_code == 401


def test_requests_are_counted_by_route_name_and_status(scraper, anon_client, patient_client):
    live = ("telehealth_http_requests_total", (("method", "GET"), ("route", "health-live"), ("status", "200")))
    before = scrape(scraper).get(live, 0)

    anon_client.get("/api/health/live")
    anon_client.get("/api/health/live")

    assert scrape(scraper)[live] == before + 2


def test_route_labels_carry_no_ids(scraper, patient_client):
    missing = "0b5e9a3c-1f0e-4c55-9a7e-5d7b3c1e2f40"
    patient_client.get(f"/api/v1/calls/{missing}/")
    patient_client.get(f"/api/v1/nowhere/{missing}")

    text = scraper.get("/api/health/metrics").content.decode()

    assert missing not in text
    assert 'route="unmatched",status="404"' in text
    assert 'route="call-history-detail",status="404"' in text


def test_request_latency_is_observed_by_route(scraper, anon_client):
    count = ("telehealth_http_request_duration_seconds_count", (("method", "GET"), ("route", "health-ready")))
    before = scrape(scraper).get(count, 0)

    anon_client.get("/api/health/ready")

    assert scrape(scraper)[count] == before + 1


def test_celery_task_outcomes_and_durations(scraper):
    name = sweep_stale_connections.name
    success = ("telehealth_celery_tasks_total", (("outcome", "success"), ("task", name)))
    duration = ("telehealth_celery_task_duration_seconds_count", (("task", name),))
    before = scrape(scraper)

    sweep_stale_connections.delay()

    after = scrape(scraper)
    assert after[success] == before.get(success, 0) + 1
    assert after[duration] == before.get(duration, 0) + 1


@celery_app.task(name="tests.metrics.fail")
def failing_task() -> None:
    raise RuntimeError("a bug")


def test_a_failed_celery_task_is_counted_as_a_failure(scraper):
    failure = ("telehealth_celery_tasks_total", (("outcome", "failure"), ("task", "tests.metrics.fail")))
    before = scrape(scraper).get(failure, 0)

    with pytest.raises(RuntimeError):
        failing_task.delay()

    assert scrape(scraper)[failure] == before + 1


def test_audit_rows_written_counter(scraper):
    written = ("telehealth_audit_rows_written_total", ())
    before = scrape(scraper)[written]

    metrics.audit_rows_written.inc()
    metrics.audit_rows_written.inc(3)

    assert scrape(scraper)[written] == before + 4


def test_ongoing_calls_are_read_from_the_database(scraper):
    CallFactory(status=CallStatus.ONGOING)
    CallFactory(status=CallStatus.COMPLETED)

    assert scrape(scraper)[("telehealth_calls_ongoing", ())] == 1


def test_open_connection_gauges_of_exited_processes_are_dropped(scraper):
    """A process that died with sockets open leaves its gauge file behind; a scrape removes it,
    so the gauge counts only what is open now."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    gauge = ("telehealth_websocket_connections", ())
    metrics.websocket_connections.inc(5)
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(exited.stdout)
    try:
        shutil.copy(directory / f"gauge_livesum_{os.getpid()}.db", directory / f"gauge_livesum_{dead_pid}.db")

        assert metrics.forget_dead_processes() == [dead_pid]
        assert not (directory / f"gauge_livesum_{dead_pid}.db").exists()
        assert scrape(scraper)[gauge] == 5
    finally:
        metrics.websocket_connections.dec(5)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_open_websocket_connections_are_counted_while_open(patient):
    from channels.db import database_sync_to_async

    from tests.realtime.conftest import open_socket

    def gauge() -> float:
        return samples(metrics.render_metrics().decode())[("telehealth_websocket_connections", ())]

    before = await database_sync_to_async(gauge)()
    communicator = await open_socket(patient)
    during = await database_sync_to_async(gauge)()
    await communicator.disconnect()
    after = await database_sync_to_async(gauge)()

    assert (during, after) == (before + 1, before)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("transport")  # the ordinary ASGI path, then uvicorn's direct path
async def test_relayed_signals_are_counted(doctor, patient):
    from channels.db import database_sync_to_async

    from tests.realtime.conftest import next_event
    from tests.realtime.test_signaling import _in_call, _ongoing_call

    def relayed() -> float:
        return samples(metrics.render_metrics().decode())[("telehealth_signals_relayed_total", ())]

    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    doctor_socket, _ = await _in_call(doctor, call)
    patient_socket, _ = await _in_call(patient, call)
    before = await database_sync_to_async(relayed)()

    offer = {"call_id": str(call.pk), "to": str(patient.pk), "sdp": "v=0\r\n"}
    await doctor_socket.send_json_to({"type": "signal.offer", "data": offer})
    assert (await next_event(patient_socket))["type"] == "signal.offer"

    assert await database_sync_to_async(relayed)() == before + 1
    await doctor_socket.disconnect()
    await patient_socket.disconnect()

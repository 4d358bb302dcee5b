"""Log lines: one JSON object each in production, every one naming the request id of the HTTP
request, the Celery task's originating request, or the socket connection it belongs to."""

import io
import json
import logging

import pytest
from celery.contrib.testing.worker import start_worker
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.celery_app import app as celery_app
from core import views
from core.logging import RequestIdFilter, structured_formatter
from core.request_context import request_id_var
from realtime import registry
from realtime.tickets import ticket_issue
from tests.core.test_backpressure import pool_timeout, wrapped_by_django
from tests.realtime.conftest import ORIGIN, application

REQUEST_ID = "support-ticket-4711"
task_logger = logging.getLogger("tests.core.test_logging")


@pytest.fixture
def json_lines():
    """The JSON lines written while the test runs, parsed."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(structured_formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in output.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_line_is_one_json_object_with_level_logger_time_and_request_id(json_lines):
    logging.getLogger("core.example").warning("Something to look at: %s", "LATE_CALL")

    (line,) = json_lines()
    assert set(line) == {"event", "level", "logger", "timestamp", "request_id"}
    assert line["event"] == "Something to look at: LATE_CALL"
    assert (line["level"], line["logger"], line["request_id"]) == ("warning", "core.example", "-")


def test_the_console_format_is_readable_columns():
    record = logging.LogRecord("core.example", logging.INFO, __file__, 1, "Call %s ended", ("c-1",), None)
    RequestIdFilter().filter(record)

    line = structured_formatter("console").format(record)

    assert "Call c-1 ended" in line
    assert "request_id=-" in line
    assert not line.startswith("{")


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        structured_formatter("xml")


@pytest.mark.django_db
def test_a_requests_lines_carry_its_request_id(anon_client, json_lines, monkeypatch):
    def database_down():
        raise ConnectionError("refused")

    monkeypatch.setattr(views, "check_database", database_down)

    response = anon_client.get("/api/health/ready", HTTP_X_REQUEST_ID=REQUEST_ID)

    assert response["X-Request-ID"] == REQUEST_ID
    warnings = [line for line in json_lines() if line["logger"] == "core.views"]
    assert [line["event"] for line in warnings] == ["Readiness check database failed: ConnectionError"]
    assert {line["request_id"] for line in warnings} == {REQUEST_ID}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "failure, status, line",
    [
        (
            lambda: wrapped_by_django(pool_timeout()),
            503,
            ("warning", "core.outages", "Dependency unavailable: database"),
        ),
        (lambda: ZeroDivisionError(), 500, ("error", "core.exception_handlers", "Unhandled exception in TicketApi")),
    ],
)
def test_a_5xx_is_logged_once_with_its_request_id(patient_client, json_lines, monkeypatch, failure, status, line):
    """Our handler logs a 503 (a warning: the back-pressure working) and a 500 (an error, with the
    traceback) with the request id; Django's request logger would add an error line without one."""

    def failing(**kwargs):
        raise failure()

    monkeypatch.setattr("realtime.apis.ticket_issue", failing)

    response = patient_client.post("/api/v1/realtime/tickets/", HTTP_X_REQUEST_ID=REQUEST_ID)

    assert response.status_code == status
    assert [(entry["level"], entry["logger"], entry["event"], entry["request_id"]) for entry in json_lines()] == [
        (*line, REQUEST_ID)
    ]


@pytest.mark.django_db
def test_an_outage_outside_drf_is_logged_once_with_its_request_id(json_lines, monkeypatch):
    """Django's own views (the admin's login) reach handler500, which answers 503 for an outage."""
    from django.contrib.auth import views as auth_views
    from django.db import OperationalError
    from django.test import Client

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(auth_views.LoginView, "get", database_down)

    response = Client(raise_request_exception=False).get("/admin/login/", HTTP_X_REQUEST_ID=REQUEST_ID)

    assert response.status_code == 503
    assert [(entry["level"], entry["logger"], entry["event"], entry["request_id"]) for entry in json_lines()] == [
        ("warning", "core.outages", "Dependency unavailable: database", REQUEST_ID)
    ]


@celery_app.task(name="tests.log_a_line")
def log_a_line(call_id: str) -> None:
    task_logger.warning("Task ran for call %s", call_id)


@pytest.fixture
def real_worker():
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        celery_app.conf.task_always_eager = True


@pytest.mark.django_db(transaction=True)
def test_a_task_started_by_a_request_logs_with_the_requests_id(real_worker, json_lines):
    token = request_id_var.set(REQUEST_ID)  # as RequestIdMiddleware does for the request
    try:
        result = log_a_line.delay("call-1")
    finally:
        request_id_var.reset(token)
    result.get(timeout=30)

    (line,) = [line for line in json_lines() if line["logger"] == task_logger.name]
    assert line["event"] == "Task ran for call call-1"
    assert line["request_id"] == REQUEST_ID


@pytest.fixture
def failing_handler():
    registry.handles("test.fail")(_fail)
    try:
        yield
    finally:
        registry.HANDLERS.pop("test.fail")


async def _fail(connection, data: dict) -> None:
    raise RuntimeError("a bug")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_connections_lines_carry_its_request_id(patient, json_lines, failing_handler):
    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    headers = [ORIGIN, (b"x-request-id", REQUEST_ID.encode())]
    communicator = WebsocketCommunicator(application, f"/ws/?ticket={ticket}", headers=headers)
    assert (await communicator.connect(timeout=5))[0]
    assert json.loads(await communicator.receive_from(timeout=5))["type"] == "connection.ready"

    await communicator.send_json_to({"type": "test.fail", "id": "m-1", "data": {}})
    reply = json.loads(await communicator.receive_from(timeout=5))
    await communicator.disconnect()

    assert reply["type"] == "error"
    (line,) = [line for line in json_lines() if line["logger"] == "realtime.consumers"]
    assert line["event"] == "Unhandled error in realtime handler for test.fail"
    assert line["request_id"] == REQUEST_ID

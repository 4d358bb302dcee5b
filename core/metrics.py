"""Prometheus metrics of every process of the deployment, served at ``/api/health/metrics``.

prometheus-client's multiprocess mode: each process (every web server process, every Celery
worker process) writes its figures to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``, and
the process that answers a scrape adds them all up. So a scrape reports the deployment, not the
one process the load balancer happened to pick. Counters and histograms of a process that has
exited stay in the sum (a counter never goes down); gauges of open things count live processes
only (``livesum``), and a scrape first removes the gauge files of processes that are gone. A
process that starts when no process of the directory runs any more removes the last run's
files (``clear_stale_files``).

Labels never carry ids: a request is labelled with its route's URL pattern name
(``session-detail``), never its path.

Other modules record through the objects here, e.g. the audit trail calls
``audit_rows_written.inc()`` for each entry it writes (``.inc(n)`` for a batch).
"""

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Files prometheus-client writes per process, e.g. gauge_livesum_4242.db.
_PROCESS_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _process_files(directory: Path) -> dict[int, list[Path]]:
    files: dict[int, list[Path]] = {}
    for name in os.listdir(directory):
        if match := _PROCESS_FILE.match(name):
            files.setdefault(int(match.group(1)), []).append(directory / name)
    return files


def clear_stale_files(directory: Path | None = None) -> list[int]:
    """At a process's start: when no process that wrote to the directory still runs, the
    deployment is starting anew, and the files of the last run (every counter, histogram and
    gauge of its dead processes) are removed, so the figures start from zero instead of adding
    to last week's. While another process runs, nothing is removed here: the counters of a
    process that exited stay in the sum, so that they never go down under a running deployment.
    Only files of processes that are gone are ever removed, so two processes starting at once
    cannot remove each other's. Returns the pids whose files were removed."""
    directory = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # set by the settings
    if not directory or not Path(directory).is_dir():
        return []
    directory = Path(directory)
    files = _process_files(directory)
    alive = {pid for pid in files if pid == os.getpid() or _process_alive(pid)}
    if alive:
        return []
    for paths in files.values():
        for path in paths:
            path.unlink(missing_ok=True)
    return sorted(files)


# Before this process writes its own files (the metrics below create them).
clear_stale_files()

# Seconds: most API answers take milliseconds; a slow upload or export takes seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

http_requests = Counter(
    "telehealth_http_requests",
    "HTTP requests answered, by route (URL pattern name), method and status.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "telehealth_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (URL pattern name) and method.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
websocket_connections = Gauge(
    "telehealth_websocket_connections",
    "WebSocket connections open now (authenticated), over every live server process.",
    multiprocess_mode="livesum",
)
signals_relayed = Counter(
    "telehealth_signals_relayed",
    "WebRTC signaling messages relayed to a peer's connection (one per addressee connection).",
)
celery_tasks = Counter(
    "telehealth_celery_tasks",
    "Celery tasks finished, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)
celery_task_duration = Histogram(
    "telehealth_celery_task_duration_seconds",
    "Time a Celery task ran, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
audit_rows_written = Counter(
    "telehealth_audit_rows_written",
    "Audit trail entries written. The audit trail calls audit_rows_written.inc() (or .inc(n)).",
)


def forget_dead_processes(directory: Path | None = None) -> list[int]:
    """Remove the live gauges of processes that have exited (their open connections are gone
    with them). Returns the pids forgotten."""
    directory = Path(directory or settings.PROMETHEUS_MULTIPROC_DIR)
    pids = {int(match.group(1)) for name in os.listdir(directory) if (match := _PROCESS_FILE.match(name))}
    dead = sorted(pid for pid in pids if pid != os.getpid() and not _process_alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(directory))
    return dead


class OngoingCallsCollector:
    """Calls ongoing now, read from the database at scrape time: the database is the one place
    that knows every process's calls. Left out of the scrape when the database does not answer,
    so the other figures still arrive during an outage."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError

        from video_calls.models import Call, CallStatus

        try:
            ongoing = Call.objects.filter(status=CallStatus.ONGOING).count()
        except DatabaseError:
            return
        yield GaugeMetricFamily("telehealth_calls_ongoing", "Calls ongoing now.", value=ongoing)


def render_metrics() -> bytes:
    """The Prometheus text exposition of every process writing to PROMETHEUS_MULTIPROC_DIR."""
    forget_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    registry.register(OngoingCallsCollector())
    return generate_latest(registry)


def route_of(request: HttpRequest) -> str:
    """The URL pattern name of the request's route, ``unmatched`` for a path no route has. A
    request answered before URL resolution (a probe addressed by IP) is resolved here."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestMetricsMiddleware:
    """Count and time every HTTP answer by route, method and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        http_requests.labels(route, method, str(response.status_code)).inc()
        http_request_duration.labels(route, method).observe(elapsed)
        return response


# Methods a client could invent are one label value, not one each.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


# --- Celery --------------------------------------------------------------------------------
# Connected in config/celery_app.py. task_prerun and task_postrun run in the worker process
# around the task, eager runs (tests) included.

_task_started: dict[str, float] = {}


def task_started(task_id: str) -> None:
    _task_started[task_id] = time.perf_counter()


def task_finished(task_id: str, task_name: str, state: str | None) -> None:
    started = _task_started.pop(task_id, None)
    if started is not None:
        celery_task_duration.labels(task_name).observe(time.perf_counter() - started)
    outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
    celery_tasks.labels(task_name, outcome).inc()

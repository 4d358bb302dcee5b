"""Django-level error views (outside DRF: unknown URLs, crashes in middleware), health probes and
the metrics endpoint.

Health (reference 002's family in three answers): ``live`` (the process answers), ``ready`` (every
dependency answers, each check with its latency) for anyone, since they say nothing but ok or
unavailable; ``info`` (version, revision, uptime, process and disk figures, dependency versions)
and ``metrics`` only for staff or a configured bearer token, since they describe the internals.

Why our own checks rather than django-health-check: its checks run one after another with no
deadline for the whole probe, it has no channel-layer round trip, and its answers and access
rules are its own. Ours run side by side under one deadline (``READINESS_TIMEOUT_SECONDS``), keep
the probe's answer as small as the orchestrator needs, and reuse the outage rules of
core/outages.py. What it would have added beyond that (disk, memory) is in ``info``.
"""

import asyncio
import contextvars
import hmac
import logging
import os
import shutil
import sys
import time
from concurrent import futures
from datetime import UTC, datetime
from importlib import metadata

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import error_body, logged_already
from core.outages import outage_answer, outage_of

logger = logging.getLogger(__name__)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("BAD_REQUEST", "Bad request."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("PERMISSION_DENIED", "You do not have permission to perform this action."), status=403
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("NOT_FOUND", "Not found."), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """Django calls this inside its ``except`` block for whatever escaped a view or middleware,
    so the exception is at hand: an outage is a 503, not a bug."""
    exc = sys.exc_info()[1]
    dependency = outage_of(exc) if exc is not None else None
    if dependency is not None:
        body, headers = outage_answer(dependency)  # logs the warning; Django would log an error too
        return logged_already(JsonResponse(body, status=503, headers=headers))
    return JsonResponse(
        error_body("INTERNAL_ERROR", "Something went wrong on our side. Quote the request id if you contact support."),
        status=500,
    )


# --- Health --------------------------------------------------------------------------------
# Each check raises when its dependency does not answer. It runs on a probe thread of its own,
# with timeouts no longer than the probe's deadline, so a dependency that is down costs the
# probe the deadline and the thread ends soon after.


def check_database() -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections.close_all()  # checks run on the probe threads: give the connection back


def check_cache() -> None:
    """A write and a read of the cache (Redis when ``REDIS_URL`` is set: rate limits, tickets)."""
    from django.core.cache import cache

    cache.set("health:probe", "1", timeout=10)
    if cache.get("health:probe") != "1":
        raise ConnectionError("the cache did not keep what was written")


def check_channel_layer() -> None:
    """A message sent to a fresh channel of the default layer and received back: the path every
    realtime event takes between processes. A layer of its own, on a loop of its own, closed
    after, so the probe shares no connection with the consumers."""
    from channels.layers import channel_layers

    async def round_trip() -> None:
        layer = channel_layers.make_backend("default")
        try:
            channel = await layer.new_channel("health.")
            await layer.send(channel, {"type": "health.probe"})
            message = await layer.receive(channel)
            if message.get("type") != "health.probe":
                raise ConnectionError("the channel layer returned another message")
        finally:
            close = getattr(layer, "close_pools", None)
            if close is not None:
                await close()

    asyncio.run(asyncio.wait_for(round_trip(), timeout=settings.READINESS_TIMEOUT_SECONDS))


def check_broker() -> None:
    """A connection to the Celery broker, made afresh from ``CELERY_BROKER_URL``."""
    from config.celery_app import app

    timeout = settings.READINESS_TIMEOUT_SECONDS
    connection = app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=timeout)
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout)
    finally:
        connection.release()


def readiness_checks() -> dict[str, callable]:
    """What must answer before this process takes traffic."""
    return {
        "database": check_database,
        "cache": check_cache,
        "channel_layer": check_channel_layer,
        "broker": check_broker,
    }


# Threads the readiness checks run on: one per check and a spare set, as a check that outlives
# its deadline still holds its thread until its own timeout ends it, and probes come seconds apart.
_probe_threads = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")


def _timed(check: callable) -> float:
    started = time.perf_counter()
    check()
    return (time.perf_counter() - started) * 1000


_check_result = inline_serializer(
    "HealthCheckResult",
    {
        "status": serializers.CharField(help_text="`ok` or `unavailable`."),
        "latency_ms": serializers.FloatField(
            allow_null=True, help_text="How long the dependency took to answer; null if it did not."
        ),
    },
)
_live_response = inline_serializer("HealthLive", {"status": serializers.CharField()})
_ready_response = inline_serializer(
    "HealthStatus",
    {
        "status": serializers.CharField(help_text="`ok` or `unavailable`."),
        "checks": serializers.DictField(child=_check_result),
    },
)


@extend_schema(tags=["health"], responses={200: _live_response}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def live(request: Request) -> Response:
    """Liveness: the process answers. No dependency is checked, so a database outage does not
    make the orchestrator restart every web process at once."""
    return Response({"status": "ok"})


@extend_schema(tags=["health"], responses={200: _ready_response, 503: _ready_response}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def ready(request: Request) -> Response:
    """Readiness: the database, the cache, a channel-layer round trip and the Celery broker each
    answer within ``READINESS_TIMEOUT_SECONDS``; each check reports its latency. 503 names the
    failing checks. The checks run side by side on threads of their own, so a dependency that
    hangs costs the probe the deadline, no more. Only ``ok`` or ``unavailable`` per check: the
    reason goes to the log, not to an anonymous caller."""
    checks = readiness_checks()
    # Each check in a copy of this context: its log lines name the probe's request id.
    running = {
        name: _probe_threads.submit(contextvars.copy_context().run, _timed, check) for name, check in checks.items()
    }
    futures.wait(running.values(), timeout=settings.READINESS_TIMEOUT_SECONDS)
    results = {}
    for name, outcome in running.items():
        if not outcome.done():
            logger.warning("Readiness check %s timed out", name)
            results[name] = {"status": "unavailable", "latency_ms": None}
        elif outcome.exception() is not None:  # any failure of a dependency means not ready
            logger.warning("Readiness check %s failed: %s", name, type(outcome.exception()).__name__)
            results[name] = {"status": "unavailable", "latency_ms": None}
        else:
            results[name] = {"status": "ok", "latency_ms": round(outcome.result(), 2)}
    healthy = all(result["status"] == "ok" for result in results.values())
    return Response({"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503)


class ConfiguredTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` where the token is the one a setting names
    (``HEALTH_INFO_TOKEN``, ``METRICS_TOKEN``): a monitoring system's way in, with no user.
    Any other bearer token is left to the access-token authentication that follows."""

    setting = ""

    def authenticate(self, request):
        configured = getattr(settings, self.setting, "")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if configured and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), configured.encode()):
            from django.contrib.auth.models import AnonymousUser

            return AnonymousUser(), self.setting
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HealthInfoTokenAuthentication(ConfiguredTokenAuthentication):
    setting = "HEALTH_INFO_TOKEN"


class MetricsTokenAuthentication(ConfiguredTokenAuthentication):
    setting = "METRICS_TOKEN"


class HealthInfoTokenScheme(OpenApiAuthenticationExtension):
    """The configured tokens in the schema: bearer tokens, as access tokens are."""

    target_class = HealthInfoTokenAuthentication
    name = "healthInfoToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "The HEALTH_INFO_TOKEN setting."}


class MetricsTokenScheme(HealthInfoTokenScheme):
    target_class = MetricsTokenAuthentication
    name = "metricsToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "The METRICS_TOKEN setting."}


class IsStaffOrConfiguredToken(BasePermission):
    """Staff (the admin's ``is_staff``, or the clinic staff role), or the configured token."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, str) and request.auth in ("HEALTH_INFO_TOKEN", "METRICS_TOKEN"):
            return True
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or user.is_clinic_staff))


def _access_token_authentication():
    from accounts.authentication import AccessTokenAuthentication

    return AccessTokenAuthentication


# When this process started (the operating system's figure), for ``info``'s uptime.
def _process_started_at() -> datetime:
    import psutil

    return datetime.fromtimestamp(psutil.Process().create_time(), UTC)


STARTED_AT = _process_started_at()
# Packages whose versions ``info`` reports: the ones an incident usually turns on.
REPORTED_DEPENDENCIES = (
    "Django",
    "djangorestframework",
    "channels",
    "channels_redis",
    "celery",
    "kombu",
    "redis",
    "psycopg",
    "uvicorn",
    "daphne",
    "prometheus_client",
    "structlog",
)


def _git_revision() -> str | None:
    """``GIT_REVISION`` when the deployment sets it (an image has no .git), else the checkout's
    HEAD, read from .git without running git."""
    if revision := os.environ.get("GIT_REVISION"):
        return revision
    git = settings.BASE_DIR / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


_GIT_REVISION = _git_revision()


def _project_version() -> str:
    """The version pyproject.toml declares (the project is not installed as a package)."""
    import tomllib

    with open(settings.BASE_DIR / "pyproject.toml", "rb") as project:
        return tomllib.load(project)["project"]["version"]


_VERSION = _project_version()


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def application_info() -> dict:
    import psutil

    process = psutil.Process()
    with process.oneshot():
        memory = process.memory_info()
        cpu = process.cpu_times()
        threads = process.num_threads()
    disk = shutil.disk_usage(settings.VAR_DIR)
    return {
        "version": _VERSION,
        "git_revision": _GIT_REVISION,
        "started_at": STARTED_AT.isoformat().replace("+00:00", "Z"),
        "uptime_seconds": round((datetime.now(UTC) - STARTED_AT).total_seconds(), 1),
        "process": {
            "pid": os.getpid(),
            "memory_rss_bytes": memory.rss,
            "cpu_user_seconds": round(cpu.user, 2),
            "cpu_system_seconds": round(cpu.system, 2),
            "cpu_percent": process.cpu_percent(interval=None),
            "threads": threads,
        },
        "disk": {"path": str(settings.VAR_DIR), "free_bytes": disk.free, "total_bytes": disk.total},
        "python": sys.version.split()[0],
        "dependencies": {name: _version_of(name) for name in REPORTED_DEPENDENCIES},
    }


_info_response = inline_serializer(
    "HealthInfo",
    {
        "version": serializers.CharField(),
        "git_revision": serializers.CharField(allow_null=True),
        "started_at": serializers.DateTimeField(),
        "uptime_seconds": serializers.FloatField(),
        "process": inline_serializer(
            "HealthInfoProcess",
            {
                "pid": serializers.IntegerField(),
                "memory_rss_bytes": serializers.IntegerField(),
                "cpu_user_seconds": serializers.FloatField(),
                "cpu_system_seconds": serializers.FloatField(),
                "cpu_percent": serializers.FloatField(),
                "threads": serializers.IntegerField(),
            },
        ),
        "disk": inline_serializer(
            "HealthInfoDisk",
            {
                "path": serializers.CharField(),
                "free_bytes": serializers.IntegerField(),
                "total_bytes": serializers.IntegerField(),
            },
        ),
        "python": serializers.CharField(),
        "dependencies": serializers.DictField(child=serializers.CharField(allow_null=True)),
    },
)


@extend_schema(tags=["health"], responses={200: _info_response})
@api_view(["GET"])
@authentication_classes([HealthInfoTokenAuthentication, _access_token_authentication()])
@permission_classes([IsStaffOrConfiguredToken])
def info(request: Request) -> Response:
    """What runs here and how it is doing: version, revision, uptime, this process's memory and
    CPU, free disk, dependency versions. Staff or ``HEALTH_INFO_TOKEN`` only: an anonymous
    caller learns nothing about the internals."""
    return Response(application_info())


@extend_schema(
    tags=["health"],
    responses={(200, "text/plain"): {"type": "string", "description": "Prometheus text exposition format."}},
)
@api_view(["GET"])
@authentication_classes([MetricsTokenAuthentication, _access_token_authentication()])
@permission_classes([IsStaffOrConfiguredToken])
def metrics(request: Request) -> HttpResponse:
    """Prometheus metrics of every process of the deployment (core/metrics.py). Staff or
    ``METRICS_TOKEN`` only."""
    from core.metrics import CONTENT_TYPE, render_metrics

    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)

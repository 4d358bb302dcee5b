"""Django-level error views (outside DRF: unknown URLs, crashes in middleware) and health probes."""

import logging
import sys
from concurrent import futures

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import error_body
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
        body, headers = outage_answer(dependency)
        return JsonResponse(body, status=503, headers=headers)
    return JsonResponse(
        error_body("INTERNAL_ERROR", "Something went wrong on our side. Quote the request id if you contact support."),
        status=500,
    )


def check_database() -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections.close_all()  # checks run on the probe threads: give the connection back


def check_redis() -> None:
    import redis

    timeout = settings.READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def readiness_checks() -> dict[str, callable]:
    """What must answer before this process takes traffic: the database, and Redis when set."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    return checks


# Threads the readiness checks run on. A few: a check that outlives its deadline still ends
# within its own connect timeout, and probes come seconds apart.
_probe_threads = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")

_health_response = inline_serializer(
    "HealthStatus",
    {"status": serializers.CharField(), "checks": serializers.DictField(child=serializers.CharField(), required=False)},
)


@extend_schema(tags=["health"], responses={200: _health_response}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def live(request: Request) -> Response:
    """Liveness: the process answers. No dependency is checked, so a database outage does not
    make the orchestrator restart every web process at once."""
    return Response({"status": "ok"})


@extend_schema(tags=["health"], responses={200: _health_response, 503: _health_response}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def ready(request: Request) -> Response:
    """Readiness: every dependency answers within ``READINESS_TIMEOUT_SECONDS``. 503 names the
    failing checks. The checks run side by side on threads of their own, so a dependency that
    hangs (a pool waiting for a server that is down) costs the probe the deadline, no more."""
    checks = readiness_checks()
    running = {name: _probe_threads.submit(check) for name, check in checks.items()}
    futures.wait(running.values(), timeout=settings.READINESS_TIMEOUT_SECONDS)
    results = {}
    for name, outcome in running.items():
        if not outcome.done():
            logger.warning("Readiness check %s timed out", name)
            results[name] = "unavailable"
        elif outcome.exception() is not None:  # any failure of a dependency means not ready
            logger.warning("Readiness check %s failed: %s", name, type(outcome.exception()).__name__)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    healthy = all(result == "ok" for result in results.values())
    return Response({"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503)

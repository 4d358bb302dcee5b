"""Django-level error views (outside DRF: unknown URLs, crashes in middleware) and health probes."""

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import error_body

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
    return JsonResponse(
        error_body("INTERNAL_ERROR", "Something went wrong on our side. Quote the request id if you contact support."),
        status=500,
    )


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
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
    """Readiness: every dependency answers. 503 names the failing checks."""
    results = {}
    for name, check in readiness_checks().items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure of a dependency means not ready
            logger.warning("Readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "unavailable"
    healthy = all(result == "ok" for result in results.values())
    return Response({"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503)

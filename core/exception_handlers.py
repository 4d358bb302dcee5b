"""DRF exception handler: every exception a view raises becomes the one error shape.

Known exceptions map to a stable code (docs/errors.md); a dependency outage (database, Redis,
broker: core/outages.py) is 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After``; anything else is
logged with its request id and answered 500 ``INTERNAL_ERROR`` without a stack trace. Transactions are rolled
back in every case, so an error never leaves a half-written record.
"""

import logging
from typing import Any

from django.core import exceptions as django_exceptions
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback
from rest_framework_simplejwt import exceptions as jwt_exceptions

from core.errors import error_body, logged_already
from core.exceptions import ApplicationError
from core.outages import is_lost_race, outage_answer, outage_of

logger = logging.getLogger(__name__)

# DRF exception class -> our stable code. Checked in order, so subclasses come first.
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (jwt_exceptions.InvalidToken, "TOKEN_INVALID"),
    (drf_exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (drf_exceptions.AuthenticationFailed, "AUTHENTICATION_FAILED"),
    (drf_exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (drf_exceptions.NotFound, "NOT_FOUND"),
    (drf_exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (drf_exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (drf_exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (drf_exceptions.Throttled, "RATE_LIMITED"),
    (drf_exceptions.ParseError, "MALFORMED_REQUEST"),
    (drf_exceptions.ValidationError, "VALIDATION_ERROR"),
]


def _message_of(exc: drf_exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, dict) and "detail" in detail:  # simplejwt nests its message
        return str(detail["detail"])
    if isinstance(detail, str):
        return detail
    return str(exc.default_detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, django_exceptions.PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, django_exceptions.ValidationError):
        exc = drf_exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)

    set_rollback()

    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)

    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("PAYLOAD_TOO_LARGE", "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )

    if isinstance(exc, drf_exceptions.APIException):
        code = next((code for cls, code in _DRF_CODES if isinstance(exc, cls)), "BAD_REQUEST")
        headers = {}
        details: Any = {}
        if isinstance(exc, drf_exceptions.ValidationError):
            details = exc.get_full_details()
            if not isinstance(details, dict):
                details = {"non_field_errors": details}
            message = "Some fields are invalid."
        else:
            message = _message_of(exc)
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            retry_after = int(exc.wait) + 1 if exc.wait % 1 else int(exc.wait)
            headers["Retry-After"] = str(retry_after)
            details = {"retry_after": retry_after}
            message = "Too many requests. Try again later."
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)

    dependency = outage_of(exc)
    if dependency is not None:
        body, headers = outage_answer(dependency)  # logs the warning
        return logged_already(Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=headers))

    if is_lost_race(exc):
        view = context.get("view")
        logger.warning("Constraint refused a concurrent write in %s", type(view).__name__ if view else "view")
        return Response(
            error_body("CONFLICT", "Another request changed this at the same time. Reload and try again."),
            status=status.HTTP_409_CONFLICT,
        )

    view = context.get("view")
    logger.exception("Unhandled exception in %s", type(view).__name__ if view else "view")
    return logged_already(
        Response(
            error_body(
                "INTERNAL_ERROR", "Something went wrong on our side. Quote the request id if you contact support."
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    )

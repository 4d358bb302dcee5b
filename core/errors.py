"""The one error shape: ``{"error": {"code", "message", "details", "request_id"}}``.

Used by the DRF exception handler and by Django's own error views, so a client sees the same
shape whether the error came from a serializer, a service, the router or a crash.
"""

from typing import Any, TypeVar

from core.request_context import request_id_var

_Response = TypeVar("_Response")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
            "request_id": request_id_var.get(),
        }
    }


def logged_already(response: _Response) -> _Response:
    """Mark a 5xx answer that our code has already logged, with its request id, so that Django's
    request logger does not log it a second time at error level, without one
    (``django.utils.log.log_response`` skips a response marked so). Under a surge every 503 is
    the back-pressure working: one warning each is what an operator needs, not an error line."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response

"""The one error shape: ``{"error": {"code", "message", "details", "request_id"}}``.

Used by the DRF exception handler and by Django's own error views, so a client sees the same
shape whether the error came from a serializer, a service, the router or a crash.
"""

from typing import Any

from core.request_context import request_id_var


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
            "request_id": request_id_var.get(),
        }
    }

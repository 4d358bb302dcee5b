"""The one application error type.

Services raise ``ApplicationError`` subclasses with a stable machine-readable ``code``; the
REST exception handler maps them to the error shape and the WebSocket consumer to an ``error``
event with the same code. Codes are listed in docs/errors.md.
"""

from typing import Any


class ApplicationError(Exception):
    """A refusal the client can act on. ``status`` is the HTTP status REST answers with."""

    code = "APPLICATION_ERROR"
    status = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    code = "VALIDATION_ERROR"
    status = 400
    default_message = "The request has invalid fields."


class NotFound(ApplicationError):
    """Also the answer for other users' records: their existence is not revealed."""

    code = "NOT_FOUND"
    status = 404
    default_message = "Not found."


class PermissionDenied(ApplicationError):
    code = "PERMISSION_DENIED"
    status = 403
    default_message = "You do not have permission to perform this action."


class Conflict(ApplicationError):
    code = "CONFLICT"
    status = 409
    default_message = "The request conflicts with the current state."

"""The WebSocket envelope and its errors (docs/realtime.md).

Both directions: ``{"type": "...", "data": {...}, "id": "<optional client request id>"}``.
A request that succeeds is answered ``{"type": "ack", "id": ..., "data": {...}}``; one that
fails ``{"type": "error", "id": ..., "data": {"code", "message", "details"}}``, with the codes
the REST API uses. Errors never close the connection, except the ones listed as close codes.
"""

from typing import Any, NamedTuple

import orjson

from core.exceptions import ApplicationError

# Close codes.
CLOSE_AUTH_FAILED = (
    4401  # no credential, an invalid or revoked access token, or an unknown, expired, used or revoked ticket
)
CLOSE_LOGGED_OFF = 4401  # automatic logoff: idle or open too long (realtime/logoff.py); an error event LOGGED_OFF first
CLOSE_MESSAGE_TOO_BIG = 1009  # a frame larger than REALTIME_MAX_FRAME_BYTES
CLOSE_REVOKED = 4403  # the user was signed out everywhere or suspended while connected
CLOSE_LAYER_UNAVAILABLE = 4503  # the server lost its channel layer (Redis): reconnect and re-sync
CLOSE_RATE_LIMITED = 4429  # too many connections by this user: an error event RATE_LIMITED says when to retry


class ProtocolError(ApplicationError):
    status = 400


class MalformedMessage(ProtocolError):
    code = "MALFORMED_MESSAGE"
    default_message = 'Send a JSON object: {"type": "...", "data": {...}, "id": "..."}.'


class UnknownEventType(ProtocolError):
    code = "UNKNOWN_EVENT_TYPE"
    default_message = "Unknown message type."


class RateLimited(ProtocolError):
    code = "RATE_LIMITED"
    status = 429
    default_message = "Too many messages; this one was dropped."


class Envelope(NamedTuple):  # a tuple: built for every message, and cheaper than a dataclass
    type: str
    data: dict[str, Any]
    id: str | None


# orjson: every relayed signal is parsed once and encoded once, and for a 1 KB SDP the standard
# library's json takes about 15 µs of the two where orjson takes 3 (docs/performance.md).


def parse_envelope(text: str) -> Envelope:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MalformedMessage("The message is not valid JSON.") from None
    if not isinstance(message, dict):
        raise MalformedMessage()
    request_id = message.get("id")
    if request_id is not None:
        # A tuple, not ``str | int``: the union is built anew on every call (per message).
        if not isinstance(request_id, (str, int)) or len(str(request_id)) > 64:
            raise MalformedMessage("The id must be a string of at most 64 characters.")
        request_id = str(request_id)
    event_type = message.get("type")
    data = message.get("data", {})
    if not isinstance(event_type, str) or not event_type or not isinstance(data, dict):
        raise MalformedMessage()
    return Envelope(event_type, data, request_id)


def request_id_of(text: str) -> str | None:
    """Best effort: the id of a message that failed to parse as an envelope, for the error."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(message, dict) and isinstance(message.get("id"), str | int):
        return str(message["id"])[:64]
    return None


def encode(event_type: str, data: dict[str, Any], request_id: str | None = None) -> str:
    message: dict[str, Any] = {"type": event_type, "data": data}
    if request_id is not None:
        message["id"] = request_id
    return orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def error_data(error: ApplicationError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "details": error.details}


def encode_ack(request_type: str, result: dict[str, Any] | None, request_id: str | None) -> str:
    """The reply to a request that succeeded."""
    return encode("ack", {"type": request_type, **(result or {})}, request_id)


def encode_error(error: ApplicationError, request_id: str | None) -> str:
    """The reply to a request that failed."""
    return encode("error", error_data(error), request_id)

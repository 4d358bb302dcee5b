"""Structured logs: every line one JSON object (or, for a developer, readable columns), with the
request id of the request, socket connection or Celery task it belongs to.

The code logs through the standard library (``logging.getLogger(__name__)``), as Django, Celery
and the other libraries do; structlog's ``ProcessorFormatter`` turns each record into the line,
so one pipeline covers our lines and theirs. ``structlog.get_logger()`` works too and ends in the
same handler.

What a line may carry: ids, codes, counts, durations, exception types. Never health data (names,
notes, message bodies, SDP): tests/core/test_logging_phi.py runs the main flows with a marker in
a patient's name and a message body and finds it in no line.
"""

import logging

import structlog

from core.request_context import request_id_var

# Log formats LOG_FORMAT may name.
LOG_FORMATS = ("json", "console")


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id (``-`` outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# Handshake headers that carry a credential: the access token offered as a WebSocket subprotocol
# (realtime/bearer.py), and the usual ones.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "sec-websocket-protocol", "set-cookie"})
# The loggers the WebSocket library writes every handshake header to, at debug: uvicorn hands its
# own error logger to websockets; websockets' own is used where nothing is handed to it.
HANDSHAKE_LOGGERS = ("uvicorn.error", "websockets.server")


class CredentialHeaderFilter(logging.Filter):
    """Blank the value of a credential header in websockets' handshake lines (``< name: value``,
    ``> name: value``, logged at debug), so that turning the server's log level to debug does
    not write access tokens to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.msg in ("< %s: %s", "> %s: %s")
            and isinstance(record.args, tuple)
            and len(record.args) == 2
            and str(record.args[0]).lower() in CREDENTIAL_HEADERS
        ):
            record.args = (record.args[0], "[redacted]")
        return True


def credential_headers_redact() -> None:
    """Install ``CredentialHeaderFilter`` on the handshake loggers: a logger's filter sees every
    record made on it, whatever handlers the server's own log configuration gives it."""
    for name in HANDSHAKE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, CredentialHeaderFilter) for existing in logger.filters):
            logger.addFilter(CredentialHeaderFilter())


def _add_request_id(logger, method_name: str, event_dict: dict) -> dict:
    """The request id of the record (set by RequestIdFilter), else the current one: a line from
    a handler without the filter still names its request."""
    record = event_dict.get("_record")
    request_id = getattr(record, "request_id", None) if record is not None else None
    event_dict.setdefault("request_id", request_id or request_id_var.get())
    return event_dict


_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    _add_request_id,
]


def _configure_structlog() -> None:
    """structlog's own loggers hand their events to the standard library, so they reach the
    same handlers and formatter as every other line."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def structured_formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of LOGGING's console handler: JSON lines, or a console renderer for
    ``make run`` (``LOG_FORMAT=console``, dev.py's default)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    _configure_structlog()
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        final = [structlog.processors.format_exc_info, renderer]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.ExtraAdder(allow=("request_id",))],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )

"""The id of the request being handled, for log lines and error bodies."""

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

"""What counts as a dependency outage, and the answer to one.

A database, Redis or broker that is down, unreachable or too busy is not a bug of ours: the
client gets 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` (docs/errors.md), fast, and the log
gets one warning line naming the exception type. Both error paths use this: the DRF exception
handler (core/exception_handlers.py) and Django's 500 view (core/views.py), which every other
view and middleware fall back on.

SQLite reports a query it could not parse with the same ``OperationalError`` class as a locked
database, so for SQLite only the messages of contention and an unreadable file count; on
PostgreSQL ``OperationalError`` is the server or the connection failing (psycopg's own split).

Too busy counts as down. A process's PostgreSQL pool that stays full for ``DATABASE_POOL_TIMEOUT``
(psycopg_pool ``PoolTimeout``), a pool queue longer than ``DATABASE_POOL_MAX_WAITING``
(``TooManyRequests``), a server out of connection slots ("too many clients", an
``OperationalError``), or a socket's database work still queued for a thread after the pool
timeout (``DatabaseBusy``, below) is the same answer: 503 over REST; on the WebSocket an
``error`` event ``SERVICE_UNAVAILABLE`` and close 1013 (realtime/consumers.py, docs/realtime.md).
"""

import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError

from core.errors import error_body
from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

_SQLITE_OUTAGE_MESSAGES = ("database is locked", "database table is locked", "unable to open database", "disk i/o")


def _redis_errors() -> tuple[type[Exception], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a runtime dependency
        return ()
    return (RedisConnectionError, RedisTimeoutError)


def _layer_errors() -> tuple[type[Exception], ...]:
    """A channel whose inbox on Redis is full (``CHANNEL_LAYER_CAPACITY``): the receiving process
    is too busy, so the sender is told to try again, not that we have a bug."""
    from channels.exceptions import ChannelFull

    return (ChannelFull,)


def _broker_errors() -> tuple[type[Exception], ...]:
    try:
        from kombu.exceptions import OperationalError as BrokerError
    except ImportError:  # pragma: no cover - kombu comes with Celery
        return ()
    return (BrokerError,)


def _pool_errors() -> tuple[type[Exception], ...]:
    """psycopg_pool's own errors. Django wraps those raised while it connects in its
    ``OperationalError`` (``__cause__`` the pool's); these catch the ones that arrive unwrapped."""
    try:
        from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests
    except ImportError:  # pragma: no cover - only installed with PostgreSQL support
        return ()
    return (PoolTimeout, TooManyRequests, PoolClosed)


class DatabaseBusy(Exception):
    """Database work that waited longer than its limit for a thread to run on, refused unrun."""


class ServerBusy(Exception):
    """Work that waited longer than its limit for this process's capacity (realtime/opening.py),
    refused before it started."""


_Result = TypeVar("_Result")


def started_within(func: Callable[..., _Result], seconds: float) -> Callable[..., _Result]:
    """``func``, refused with ``DatabaseBusy`` if it starts more than ``seconds`` after this call.

    A WebSocket's database work runs on a thread pool as large as the connection pool
    (core/events.py ``database_call``), so under a surge it waits in that pool's queue, not in
    the connection pool's: nothing there times out, and a handshake used to wait as long as the
    queue was (a minute, at the top of the hour). Bounded by the connection pool's own timeout,
    the socket's wait for the database is the REST request's, and its answer as fast. The check
    runs before ``func``, so refused work has done nothing (a ticket stays unredeemed)."""
    deadline = time.monotonic() + seconds

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> _Result:
        if time.monotonic() > deadline:
            raise DatabaseBusy(f"waited more than {seconds} s for a database thread")
        return func(*args, **kwargs)

    return bounded


_REDIS_ERRORS = _redis_errors() + _layer_errors()
_BROKER_ERRORS = _broker_errors()
_POOL_ERRORS = _pool_errors()


def outage_of(exc: BaseException) -> str | None:
    """The dependency whose outage ``exc`` is ("database", "redis", "broker", "server"), or None."""
    if isinstance(exc, (InterfaceError, DatabaseBusy, *_POOL_ERRORS)):
        return "database"
    if isinstance(exc, ServerBusy):
        return "server"
    if isinstance(exc, OperationalError):
        if isinstance(exc.__cause__, sqlite3.Error):
            message = str(exc).lower()
            return "database" if any(text in message for text in _SQLITE_OUTAGE_MESSAGES) else None
        return "database"
    if isinstance(exc, _REDIS_ERRORS):
        return "redis"
    if isinstance(exc, _BROKER_ERRORS):
        return "broker"
    return None


def is_lost_race(exc: BaseException) -> bool:
    """A unique or exclusion constraint refused a write: a concurrent request got there first.

    Services turn the races they expect into their own 409 codes; this is the net under the
    rest, so that losing a race is a 409 ``CONFLICT``, not a 500. Other integrity errors (a
    NOT NULL or foreign key violated by our code) stay bugs."""
    if not isinstance(exc, IntegrityError):
        return False
    cause = exc.__cause__
    if isinstance(cause, sqlite3.IntegrityError):
        return str(cause).startswith("UNIQUE constraint failed")
    return type(cause).__name__ in ("UniqueViolation", "ExclusionViolation")  # psycopg's classes


def outage_error(dependency: str) -> ApplicationError:
    """The refusal for an outage of ``dependency`` (the WebSocket's ``error`` event); logs one
    warning."""
    logger.warning("Dependency unavailable: %s", dependency)
    error = ApplicationError(
        "A service this request needs is unavailable. Try again later.",
        code="SERVICE_UNAVAILABLE",
        details={"retry_after": settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS},
    )
    error.status = 503
    return error


def outage_answer(dependency: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of the 503 for an outage of ``dependency``; logs one warning."""
    error = outage_error(dependency)
    retry_after = error.details["retry_after"]
    return error_body(error.code, error.message, error.details), {"Retry-After": str(retry_after)}

"""Realtime fan-out from the domain.

Services call ``send_on_commit`` with the groups that should hear about a change; the event is
sent only after the surrounding transaction commits, so nobody is told about a change that
rolled back. REST views, WebSocket consumers and Celery tasks all reach clients this way.

Group names: ``user.<id>`` covers every connection of one user; ``call.<id>`` every
participant connection of one call. Event names and payloads are listed in docs/realtime.md.
"""

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections, transaction

from core.channel_layers import group_send_many
from core.outages import started_within

logger = logging.getLogger(__name__)


def user_group(user_id: Any) -> str:
    return f"user.{user_id}"


def call_group(call_id: Any) -> str:
    return f"call.{call_id}"


# Set while a WebSocket consumer runs domain code in a worker thread: messages are collected
# there and sent by the consumer once the thread is done (see ``database_call``).
# Each entry is one event and the groups it goes to: one fan-out (core.channel_layers).
_collected: ContextVar[list[tuple[tuple[str, ...], dict]] | None] = ContextVar(
    "collected_channel_messages", default=None
)


def _send(groups: Iterable[str], message: dict[str, Any], what: str) -> None:
    groups = tuple(groups)
    collected = _collected.get()
    if collected is not None:
        collected.append((groups, message))
        return
    layer = get_channel_layer()
    if layer is None or not groups:
        return
    # A broken layer must not turn a committed change into a 500: ``deliver`` does not raise.
    async_to_sync(deliver)(layer, groups, message, what)


def send_now(groups: Iterable[str], event_type: str, data: dict[str, Any]) -> None:
    """Send an event to groups immediately. The channel layer is at-most-once: a failure is
    logged, never raised into the business transaction that already committed."""
    # One id for all groups: a connection in several of them (a user's group and a call's)
    # gets the event once.
    message = {"type": "domain.event", "event_id": uuid.uuid4().hex, "event": {"type": event_type, "data": data}}
    _send(groups, message, event_type)


# Set while a consumer opens a connection (realtime/consumers.py): its database work that waits
# longer than this for a thread is refused (core.outages ``started_within``), not run late.
database_wait_limit: ContextVar[float | None] = ContextVar("database_wait_limit", default=None)


async def database_call(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run domain code from a consumer: in a worker thread (``database_sync_to_async``), with
    the events it emits sent afterwards from the event loop.

    From a worker thread, ``async_to_sync(group_send)`` hands the send back to the event loop
    and blocks on it; while the server shuts down that loop never answers and the thread (and
    the process) hangs. Collecting the messages and awaiting the sends here avoids the hop.
    Inside ``collecting_events`` the messages join the outer collection instead, and are sent
    when it ends.
    """
    if connections["default"].vendor == "sqlite":
        run = database_sync_to_async(func)
    else:
        if (limit := database_wait_limit.get()) is not None:
            func = started_within(func, limit)
        run = database_sync_to_async(func, thread_sensitive=False, executor=_database_executor())
    if _collected.get() is not None:
        return await run(**kwargs)
    async with collecting_events():
        return await run(**kwargs)


@functools.cache
def _database_executor() -> ThreadPoolExecutor:
    """Channels' default runs all database work of a process in one thread: at a clinic's
    top of the hour, thousands of joins queue behind each other. On a server database the
    calls (short, independent transactions that mostly wait for the database) run in threads
    of their own, as many as the process's connection pool holds (config/settings/base.py);
    SQLite has one writer at a time anyway, so there they keep to Channels' one thread."""
    pool = connections.settings["default"].get("OPTIONS", {}).get("pool") or {}
    return ThreadPoolExecutor(max_workers=pool.get("max_size", 8), thread_name_prefix="database")


@contextlib.asynccontextmanager
async def collecting_events():
    """Hold back the channel messages emitted inside the block (by ``database_call``) and send
    them when it ends: a consumer replies to a request before the events the request caused."""
    collected: list[tuple[tuple[str, ...], dict]] = []
    token = _collected.set(collected)
    try:
        yield
    finally:
        _collected.reset(token)
        await send_collected(collected)


async def send_collected(collected: list[tuple[tuple[str, ...], dict]]) -> None:
    if not collected:  # most socket messages (signals, heartbeats) emit no event
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for groups, message in collected:
        if groups:
            await deliver(layer, groups, message, message.get("event", message)["type"])


# One group send may take this long, and a failed one is tried once more after the pause. A
# healthy send takes milliseconds; the failures seen under a surge were single Redis connects
# timing out (a full accept queue), which the retry rides out. The bound keeps a request's
# after-commit send, or a socket's next message, from waiting on a Redis that is down for longer
# than about two seconds (each send, not the OS's connect timeout).
DELIVERY_ATTEMPT_SECONDS = 1.0
DELIVERY_RETRY_PAUSE_SECONDS = 0.05

# A lost event's groups are told to re-sync (``connection.resync``) after each of these pauses
# until one notice goes through: their members on other processes, whose links to Redis may be
# fine, never saw the event. A loss under load is mostly a moment's congestion; seconds later the
# notice gets through. Sent from server processes, whose event loop outlives the request; a
# Celery task's loop ends with its send, and the notice with it.
RESYNC_NOTICE_PAUSES_SECONDS = (1.0, 2.0, 4.0)
_resync_notices: set[asyncio.Task] = set()  # held until done: the loop keeps only weak references

# ``async def hook(groups) -> int``: told of an event that could not be delivered to ``groups``;
# closes this process's connections in them for a re-sync and returns how many (realtime/consumers.py).
DELIVERY_LOST_HOOKS: list[Callable[[tuple[str, ...]], Awaitable[int]]] = []


async def deliver(layer, groups: tuple[str, ...], message: dict[str, Any], what: str) -> bool:
    """Send ``message`` to ``groups``, tried twice within bounded time; False if it was lost.

    A retry cannot deliver an event twice to a client: consumers drop a ``domain.event`` whose
    ``event_id`` they already forwarded. A lost event is never silent: one error line (the event
    type, the number of groups and the exception type; no group names, no payload: they may
    identify patients), and the connections of this process in those groups close with 4503, so
    their clients reconnect and re-sync (docs/realtime.md); those on other processes are told to
    do the same once Redis takes a message again (``RESYNC_NOTICE_PAUSES_SECONDS``)."""
    error: BaseException | None = None
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(DELIVERY_RETRY_PAUSE_SECONDS)
        try:
            await asyncio.wait_for(group_send_many(layer, groups, message), DELIVERY_ATTEMPT_SECONDS)
            return True
        except Exception as failure:  # TimeoutError included
            error = failure
    closed = 0
    for hook in DELIVERY_LOST_HOOKS:
        try:
            closed += await hook(groups)
        except Exception:
            logger.exception("Failed a delivery-lost hook")
    logger.error(
        "Could not deliver %s to %d group(s), retried: %s; closed %d connection(s) here for a re-sync",
        what,
        len(groups),
        type(error).__name__,
        closed,
    )
    notice = asyncio.get_running_loop().create_task(_send_resync_notice(layer, groups))
    _resync_notices.add(notice)
    notice.add_done_callback(_resync_notices.discard)
    return False


async def _send_resync_notice(layer, groups: tuple[str, ...]) -> None:
    """Tell every member of ``groups``, on any process, to close with 4503 and re-sync."""
    for pause in RESYNC_NOTICE_PAUSES_SECONDS:
        await asyncio.sleep(pause)
        try:
            await asyncio.wait_for(
                group_send_many(layer, groups, {"type": "connection.resync"}), DELIVERY_ATTEMPT_SECONDS
            )
            return
        except Exception:  # noqa: S112 - the next pause, then the log line below
            continue
    logger.error("Could not tell %d group(s) to re-sync after a lost event", len(groups))


def send_on_commit(groups: Iterable[str], event_type: str, data: dict[str, Any]) -> None:
    """Queue an event for the groups once the current transaction commits."""
    groups = list(groups)
    transaction.on_commit(lambda: send_now(groups, event_type, data))


def close_user_connections_on_commit(user_id: Any) -> None:
    """After commit, close every open WebSocket of the user (signed out everywhere, suspended)."""

    transaction.on_commit(lambda: _send([user_group(user_id)], {"type": "connection.revoke"}, "connection.revoke"))

"""Message types clients may send, and the handler each app registers for them.

A handler is ``async def handler(connection, data) -> dict | None``: ``connection`` is the
consumer (``connection.user``, ``connection.channel_name``), ``data`` the envelope's data,
already validated by the handler's serializer. It calls services (through
``core.events.database_call``, which also sends the events they emit) and returns what the ``ack`` carries, or None.

A handler may also have a ``direct`` form, for messages that can be finished without awaiting
anything (relayed signals, with the call's routes already known): ``direct(connection, data)``
gets the raw envelope data, validates it and returns ``(channel names, text)`` — the text to write
to those connections — or None when it cannot finish without the ordinary handler (the
database, another process). It raises ``ApplicationError`` like the ordinary handler does. The
consumer uses it when the server offers the direct path (realtime/direct.py).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

HandlerFunc = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any] | None]]
DisconnectHook = Callable[[Any], Awaitable[None]]
EventHook = Callable[[Any, dict[str, Any]], None]
LayerLostHook = Callable[[Any], None]
DirectFunc = Callable[[Any, dict[str, Any]], tuple[list[str], str] | None]


@dataclass(frozen=True)
class Handler:
    func: HandlerFunc
    serializer: type[serializers.Serializer] | None
    direct: DirectFunc | None = None


HANDLERS: dict[str, Handler] = {}
DISCONNECT_HOOKS: list[DisconnectHook] = []
EVENT_HOOKS: list[EventHook] = []
LAYER_LOST_HOOKS: list[LayerLostHook] = []


def handles(
    event_type: str,
    *,
    serializer: type[serializers.Serializer] | None = None,
    direct: DirectFunc | None = None,
):
    if serializer is not None and direct is not None:
        raise RuntimeError("A direct handler validates its own data: give it no serializer.")

    def register(func: HandlerFunc) -> HandlerFunc:
        if event_type in HANDLERS:
            raise RuntimeError(f"Two handlers for {event_type}")
        HANDLERS[event_type] = Handler(func=func, serializer=serializer, direct=direct)
        return func

    return register


def on_disconnect(func: DisconnectHook) -> DisconnectHook:
    """Run when an authenticated connection closes (after its groups are left)."""
    DISCONNECT_HOOKS.append(func)
    return func


def on_event(func: EventHook) -> EventHook:
    """Run (synchronously, so keep it cheap) for every domain event a connection forwards."""
    EVENT_HOOKS.append(func)
    return func


def on_layer_lost(func: LayerLostHook) -> LayerLostHook:
    """Run (synchronously) when a connection's channel layer fails, before the connection closes
    with 4503: events may have been lost on the way to this process, so what an app keeps about
    them (cached call routes) must not be trusted any more."""
    LAYER_LOST_HOOKS.append(func)
    return func

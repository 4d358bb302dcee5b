"""The production WebSocket server protocol: uvicorn's websockets-sansio protocol plus one ASGI
extension, ``telehealth.direct_text``, that lets signaling skip the ASGI receive queue.

Why: ASGI hands every received frame to the application through a queue and a task wake-up,
and the application answers through another coroutine hop. For a relayed offer, answer or ICE
batch that hop, not the relay, is most of the cost (docs/performance.md). With this protocol
the consumer registers a synchronous handler; a text frame that arrives while nothing from
the same client is queued is offered to it first, inside the server's read callback. The
handler either finishes the message there (validated, authorized, written to the peer's
socket) and returns True, or returns False and the frame goes through ASGI as usual. The
consumer decides which messages qualify (realtime/consumers.py ``receive_direct``); everything
else — joins, database work, errors it does not own — keeps the ordinary path.

Any other ASGI server (daphne, ``manage.py runserver``, Channels' test communicator) simply
does not offer the extension, and every message takes the ordinary path.

Serve with::

    uvicorn config.asgi:application --ws realtime.direct:DirectTextWebSocketProtocol --loop uvloop
"""

import logging
from collections.abc import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

logger = logging.getLogger(__name__)

DIRECT_TEXT = "telehealth.direct_text"


class DirectText:
    """What the server gives the application for one connection, as
    ``scope["extensions"]["telehealth.direct_text"]``.

    ``handler`` (set by the application): called with a received text frame; True means the
    application handled it. ``send_text`` writes a text frame now. ``writable`` is False while
    the client is not reading (its socket buffer is full) or the connection is closing: callers
    then take the ordinary, awaiting path, which waits for the client.
    """

    __slots__ = ("_protocol", "handler")

    def __init__(self, protocol: "DirectTextWebSocketProtocol") -> None:
        self._protocol = protocol
        self.handler: Callable[[str], bool] | None = None

    @property
    def writable(self) -> bool:
        protocol = self._protocol
        return protocol.writable.is_set() and protocol.conn.state is State.OPEN and not protocol.disconnected

    def send_text(self, text: str) -> None:
        """Write a text frame now; dropped if the connection is closing (as ASGI drops a send
        after the close)."""
        protocol = self._protocol
        if protocol.conn.state is not State.OPEN or protocol.disconnected:
            return
        protocol.conn.send_text(text.encode())
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))


class DirectTextWebSocketProtocol(WebSocketsSansIOProtocol):
    direct: DirectText | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake went on to the application
            self.direct = DirectText(self)
            scope["extensions"][DIRECT_TEXT] = self.direct

    def send_receive_event_to_app(self) -> None:
        # Only when nothing from this client waits in the queue: a message must not overtake
        # an earlier one. (The handler also refuses while the application is handling one.)
        handler = self.direct.handler if self.direct is not None else None
        if (
            handler is not None
            and self.curr_msg_data_type == "text"
            and len(self.frames) == 1
            and not self.close_sent
            and self.queue.empty()
        ):
            try:
                text = self.frames[0].decode()
            except UnicodeDecodeError:
                text = None  # the ordinary path closes with 1007
            if text is not None:
                try:
                    handled = handler(text)
                except Exception:
                    # The handler guards itself; this is the last line, and the message is not
                    # lost: the ordinary path handles it (and answers with an error event).
                    logger.exception("Direct text handler failed")
                    handled = False
                if handled:
                    self.frames = []
                    return
        super().send_receive_event_to_app()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.direct is not None:
            self.direct.handler = None
        super().connection_lost(exc)

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

The protocol also reads and writes the common frame itself — a whole, masked text frame from
the client, an unfragmented text frame to it — and leaves every other frame (control frames,
binary, fragments, anything malformed or oversized) to websockets. websockets' general frame
parser and writer cost about a sixth of the server's CPU per relayed signal; the common frame
needs a few lines of RFC 6455 section 5.2.

Any other ASGI server (daphne, ``manage.py runserver``, Channels' test communicator) simply
does not offer the extension, and every message takes the ordinary path.

The speed comes from private parts of uvicorn's and websockets' protocol classes, listed once
below (``REQUIRED_INTERNALS``). config/serve.py checks them before it serves, and this class
checks them again on its first connection; if any is gone, a warning names it and the server
takes uvicorn's stock protocol (or, here, behaves exactly like it). ``VERIFIED_VERSIONS`` are the
releases the fast path was read against; a test fails when the installed ones differ.

Serve with ``python -m config.serve`` (``REALTIME_DIRECT_PATH=false`` turns the direct path off),
or::

    uvicorn config.asgi:application --ws realtime.direct:DirectTextWebSocketProtocol --loop uvloop
"""

import ast
import asyncio
import inspect
import logging
import textwrap
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from websockets.http11 import Request
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension: the same function, in Python
    from websockets.utils import apply_mask

logger = logging.getLogger(__name__)

DIRECT_TEXT = "telehealth.direct_text"

# --- What the fast path relies on ------------------------------------------------------------

# The releases whose source REQUIRED_INTERNALS and the frame reader below were checked against.
# tests/realtime/test_direct_guard.py fails when the installed ones differ: re-verify, then update.
VERIFIED_VERSIONS = {"uvicorn": "0.54.0", "websockets": "17.4"}

# Everything this module uses of uvicorn's WebSocketsSansIOProtocol and websockets' ServerProtocol
# (its ``conn``) beyond their public API, as paths from a protocol instance; "()" marks a method.
# Methods of uvicorn's class are looked up on that class (this one overrides some of them);
# connection state on an instance, as uvicorn's __init__ leaves it.
REQUIRED_INTERNALS = (
    # uvicorn: the methods this class overrides and calls through super()
    "handle_connect()",
    "data_received()",
    "send_receive_event_to_app()",
    "connection_lost()",
    # uvicorn: connection state read or written here
    "transport",
    "queue.empty()",
    "frames",
    "curr_msg_data_type",
    "close_sent",
    "writable.is_set()",
    "disconnected",
    # websockets: the sans-I/O connection and its parser's state
    "conn.state",
    "conn.parser_exc",
    "conn.reader.buffer",
    "conn.extensions",
    "conn.max_message_size",
    "conn.current_size",
    "conn.send_text()",
    "conn.data_to_send()",
)
# Set by uvicorn's handle_connect once the handshake goes on to the application, so not on a new
# instance: read from that method's source.
REQUIRED_FROM_HANDSHAKE = ("scope",)

_ABSENT = object()
_SANSIO_PATH = "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol"

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError as error:  # uvicorn moved or dropped it; this module still imports for consumers.py
    _IMPORT_PROBLEM: str | None = f"{_SANSIO_PATH} ({error})"

    class WebSocketsSansIOProtocol(asyncio.Protocol):  # type: ignore[no-redef]
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError(f"The direct WebSocket path cannot run: no {_IMPORT_PROBLEM}.")

else:
    _IMPORT_PROBLEM = None


def installed_versions() -> dict[str, str]:
    installed = {}
    for name in VERIFIED_VERSIONS:
        try:
            installed[name] = version(name)
        except PackageNotFoundError:
            installed[name] = "not installed"
    return installed


def _probe_protocol() -> WebSocketsSansIOProtocol:
    """A stock protocol instance, never connected, built as uvicorn builds one."""
    from uvicorn import Config
    from uvicorn.server import ServerState

    async def refuse(scope, receive, send) -> None:  # never called
        raise RuntimeError("probe")

    config = Config(refuse, ws=WebSocketsSansIOProtocol, http="h11", lifespan="off", log_config=None)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        return WebSocketsSansIOProtocol(config, ServerState(), {}, _loop=loop)
    finally:
        loop.close()


def _assigned_on_self(function: Callable) -> set[str]:
    """The attributes ``function`` assigns on ``self``, read from its source."""
    names = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) and part.value.id == "self":
                    names.add(part.attr)
    return names


def _uvicorn_method(name: str):
    """uvicorn's own method, not this module's override of it nor asyncio.Protocol's no-op."""
    for cls in WebSocketsSansIOProtocol.__mro__:
        if cls.__module__.startswith("asyncio"):
            break
        if name in vars(cls):
            return vars(cls)[name]
    return _ABSENT


def missing_internals(protocol: WebSocketsSansIOProtocol | None = None) -> list[str]:
    """What of REQUIRED_INTERNALS the installed uvicorn and websockets lack, checked on
    ``protocol`` (a new stock instance if None); empty when the fast path can run."""
    if _IMPORT_PROBLEM is not None:
        return [_IMPORT_PROBLEM]
    if protocol is None:
        try:
            protocol = _probe_protocol()
        except Exception as error:
            return [f"WebSocketsSansIOProtocol() as uvicorn builds it ({type(error).__name__}: {error})"]
    missing = []
    for path in REQUIRED_INTERNALS:
        names = path.removesuffix("()").split(".")
        if path.endswith("()") and len(names) == 1:
            value = _uvicorn_method(names[0])
        else:
            value = protocol
            for name in names:
                value = getattr(value, name, _ABSENT)
        if value is _ABSENT or (path.endswith("()") and not callable(value)):
            missing.append(path)
    try:
        assigned = _assigned_on_self(WebSocketsSansIOProtocol.handle_connect)
    except (AttributeError, OSError, TypeError, SyntaxError) as error:
        missing.append(f"the source of WebSocketsSansIOProtocol.handle_connect ({type(error).__name__})")
    else:
        missing.extend(f"{name} (set by handle_connect)" for name in REQUIRED_FROM_HANDSHAKE if name not in assigned)
    return missing


def warn_direct_path_off(missing: list[str]) -> None:
    installed = ", ".join(f"{name} {release}" for name, release in installed_versions().items())
    verified = ", ".join(f"{name} {release}" for name, release in VERIFIED_VERSIONS.items())
    logger.warning(
        "The direct WebSocket path (realtime/direct.py) is off: the installed %s lack %s "
        "(it was verified against %s). Serving with uvicorn's stock WebSocket protocol instead.",
        installed,
        ", ".join(missing),
        verified,
    )


def fast_path_usable() -> bool:
    """Whether the installed uvicorn and websockets have all the fast path needs; if not, a
    warning says what is missing."""
    missing = missing_internals()
    if missing:
        warn_direct_path_off(missing)
    return not missing


# RFC 6455 section 5.2: FIN with the text opcode and no reserved bits; the mask bit.
_FINAL_TEXT = 0x81
_MASKED = 0x80


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame, as a server sends it."""
    size = len(payload)
    if size < 126:
        return bytes((_FINAL_TEXT, size)) + payload
    if size < 1 << 16:
        return bytes((_FINAL_TEXT, 126)) + size.to_bytes(2) + payload
    return bytes((_FINAL_TEXT, 127)) + size.to_bytes(8) + payload


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
        if protocol.conn.extensions:  # per-message compression was negotiated
            protocol.conn.send_text(text.encode())
            protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        else:
            protocol.transport.write(text_frame(text.encode()))


class DirectTextWebSocketProtocol(WebSocketsSansIOProtocol):
    # What the installed uvicorn and websockets lack of REQUIRED_INTERNALS, checked on the first
    # connection of the process (None until then). If anything, every connection is served
    # exactly as the stock protocol serves it.
    internals_missing: list[str] | None = None
    direct: DirectText | None = None
    # Who reads frames: None until the handshake is done (websockets), True while this class
    # reads the common frame itself, False once it has handed the connection back to websockets
    # for good (an oversized frame, a protocol error, the closing handshake) or from the start
    # (internals missing). The direct_text extension is offered only while it is None at the
    # handshake.
    reads_frames: bool | None = None
    # Bytes of a frame that has not fully arrived yet, and the size it needs to be whole.
    partial_frame: bytearray | None = None
    partial_needs = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cls = DirectTextWebSocketProtocol
        if cls.internals_missing is None:
            cls.internals_missing = missing_internals(self)
            if cls.internals_missing:
                warn_direct_path_off(cls.internals_missing)
        if cls.internals_missing:
            self.reads_frames = False  # websockets reads every frame, and no extension is offered

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self.reads_frames is None:  # the handshake went on to the application
            self.direct = DirectText(self)
            scope.setdefault("extensions", {})[DIRECT_TEXT] = self.direct

    def data_received(self, data: bytes) -> None:
        if not self.reads_frames:
            if self.reads_frames is False or not self._at_frame_boundary():
                super().data_received(data)
                return
            self.reads_frames = True
        if self.partial_frame is not None:
            self.partial_frame += data
            if len(self.partial_frame) < self.partial_needs:
                return
            data, self.partial_frame = bytes(self.partial_frame), None
        if self.conn.state is not State.OPEN:  # the server started the closing handshake
            self._hand_back(data)
            return
        self._read_frames(data)

    def _at_frame_boundary(self) -> bool:
        """websockets has finished the handshake and holds no unread bytes, so the next byte
        starts a frame; no extension changes what frames mean."""
        conn = self.conn
        return (
            conn.state is State.OPEN
            and conn.parser_exc is None
            and not conn.reader.buffer
            and not conn.extensions
            and conn.max_message_size is not None
        )

    def _read_frames(self, data: bytes) -> None:
        """Handle every whole frame in ``data``; keep a trailing partial one for later.

        websockets only ever gets whole frames from here, so after each it stands at a frame
        boundary again and its state (fragments, closing) stays its own to keep."""
        view = memoryview(data)
        end = len(data)
        start = 0
        needs = 0  # size of the trailing partial frame once whole, if its header is complete
        while end - start >= 2:
            first, second = data[start], data[start + 1]
            size = second & 0x7F
            header = 2
            if size >= 126:
                header = 4 if size == 126 else 10
                if end - start < header:
                    break
                size = int.from_bytes(view[start + 2 : start + header])
            if second & _MASKED:
                header += 4
            if size > self.conn.max_message_size:
                # websockets refuses it (1009) without waiting for the payload.
                self._hand_back(data[start:])
                return
            frame_end = start + header + size
            if frame_end > end:
                needs = header + size
                break
            if first == _FINAL_TEXT and second & _MASKED and self.conn.current_size is None:
                payload_start = frame_end - size
                self.curr_msg_data_type = "text"
                self.frames = [apply_mask(view[payload_start:frame_end], view[payload_start - 4 : payload_start])]
                self.send_receive_event_to_app()
            else:
                super().data_received(data[start:frame_end])
                if self.conn.state is not State.OPEN or self.conn.parser_exc is not None:
                    self._hand_back(data[frame_end:])
                    return
            start = frame_end
        if start < end:
            self.partial_frame = bytearray(view[start:])
            self.partial_needs = needs

    def _hand_back(self, rest: bytes) -> None:
        """From here on websockets reads everything, starting at a frame boundary."""
        self.reads_frames = False
        self.partial_frame = None
        if rest and self.conn.parser_exc is None:
            super().data_received(rest)

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

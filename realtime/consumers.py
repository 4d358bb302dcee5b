"""The realtime WebSocket consumer: one connection per tab or device, at ``/ws/``.

It authenticates with the access token offered as a subprotocol (realtime/bearer.py) or a
ticket (realtime/tickets.py), parses the envelope, applies the frame and rate limits, hands
each message to the handler its app registered (realtime/registry.py), and forwards the
domain's events (core/events.py) from the user's and calls' groups to the client.
"""

import asyncio
import contextlib
import functools
import logging
from collections import deque
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from core import metrics
from core.events import DELIVERY_LOST_HOOKS, collecting_events, database_call, database_wait_limit, user_group
from core.exceptions import ApplicationError, InvalidInput
from core.middleware import request_id_of_headers
from core.outages import outage_error, outage_of
from core.request_context import request_id_var
from presence.services import presence_connection_close, presence_connection_open
from realtime import protocol
from realtime.bearer import SUBPROTOCOL, BearerClaims, bearer_claims, bearer_offered
from realtime.direct import DIRECT_TEXT, DirectText
from realtime.logoff import NOT_ACTIVITY, LoggedOff, logoff_reason
from realtime.opening import opening_slot
from realtime.ratelimit import TokenBucket
from realtime.registry import DISCONNECT_HOOKS, EVENT_HOOKS, HANDLERS, LAYER_LOST_HOOKS
from realtime.tickets import ConnectionRateLimited, connection_user, ticket_redeem

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _logged(step: str):
    try:
        yield
    except Exception:
        logger.exception("Failed %s", step)


# The connections this process serves, by channel name: a signal for a peer on the same process
# is written to its socket directly instead of a round trip through the channel layer.
LOCAL_CONNECTIONS: dict[str, "RealtimeConsumer"] = {}

# The close code a connection that ended without a close frame reports (RFC 6455 section 7.4.1).
_CLOSED_ABNORMALLY = 1006
# "Try Again Later" (RFC 6455's registry): the connection could not be opened because the database
# or Redis is down or too busy; an error event SERVICE_UNAVAILABLE before it says when to retry.
CLOSE_TRY_AGAIN_LATER = 1013


def _connection_open(*, bearer: BearerClaims | None, ticket: str, channel_name: str):
    """Check the handshake's access token's user (or redeem its ticket) and open the connection's
    presence, in one trip to a database thread (a surge of handshakes queues for those threads):
    ``(user, presence)``, or ``(None, None)`` for a revoked token or a suspended user, or a ticket
    that is unknown, used, expired or revoked."""
    if bearer is not None:
        user = connection_user(user_id=bearer.user_id, generation=bearer.generation)
    else:
        user = ticket_redeem(ticket=ticket)
    if user is None:
        return None, None
    return user, presence_connection_open(user=user, channel_name=channel_name)


def _internal_error() -> ApplicationError:
    return ApplicationError("Something went wrong on our side.", code="INTERNAL_ERROR")


# Signals relayed by this process and not yet added to the metric: a Prometheus counter in
# multiprocess mode checks the process id on every ``inc`` (a system call), a twentieth of a
# busy relay's time, so the relays of one turn of the event loop are added once, after it.
_relayed_unreported = 0


def _count_relayed(count: int) -> None:
    global _relayed_unreported
    if not _relayed_unreported and count:
        asyncio.get_running_loop().call_soon(_report_relayed)
    _relayed_unreported += count


def _report_relayed() -> None:
    global _relayed_unreported
    metrics.signals_relayed.inc(_relayed_unreported)
    _relayed_unreported = 0


class RealtimeConsumer(AsyncWebsocketConsumer):
    user = None
    user_id: str | None = None  # str(user.pk), kept: handlers need it for every message
    # The server's direct path for this connection (realtime/direct.py), if it offers one.
    direct: DirectText | None = None
    # True while a message from the client is being handled through ASGI: the direct path
    # waits until it is done, so messages are handled in the order they were sent.
    handling = False
    # True once the socket is closing: later sends are dropped, later messages ignored.
    closed = False
    # True once the disconnect clean-up has run (it runs once, whichever way the connection ends).
    cleaned_up = False
    # True once the handshake is accepted: a refusal after it must not accept again.
    accepted = False
    # True while this connection counts in the open-connections gauge (core/metrics.py).
    counted = False
    # Named on every log line of the connection and on the tasks its messages start: the
    # handshake's X-Request-ID when well-formed, else a new one.
    request_id = "-"
    # Checks the idle and absolute limits while the connection is open (realtime/logoff.py).
    logoff_watch: asyncio.Task | None = None
    # True while a message from the channel layer is being sent to the client through ASGI: the
    # layer's next message then waits its turn in the queue (``receive_relayed``).
    forwarding = False
    # The layer's send that queues without waiting (core/channel_layers.py), where it has one: the
    # direct path hands signals for other processes to it.
    send_nowait = None

    async def __call__(self, scope: dict, receive, send) -> None:
        """Channels' own loop races the client and the channel layer for every message, with a
        new task and an ``asyncio.wait`` each time — about half the CPU of a busy relay
        (docs/performance.md). Here each source has a loop of its own; handlers of the two
        may interleave at ``await`` points, which nothing here depends on."""
        self.scope = scope
        self.request_id = request_id_of_headers(
            dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin1")
        )
        request_id_var.set(self.request_id)  # this connection's task, and the tasks it starts
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.send_nowait = getattr(self.channel_layer, "send_nowait", None)
        self.ready = asyncio.Event()  # set once connection.ready is sent
        self.server_send = send
        self.base_send = self._send_to_server
        layer_pump = asyncio.create_task(self._pump_layer())
        try:
            await self._pump_client(receive)
        finally:
            # Every way out — the client's close, a send that failed, a handler's bug, the
            # server cancelling the task — runs the clean-up, once (disconnect() is idempotent),
            # shielded so that a second cancellation cannot cut it short.
            LOCAL_CONNECTIONS.pop(self.channel_name, None)
            layer_pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await layer_pump
            with _logged("cleaning up a connection"):
                await asyncio.shield(self.disconnect(_CLOSED_ABNORMALLY))

    async def _pump_client(self, receive) -> None:
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            return

    async def _pump_layer(self) -> None:
        """Forward what the channel layer brings, once ``connection.ready`` is sent: an event for
        the user's group (a care partner's ``presence.updated``) may arrive while the connection
        is still opening, and must not reach the client before it. If the layer itself fails
        (Redis down), close so the client reconnects and re-syncs; if the client is gone, stop
        quietly."""
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except Exception as error:
                logger.error("Channel layer receive failed: %s", type(error).__name__)
                await self.close_for_resync()
                return
            if not self.ready.is_set():
                await self.ready.wait()
            self.forwarding = True
            try:
                await self.dispatch(message)
            except StopConsumer:
                return
            except OSError:  # the client disconnected while we wrote to it
                return
            finally:
                self.forwarding = False

    async def _send_to_server(self, message: dict) -> None:
        """Every message to the client goes through here. Once the socket is closing (this side
        sent ``websocket.close``, or the client is gone) nothing more is sent: ASGI servers
        refuse a send after the close, and a message from the client queued before the close
        must not end the connection before its clean-up."""
        if self.closed:
            return
        if message["type"] == "websocket.close":
            self.closed = True
        try:
            await self.server_send(message)
        except (OSError, RuntimeError) as error:  # uvicorn's ClientDisconnected is an OSError
            if message["type"] not in ("websocket.send", "websocket.close"):
                raise
            self.closed = True
            logger.debug("Dropped a message to a closed socket: %s", type(error).__name__)

    async def deliver(self, channel_name: str, text: str) -> None:
        """Send pre-encoded text to another connection: directly if it is on this process,
        through the channel layer otherwise."""
        peer = LOCAL_CONNECTIONS.get(channel_name)
        _count_relayed(1)
        if peer is not None:
            await peer.send(text_data=text)
        else:
            await self.channel_layer.send(channel_name, {"type": "client.text", "text": text})

    async def dispatch(self, message: dict) -> None:
        """Channels runs ``close_old_connections`` in its one shared sync thread before every
        message; most of ours (signaling, forwarded events) never touch the database, and the
        ones that do go through ``database_call`` (``database_sync_to_async``), which closes stale
        connections in the thread that uses them. Skipping it here keeps relays off that
        thread (docs/performance.md)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Connection lifecycle ---------------------------------------------------------------

    async def websocket_connect(self, message: dict) -> None:
        """Open the connection (``connect``), refusing it fast when a dependency is down or too
        busy: its database work may wait for a thread no longer than the pool's timeout, and an
        outage (core/outages.py) is answered with an ``error`` event ``SERVICE_UNAVAILABLE``
        (``details.retry_after``) and close 1013, never the HTTP 500 of an unhandled handshake.
        The handshake is accepted first, as for 4401, so that browsers can read the code. What
        ``connect`` did before the failure is undone by the disconnect clean-up."""
        pool = connections.settings["default"].get("OPTIONS", {}).get("pool") or {}
        token = database_wait_limit.set(pool.get("timeout"))
        try:
            async with opening_slot():
                await super().websocket_connect(message)
        except Exception as error:
            dependency = outage_of(error)
            if dependency is None:
                raise
            if not self.accepted:
                await self.accept()
            await self.send_error(outage_error(dependency), None)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
        finally:
            database_wait_limit.reset(token)

    async def accept(self, subprotocol: str | None = None, headers: list | None = None) -> None:
        """Accept, answering ``telehealth.v1`` when the client offered it (realtime/bearer.py):
        a browser that offered subprotocols fails a handshake that names none of them."""
        if subprotocol is None and SUBPROTOCOL in (self.scope.get("subprotocols") or ()):
            subprotocol = SUBPROTOCOL
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def close_for_resync(self) -> None:
        """Events for this connection may have been lost (its channel layer failed, or a send to
        one of its groups did): forget what was cached from them and close with 4503, so the
        client reconnects and re-syncs."""
        for hook in LAYER_LOST_HOOKS:
            with _logged(f"layer-lost hook {getattr(hook, '__name__', hook)}"):
                hook(self)
        await self.close(code=protocol.CLOSE_LAYER_UNAVAILABLE)

    async def connect(self) -> None:
        token = bearer_offered(self.scope.get("subprotocols") or ())
        bearer = None
        if token is not None:  # the access token wins over a ticket in the URL
            bearer = bearer_claims(token)
            if bearer is None:  # refused before it waits for a database thread
                await self.accept()
                await self.close(code=protocol.CLOSE_AUTH_FAILED)
                return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        ticket = (query.get("ticket") or [""])[0]
        try:
            self.user, presence = await database_call(
                _connection_open, bearer=bearer, ticket=ticket, channel_name=self.channel_name
            )
        except ConnectionRateLimited as refusal:  # accepted, so the client reads when to retry
            await self.accept()
            await self.send_error(refusal, None)
            await self.close(code=protocol.CLOSE_RATE_LIMITED)
            return
        await self.accept()
        if self.user is None:
            await self.close(code=protocol.CLOSE_AUTH_FAILED)
            return
        self.user_id = str(self.user.pk)
        self.opened_at = self.last_activity_at = timezone.now()
        self.max_frame_bytes = settings.REALTIME_MAX_FRAME_BYTES
        self.groups_joined: set[str] = set()
        self.calls: set[str] = set()  # calls joined over this connection
        self.recent_event_ids: deque[str] = deque(maxlen=256)
        self.bucket = TokenBucket(settings.REALTIME_RATE_PER_SECOND, settings.REALTIME_RATE_BURST)
        # Joined after the presence change is announced: this connection learns its status from
        # connection.ready; the user's other connections from presence.updated.
        await self.group_join(user_group(self.user.pk))
        LOCAL_CONNECTIONS[self.channel_name] = self
        metrics.websocket_connections.inc()
        self.counted = True
        await self.send_event(
            "connection.ready",
            {
                "user_id": self.user_id,
                "heartbeat_seconds": settings.PRESENCE_HEARTBEAT_SECONDS,
                "presence": {"status": presence.status},
            },
        )
        self.ready.set()  # the layer's messages may follow now
        self.direct = self.scope.get("extensions", {}).get(DIRECT_TEXT)
        if self.direct is not None:
            self.direct.handler = self.receive_direct
            set_receiver = getattr(self.channel_layer, "set_receiver", None)
            if set_receiver is not None:
                set_receiver(self.channel_name, self.receive_relayed)
        self.logoff_watch = asyncio.create_task(self._watch_logoff())

    async def disconnect(self, code: int) -> None:
        """Runs once per connection, on ``websocket.disconnect`` or, if the connection ended any
        other way, from ``__call__``. Each step is guarded on its own: a channel layer that fails
        to drop a group must not keep the connection counted as present or its calls from being
        left."""
        if self.cleaned_up:
            return
        self.cleaned_up = True
        self.closed = True
        if self.logoff_watch is not None:
            self.logoff_watch.cancel()
        LOCAL_CONNECTIONS.pop(self.channel_name, None)
        if self.counted:
            self.counted = False
            metrics.websocket_connections.dec()
        if self.direct is not None:
            self.direct.handler = None
        if self.user is None:
            return
        for group in list(getattr(self, "groups_joined", ())):
            with _logged("leaving a group"):
                await self.channel_layer.group_discard(group, self.channel_name)
        with _logged("closing the presence connection"):
            await database_call(
                presence_connection_close,
                user=self.user,
                channel_name=self.channel_name,
                call_ids=set(getattr(self, "calls", ())),
            )
        for hook in DISCONNECT_HOOKS:
            with _logged(f"disconnect hook {getattr(hook, '__name__', hook)}"):
                await hook(self)

    async def group_join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def group_leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined.discard(group)

    async def _watch_logoff(self) -> None:
        while not self.closed:
            await asyncio.sleep(settings.REALTIME_LOGOFF_CHECK_SECONDS)
            with _logged("checking the logoff limits"):
                if await self.log_off_if_due():
                    return

    async def log_off_if_due(self) -> bool:
        """Automatic logoff (realtime/logoff.py): past the idle or absolute limit, tell the
        client why (``LOGGED_OFF``, ``details.reason``) and close with 4401."""
        reason = logoff_reason(
            opened_at=self.opened_at,
            last_activity_at=self.last_activity_at,
            in_call=bool(self.calls),
            now=timezone.now(),
        )
        if reason is None or self.closed:
            return False
        await self.send_error(LoggedOff(details={"reason": reason}), None)
        await self.close(code=protocol.CLOSE_LOGGED_OFF)
        return True

    # --- From the client --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None or self.closed:  # messages that arrived before the close are dropped
            return
        self.handling = True
        try:
            await self._receive(text_data, bytes_data)
        finally:
            self.handling = False

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > self.max_frame_bytes:
            await self.close(code=protocol.CLOSE_MESSAGE_TOO_BIG)
            return
        if text_data is None:
            await self.send_error(protocol.MalformedMessage("Binary frames are not accepted."), None)
            return
        if not self.bucket.take():
            await self.send_error(protocol.RateLimited(), protocol.request_id_of(text_data))
            return
        try:
            envelope = protocol.parse_envelope(text_data)
        except protocol.ProtocolError as error:
            await self.send_error(error, protocol.request_id_of(text_data))
            return
        if await self.log_off_if_due():  # a message after the limit does not reset it
            return
        if envelope.type not in NOT_ACTIVITY:
            self.last_activity_at = timezone.now()
        await self.handle(envelope)

    async def handle(self, envelope: protocol.Envelope) -> None:
        """Run the message's handler and reply; events the handler caused follow the reply."""
        async with collecting_events():
            await self._handle(envelope)

    async def _handle(self, envelope: protocol.Envelope) -> None:
        handler = HANDLERS.get(envelope.type)
        if handler is None:
            await self.send_error(protocol.UnknownEventType(details={"type": envelope.type}), envelope.id)
            return
        try:
            data = envelope.data
            if handler.serializer is not None:
                serializer = handler.serializer(data=data)
                try:
                    serializer.is_valid(raise_exception=True)
                except ValidationError as invalid:
                    raise InvalidInput(details=invalid.get_full_details()) from None
                data = serializer.validated_data
            result = await handler.func(self, data)
        except ApplicationError as error:
            await self.send_error(error, envelope.id)
            return
        except Exception as error:
            if (dependency := outage_of(error)) is not None:  # too busy is not a bug: retry later
                await self.send_error(outage_error(dependency), envelope.id)
                return
            logger.exception("Unhandled error in realtime handler for %s", envelope.type)
            await self.send_error(_internal_error(), envelope.id)
            return
        if result is not None or envelope.id is not None:
            await self.send(text_data=protocol.encode_ack(envelope.type, result, envelope.id))

    def receive_direct(self, text: str) -> bool:
        """Runs in the server's read callback, outside this connection's task: its log lines
        get the connection's request id here."""
        token = request_id_var.set(self.request_id)
        try:
            return self._receive_direct(text)
        finally:
            request_id_var.reset(token)

    def _receive_direct(self, text: str) -> bool:
        """A text frame offered by the server before it queues it for ASGI (realtime/direct.py).

        Handles it here, synchronously, when its type has a direct handler that can finish it
        (a signal whose call routes are cached, every addressee on this process and reading),
        and nothing from this client is being handled yet; returns False to leave it to the
        ordinary path otherwise. The outcome is the same on both paths: the same checks, rate
        limit, ``ack`` and ``error`` replies.
        """
        # Four bytes per character at most: under this, the frame is within the size limit.
        if self.handling or len(text) * 4 > self.max_frame_bytes:
            return False
        try:
            envelope = protocol.parse_envelope(text)
        except protocol.ProtocolError:
            return False
        handler = HANDLERS.get(envelope.type)
        if handler is None or handler.direct is None:
            return False
        self.last_activity_at = timezone.now()  # signaling: only ever in a call, never idle
        outcome: ApplicationError | list[DirectText]
        try:
            relay = handler.direct(self, envelope.data)
            if relay is None:
                return False
            channels, relayed = relay
            outcome, remote = [], []
            for channel in channels:
                peer = LOCAL_CONNECTIONS.get(channel)
                if peer is None and self.send_nowait is not None:
                    remote.append(channel)  # on another process: handed to the layer's relay
                    continue
                if peer is None or peer.direct is None or not peer.direct.writable:
                    return False  # not reading, or no relay to queue on: the layer, awaited
                outcome.append(peer.direct)
        except ApplicationError as error:
            outcome = error
        except Exception:
            logger.exception("Unhandled error in direct realtime handler for %s", envelope.type)
            outcome = _internal_error()
        if not self.bucket.take():
            outcome = protocol.RateLimited()
        if isinstance(outcome, ApplicationError):
            self.direct.send_text(protocol.encode_error(outcome, envelope.id))
            return True
        for peer in outcome:
            peer.send_text(relayed)
        _count_relayed(len(outcome) + len(remote))
        sent = None
        for channel in remote:
            sent = self.send_nowait(channel, {"type": "client.text", "text": relayed}) or sent
        if sent is not None:  # the ack, or the error, once Redis has taken it (as the layer, awaited)
            sent.add_done_callback(functools.partial(self._reply_when_relayed, envelope))
        elif envelope.id is not None:
            self.direct.send_text(protocol.encode_ack(envelope.type, None, envelope.id))
        return True

    def _reply_when_relayed(self, envelope: protocol.Envelope, sent: asyncio.Future) -> None:
        """The reply to a signal handed to the layer on the direct path: what the ordinary path
        answers once its awaited send returns or fails."""
        if self.closed:
            return
        error = asyncio.CancelledError() if sent.cancelled() else sent.exception()
        if error is not None:
            dependency = outage_of(error)
            if dependency is None:
                logger.error("Could not relay a signal: %s", type(error).__name__)
            reply = outage_error(dependency) if dependency is not None else _internal_error()
            self.direct.send_text(protocol.encode_error(reply, envelope.id))
        elif envelope.id is not None:
            self.direct.send_text(protocol.encode_ack(envelope.type, None, envelope.id))

    def receive_relayed(self, message: dict) -> bool:
        """A message from another process, offered by the layer as it arrives (core/channel_layers.py
        ``set_receiver``): a relayed signal is written to the socket at once when nothing from
        the layer is being sent already and the client is reading; anything else waits its turn
        in the layer's queue."""
        if message.get("type") != "client.text":
            return False
        if self.closed:
            return True  # dropped, as a send after the close is
        if self.forwarding or self.direct is None or not self.direct.writable:
            return False
        self.direct.send_text(message["text"])
        return True

    # --- To the client ----------------------------------------------------------------------

    async def send_event(self, event_type: str, data: dict, request_id: str | None = None) -> None:
        await self.send(text_data=protocol.encode(event_type, data, request_id))

    async def send_error(self, error: ApplicationError, request_id: str | None) -> None:
        await self.send(text_data=protocol.encode_error(error, request_id))

    async def domain_event(self, message: dict) -> None:
        """An event from core.events, sent to a group this connection is in. Event hooks see it
        first (the call app drops what it cached about the call, so membership changes apply
        to the very next signal)."""
        event_id = message.get("event_id")
        if event_id is not None:
            if event_id in self.recent_event_ids:
                return
            self.recent_event_ids.append(event_id)
        event = message["event"]
        for hook in EVENT_HOOKS:
            hook(self, event)
        await self.send(text_data=protocol.encode(event["type"], event["data"]))

    async def client_text(self, message: dict) -> None:
        """Pre-encoded text for the client (a relayed signal), sent as is."""
        await self.send(text_data=message["text"])

    async def connection_revoke(self, message: dict) -> None:
        """The user signed out everywhere or was suspended: this connection ends too."""
        await self.close(code=protocol.CLOSE_REVOKED)

    async def connection_resync(self, message: dict) -> None:
        """An event for one of this connection's groups was lost on another process (core.events
        ``deliver``): close with 4503 so the client re-syncs."""
        await self.close_for_resync()


async def resync_group_members(groups: tuple[str, ...]) -> int:
    """An event for ``groups`` was lost (core.events ``deliver``): this process's connections in
    any of them close with 4503 and re-sync. Returns how many."""
    wanted = set(groups)
    members = [c for c in list(LOCAL_CONNECTIONS.values()) if wanted & getattr(c, "groups_joined", set())]
    for member in members:
        await member.close_for_resync()
    return len(members)


DELIVERY_LOST_HOOKS.append(resync_group_members)

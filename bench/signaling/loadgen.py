"""The load generator of ``make bench-signaling``: P pairs of WebSocket clients doing
offer/answer round trips through a relay, split over several processes.

A round trip is client A → server → client B → server → client A, each leg a ~1 KB JSON message
(the size of an SDP offer): A sends an offer addressed to B, B answers as soon as the offer
arrives, and A sends its next offer as soon as the answer arrives (closed loop, one round trip
in flight per pair). Every relayed message received is counted, so messages/s is twice the
round trips/s.

It speaks three dialects with the same client library and the same frames on the wire (no
compression, no client pings):

- ``raw``: the reference ``websockets`` relay (``?user=<id>``, frames ``{"to": id, ...}``);
- ``socketio``: Engine.IO 4 / Socket.IO 5 over a plain WebSocket (``42["signal",{...}]``),
  answering the server's pings, so no socket.io client library sits in the measurement;
- ``channels``: our server — the access token offered as a subprotocol in the handshake,
  ``connection.ready``, ``call.join`` answered by ``ack``, then ``signal.offer`` / ``signal.answer``;
  ``channels-ticket`` the same with a ticket from ``POST /api/v1/realtime/tickets/`` per connection.

The load generator must not be the bottleneck, so the pairs are split over ``--procs``
processes (both clients of a pair live in the same process). Each process reports its CPU time
over the measured window; the harness prints it next to the server's.

A connection refused as "too busy" (a 503 with ``Retry-After``, close 1013, ...) is opened again
the way docs/realtime.md tells clients to, at most ``CONNECT_ATTEMPTS`` times within the connect
deadline, and the retries are reported: the relay is measured over every pair, and a set-up
refusal still shows.

Every loop is bounded: connecting has a deadline, the run ends at a fixed instant, a round trip
waits at most ``round_trip_timeout`` seconds, and draining and closing have their own deadlines.
Targets are loopback addresses only.

Standalone use against a relay that is already running (the harness in run.py starts them)::

    python bench/signaling/loadgen.py --kind raw --url ws://127.0.0.1:8765/ --pairs 50 --duration 5
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ORIGIN = "http://localhost:8000"
# What our server's clients offer to open the socket with their access token: realtime/bearer.py's
# ``bearer_subprotocols``, restated because the load generator does not load the project's code.
SUBPROTOCOL, BEARER_PREFIX = "telehealth.v1", "bearer."


def bearer_subprotocols(token: str) -> list[str]:
    return [SUBPROTOCOL, BEARER_PREFIX + token]


# Payloads checked in full (parsed, every field compared) at the start of each connection;
# after that a prefix check identifies the message, so the client stays lean.
VALIDATED_PER_CONNECTION = 5


def sdp_payload(size: int = 900) -> str:
    """An SDP-looking string of ``size`` characters (a real offer for one audio and one video
    track is about 1-4 KB; the issue's workload uses ~1 KB messages)."""
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 103 104 9 0 8 106 105 13 110 112 113 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Fw3x",
        "a=ice-pwd:7TfhZtnRqJ2Zk3Wg8s1pN0aB",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
    ]
    text = "\r\n".join(lines) + "\r\n"
    while len(text) < size:
        text += "a=ssrc:1001 cname:bench\r\n"
    return text[:size]


# --- Dialects ---------------------------------------------------------------------------------


@dataclass
class PairSpec:
    """Who the two clients are. For ``channels`` the ids are user UUIDs with access tokens and
    the call both joined; for the references, made-up ids."""

    a_id: str
    b_id: str
    call_id: str = ""
    a_token: str = ""
    b_token: str = ""
    # Where each client connects, if not the run's base URL: our server can run as several
    # processes, and A and B on different ones send every signal through the channel layer.
    a_url: str = ""
    b_url: str = ""


class Dialect:
    """How a target frames an offer and an answer, and how a client opens a connection."""

    name = ""

    def __init__(self, base_url: str, sdp: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.sdp = sdp

    def offer(self, pair: PairSpec) -> str:
        raise NotImplementedError

    def answer(self, pair: PairSpec) -> str:
        raise NotImplementedError

    def is_offer(self, text: str) -> bool:
        raise NotImplementedError

    def is_answer(self, text: str) -> bool:
        raise NotImplementedError

    def check_offer(self, text: str, pair: PairSpec) -> bool:
        raise NotImplementedError

    def check_answer(self, text: str, pair: PairSpec) -> bool:
        raise NotImplementedError

    def control_reply(self, text: str) -> str | None:
        """A frame the client must answer outside the workload (socket.io's ping)."""
        return None

    def error_code(self, text: str) -> str | None:
        """The code of an error frame, or None if the frame is not an error."""
        return None

    async def open(self, user_id: str, token: str, call_id: str, deadline: float, url: str) -> ClientConnection:
        raise NotImplementedError


def _ws_connect(url: str, deadline: float, subprotocols: list[str] | None = None) -> connect:
    return connect(
        url,
        subprotocols=subprotocols,
        origin=Origin(ORIGIN),
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=max(1.0, deadline - time.monotonic()),
        close_timeout=5,
        max_size=1 << 20,
        max_queue=64,
    )


class RawDialect(Dialect):
    name = "raw"

    def offer(self, pair: PairSpec) -> str:
        return json.dumps({"to": pair.b_id, "from": pair.a_id, "type": "offer", "sdp": self.sdp}, separators=(",", ":"))

    def answer(self, pair: PairSpec) -> str:
        return json.dumps(
            {"to": pair.a_id, "from": pair.b_id, "type": "answer", "sdp": self.sdp}, separators=(",", ":")
        )

    def is_offer(self, text: str) -> bool:
        return '"type":"offer"' in text[:160]

    def is_answer(self, text: str) -> bool:
        return '"type":"answer"' in text[:160]

    def _check(self, text: str, kind: str, to: str, sender: str) -> bool:
        message = json.loads(text)
        return message == {"to": to, "from": sender, "type": kind, "sdp": self.sdp}

    def check_offer(self, text: str, pair: PairSpec) -> bool:
        return self._check(text, "offer", pair.b_id, pair.a_id)

    def check_answer(self, text: str, pair: PairSpec) -> bool:
        return self._check(text, "answer", pair.a_id, pair.b_id)

    async def open(self, user_id: str, token: str, call_id: str, deadline: float, url: str) -> ClientConnection:
        return await _ws_connect(f"{url}/?user={user_id}", deadline)


class SocketIODialect(RawDialect):
    """Engine.IO 4 packets: ``0`` open, ``2``/``3`` ping/pong, ``4`` message; Socket.IO 5 inside
    a message: ``0`` connect, ``2`` event. So an event is the text ``42["signal",{...}]``."""

    name = "socketio"
    PREFIX = '42["signal",'

    def offer(self, pair: PairSpec) -> str:
        return f"{self.PREFIX}{super().offer(pair)}]"

    def answer(self, pair: PairSpec) -> str:
        return f"{self.PREFIX}{super().answer(pair)}]"

    def _check(self, text: str, kind: str, to: str, sender: str) -> bool:
        if not text.startswith(self.PREFIX):
            return False
        name, message = json.loads(text[2:])
        return name == "signal" and message == {"to": to, "from": sender, "type": kind, "sdp": self.sdp}

    def control_reply(self, text: str) -> str | None:
        return "3" if text == "2" else None

    async def open(self, user_id: str, token: str, call_id: str, deadline: float, url: str) -> ClientConnection:
        connection = await _ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket&user={user_id}", deadline)
        opened = await asyncio.wait_for(connection.recv(), max(0.1, deadline - time.monotonic()))
        if not opened.startswith("0{"):
            raise ConnectError("socketio-open", opened[:80])
        await connection.send("40")
        connected = await asyncio.wait_for(connection.recv(), max(0.1, deadline - time.monotonic()))
        if not connected.startswith("40"):
            raise ConnectError("socketio-connect", connected[:80])
        return connection


class ChannelsDialect(Dialect):
    """Our server's protocol (docs/realtime.md), the socket opened with the access token offered
    as a subprotocol."""

    name = "channels"
    # How the socket is opened: "token" (the access token in the handshake) or "ticket".
    credential = "token"

    def offer(self, pair: PairSpec) -> str:
        data = {"call_id": pair.call_id, "to": pair.b_id, "sdp": self.sdp}
        return json.dumps({"type": "signal.offer", "data": data}, separators=(",", ":"))

    def answer(self, pair: PairSpec) -> str:
        data = {"call_id": pair.call_id, "to": pair.a_id, "sdp": self.sdp}
        return json.dumps({"type": "signal.answer", "data": data}, separators=(",", ":"))

    def is_offer(self, text: str) -> bool:
        return text.startswith('{"type":"signal.offer"')

    def is_answer(self, text: str) -> bool:
        return text.startswith('{"type":"signal.answer"')

    def _check(self, text: str, kind: str, sender: str, call_id: str) -> bool:
        message = json.loads(text)
        data = message.get("data") or {}
        return (
            message.get("type") == kind
            and data.get("from") == sender
            and data.get("call_id") == call_id
            and data.get("sdp") == self.sdp
        )

    def check_offer(self, text: str, pair: PairSpec) -> bool:
        return self._check(text, "signal.offer", pair.a_id, pair.call_id)

    def check_answer(self, text: str, pair: PairSpec) -> bool:
        return self._check(text, "signal.answer", pair.b_id, pair.call_id)

    def error_code(self, text: str) -> str | None:
        if not text.startswith('{"type":"error"'):
            return None
        try:
            return str(json.loads(text)["data"]["code"])
        except (ValueError, KeyError, TypeError):
            return "UNPARSEABLE_ERROR"

    async def ticket(self, token: str, deadline: float, url: str) -> str:
        """``POST /api/v1/realtime/tickets/`` with the access token; a plain HTTP/1.1 request so
        the load generator needs no HTTP client library."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), max(0.1, deadline - time.monotonic())
        )
        try:
            writer.write(
                (
                    "POST /api/v1/realtime/tickets/ HTTP/1.1\r\n"
                    f"Host: {host}:{port}\r\n"
                    f"Authorization: Bearer {token}\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: 0\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), max(0.1, deadline - time.monotonic()))
        finally:
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin1").split("\r\n")
        status = [*status_line.split(" "), ""][1]
        if status != "201":
            headers = dict(line.lower().split(": ", 1) for line in header_lines if ": " in line)
            raise ConnectError(
                "ticket",
                f"{status_line} {body[:200].decode('utf-8', 'replace')}",
                code=status or "no status",
                retry_after=_seconds(headers.get("retry-after")),
            )
        if b"transfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return json.loads(body)["ticket"]

    async def open(self, user_id: str, token: str, call_id: str, deadline: float, url: str) -> ClientConnection:
        if self.credential == "ticket":
            try:
                ticket = await self.ticket(token, deadline, url)
            except (OSError, TimeoutError) as error:
                raise _network("ticket", error) from None
            path, subprotocols = f"/ws/?ticket={ticket}", None
        else:
            path, subprotocols = "/ws/", bearer_subprotocols(token)
        try:
            connection = await _ws_connect(url + path, deadline, subprotocols)
        except InvalidStatus as error:
            status = error.response.status_code
            retry_after = _seconds(error.response.headers.get("Retry-After"))
            raise ConnectError("handshake", f"HTTP {status}", code=str(status), retry_after=retry_after) from None
        except (OSError, TimeoutError) as error:
            raise _network("handshake", error) from None
        stage = "handshake"
        try:
            ready = json.loads(await asyncio.wait_for(connection.recv(), max(0.1, deadline - time.monotonic())))
            if ready.get("type") == "error":
                # Refused after the upgrade (docs/realtime.md): an error event, then the close.
                await _closed(connection, deadline)
                raise _refusal("handshake", ready, connection)
            if ready.get("type") != "connection.ready":
                raise ConnectError("ready", str(ready)[:200])
            stage = "join"
            await connection.send(json.dumps({"type": "call.join", "id": "j", "data": {"call_id": call_id}}))
            while True:  # other events (presence, participant joined) may come before the ack
                reply = json.loads(await asyncio.wait_for(connection.recv(), max(0.1, deadline - time.monotonic())))
                if reply.get("id") == "j":
                    break
        except ConnectionClosed as closed:
            code = _close_code(closed)
            raise ConnectError(stage, code, code=code) from None
        except BaseException as error:
            await connection.close()
            if isinstance(error, OSError | TimeoutError):
                raise _network(stage, error) from None
            raise
        if reply.get("type") != "ack":
            await connection.close()
            raise _refusal("join", reply, None)
        return connection


def _network(stage: str, error: BaseException) -> "ConnectError":
    """A timeout or a refused or reset connection, named by the stage it happened in."""
    name = type(error).__name__
    return ConnectError(stage, f"{name}: {error}"[:200], code=name)


def _seconds(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _close_code(closed: ConnectionClosed) -> str:
    return f"close {closed.rcvd.code if closed.rcvd else 1006}"


async def _closed(connection: ClientConnection, deadline: float) -> None:
    """Wait (bounded) for the close that follows a refusal, so its code can be reported."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        await asyncio.wait_for(connection.recv(), max(0.1, min(2.0, deadline - time.monotonic())))


def _refusal(stage: str, reply: dict, connection: ClientConnection | None) -> "ConnectError":
    """The ConnectError for an error event: its code, with the close code that followed it if
    the server closed the socket, and its ``details.retry_after``."""
    data = reply.get("data") or {}
    code = str(data.get("code") or reply.get("type"))
    if connection is not None and connection.close_code is not None:
        code = f"close {connection.close_code} {code}"
    return ConnectError(
        stage, json.dumps(data)[:200], code=code, retry_after=_seconds((data.get("details") or {}).get("retry_after"))
    )


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


class ChannelsTicketDialect(ChannelsDialect):
    """Our server's protocol, each socket opened with a ticket from ``POST realtime/tickets/``."""

    name = "channels-ticket"
    credential = "ticket"


DIALECTS: dict[str, type[Dialect]] = {
    "raw": RawDialect,
    "socketio": SocketIODialect,
    "channels": ChannelsDialect,
    "channels-ticket": ChannelsTicketDialect,
}


class ConnectError(Exception):
    """A connection that could not be set up: the ``stage`` it failed at, the answer's ``code``
    (HTTP status, ``close <code>`` or an error event's code) and its ``retry_after`` seconds, so a
    client that retries (bench/surge/) can tell "too busy, come back" from a bug."""

    def __init__(self, stage: str, detail: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.code = code
        self.retry_after = retry_after


# --- Retrying a refused set-up -------------------------------------------------------------

# Refusals a client retries (docs/realtime.md, "Overload and retrying"), and network failures.
RETRY_STATUSES = {"503", "429"}
RETRY_CLOSES = ("close 1013", "close 4429", "close 4503", "close 1006")
RETRY_EVENTS = ("SERVICE_UNAVAILABLE", "RATE_LIMITED")
NETWORK_ERRORS = ("TimeoutError", "ConnectionRefusedError", "ConnectionResetError", "OSError")
# docs/realtime.md's backoff: the first window, and its cap, in seconds.
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
# Attempts per connection, the first included, for the relay benchmarks: set-up is not what they
# measure, but a pair refused "too busy" would otherwise be missing from the workload.
CONNECT_ATTEMPTS = 6


def retryable(error: BaseException) -> bool:
    """A refusal that says "too busy, come back", or a network failure: a client tries again.
    Anything else (a 500 among them) it reports."""
    if not isinstance(error, ConnectError):
        return isinstance(error, OSError | TimeoutError)
    code = error.code
    return (
        code in RETRY_STATUSES or code in NETWORK_ERRORS or code.startswith(RETRY_CLOSES) or code.endswith(RETRY_EVENTS)
    )


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: docs/realtime.md's full jitter on top of
    ``Retry-After``, so clients refused together do not come back together."""
    window = min(BACKOFF_CAP, BACKOFF_FIRST * 2**attempt)
    return (retry_after or 0.0) + random.random() * window  # noqa: S311 - jitter, not a secret


def failure_key(error: BaseException) -> str:
    """``<stage> <code>``: the ticket's HTTP status, the handshake's status or close code, the
    join's error code, or the kind of network failure."""
    if isinstance(error, ConnectError):
        return f"{error.stage} {error.code or 'unexpected'}"
    return f"connect {type(error).__name__}"


async def open_with_retries(
    dialect: Dialect,
    user_id: str,
    token: str,
    call_id: str,
    url: str,
    deadline: float,
    *,
    max_attempts: int,
    refusals: Counter,
) -> ClientConnection:
    """``dialect.open``, retried as docs/realtime.md tells clients to, at most ``max_attempts``
    times and never past ``deadline``; each retried refusal is counted in ``refusals`` by
    ``failure_key``. Raises the last failure."""
    attempt = 0
    while True:
        try:
            return await dialect.open(user_id, token, call_id, deadline, url)
        except Exception as error:
            delay = backoff(attempt, getattr(error, "retry_after", None))
            if not retryable(error) or attempt + 1 >= max_attempts or time.monotonic() + delay >= deadline:
                raise
            refusals[failure_key(error)] += 1
            await asyncio.sleep(delay)
            attempt += 1


# --- One worker process -------------------------------------------------------------------


@dataclass
class Plan:
    """Instants on the machine's monotonic clock (shared by all processes on Linux)."""

    start: float
    measure_from: float
    end: float
    drain_seconds: float
    round_trip_timeout: float


@dataclass
class Stats:
    received_in_window: int = 0
    round_trips_ms: list[float] = field(default_factory=list)
    # Each pair's first round trip, warm-up included: at call set-up every connection's first
    # signal may wait for work the server does once per connection (route lookups).
    first_round_trips_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    timeouts_in_window: int = 0
    invalid_payloads: int = 0
    unexpected_frames: int = 0
    error_frames: Counter = field(default_factory=Counter)
    closed_by_server: Counter = field(default_factory=Counter)
    connect_retries: Counter = field(default_factory=Counter)


class Client:
    """One WebSocket connection and its reader task."""

    def __init__(self, connection: ClientConnection, role: str, pair: PairSpec, dialect: Dialect, stats: Stats):
        self.connection = connection
        self.role = role
        self.pair = pair
        self.dialect = dialect
        self.stats = stats
        self.plan: Plan | None = None
        self.waiter: asyncio.Future | None = None
        self.closing = False
        self.validated = 0
        self.answer_text = dialect.answer(pair)
        self.reader = asyncio.create_task(self.read())

    def _counted(self) -> None:
        plan = self.plan
        if plan is not None and plan.measure_from <= time.monotonic() < plan.end:
            self.stats.received_in_window += 1

    def _valid(self, text: str, check) -> bool:
        if self.validated >= VALIDATED_PER_CONNECTION:
            return True
        self.validated += 1
        try:
            return check(text, self.pair)
        except (ValueError, TypeError, AttributeError):
            return False

    async def read(self) -> None:
        dialect = self.dialect
        try:
            async for text in self.connection:
                if not isinstance(text, str):
                    self.stats.unexpected_frames += 1
                elif self.role == "b" and dialect.is_offer(text):
                    self._counted()
                    if not self._valid(text, dialect.check_offer):
                        self.stats.invalid_payloads += 1
                    await self.connection.send(self.answer_text)
                elif self.role == "a" and dialect.is_answer(text):
                    self._counted()
                    if not self._valid(text, dialect.check_answer):
                        self.stats.invalid_payloads += 1
                    if self.waiter is not None and not self.waiter.done():
                        self.waiter.set_result(None)
                elif (reply := dialect.control_reply(text)) is not None:
                    await self.connection.send(reply)
                elif (code := dialect.error_code(text)) is not None:
                    self.stats.error_frames[code] += 1
                    if self.role == "a" and self.waiter is not None and not self.waiter.done():
                        self.waiter.set_exception(RelayRefused(code))
                else:
                    self.stats.unexpected_frames += 1
        except ConnectionClosed:
            pass
        if not self.closing:
            code = self.connection.close_code
            self.stats.closed_by_server[str(code)] += 1
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(RelayRefused(f"closed {code}"))

    async def close(self) -> None:
        self.closing = True
        # A connection the server already dropped was counted by the reader; nothing to add.
        with contextlib.suppress(Exception):
            await self.connection.close()
        self.reader.cancel()


class RelayRefused(Exception):
    pass


async def drive_pair(a: Client, plan: Plan, stats: Stats) -> None:
    """A's loop: offer, wait for the answer, again, until the end of the run."""
    offer = a.dialect.offer(a.pair)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, plan.start - time.monotonic()))
    first = True
    while time.monotonic() < plan.end and not a.closing:
        a.waiter = loop.create_future()
        started = time.monotonic()
        try:
            await a.connection.send(offer)
            await asyncio.wait_for(a.waiter, plan.round_trip_timeout)
        except TimeoutError:
            stats.timeouts += 1
            stats.timeouts_in_window += started >= plan.measure_from
            continue
        except RelayRefused:
            if a.connection.close_code is not None:
                return
            await asyncio.sleep(0.05)  # refused by the server: do not spin on errors
            continue
        except ConnectionClosed:
            return
        finished = time.monotonic()
        if first:
            stats.first_round_trips_ms.append((finished - started) * 1000.0)
            first = False
        if started >= plan.measure_from and started < plan.end:
            stats.round_trips_ms.append((finished - started) * 1000.0)


async def _open_pair(
    dialect: Dialect, pair: PairSpec, stats: Stats, gate: asyncio.Semaphore, deadline: float
) -> tuple[Client, Client]:
    retries = {"deadline": deadline, "max_attempts": CONNECT_ATTEMPTS, "refusals": stats.connect_retries}
    async with gate:
        a_conn = await open_with_retries(
            dialect, pair.a_id, pair.a_token, pair.call_id, pair.a_url or dialect.base_url, **retries
        )
        try:
            b_conn = await open_with_retries(
                dialect, pair.b_id, pair.b_token, pair.call_id, pair.b_url or dialect.base_url, **retries
            )
        except BaseException:
            await a_conn.close()
            raise
    return Client(a_conn, "a", pair, dialect, stats), Client(b_conn, "b", pair, dialect, stats)


async def worker_main(pipe, kind: str, base_url: str, pairs: list[PairSpec], options: dict) -> None:
    dialect = DIALECTS[kind](base_url, sdp_payload(options["sdp_chars"]))
    stats = Stats()
    gate = asyncio.Semaphore(options["connect_concurrency"])
    deadline = time.monotonic() + options["connect_timeout"]
    cpu_start = time.process_time()
    connected_at = time.monotonic()
    results = await asyncio.gather(
        *(_open_pair(dialect, pair, stats, gate, deadline) for pair in pairs), return_exceptions=True
    )
    opened, connect_errors, connect_error_samples = split_connects(pairs, results)
    clients: list[tuple[Client, Client]] = [result for _, result in opened]
    loop = asyncio.get_running_loop()
    pipe.send(
        {
            "connected_pairs": len(clients),
            "connect_errors": dict(connect_errors),
            "connect_error_samples": connect_error_samples,
            "connect_retries": dict(stats.connect_retries),
            "connect_seconds": time.monotonic() - connected_at,
        }
    )
    message = await loop.run_in_executor(None, pipe.recv)  # the reader tasks keep running meanwhile
    if message.get("abort"):
        await close_all(client for pair in clients for client in pair)
        pipe.send({"aborted": True})
        return
    plan = Plan(**message)
    for a, b in clients:
        a.plan = b.plan = plan

    cpu_window: dict[str, float] = {}
    sampler = asyncio.create_task(sample_cpu(plan, cpu_window))
    drivers = [asyncio.create_task(drive_pair(a, plan, stats)) for a, _ in clients]
    await sampler
    # Round trips in flight at the end may finish during the drain; then everything stops.
    await finish(drivers, plan)
    closed_early = sum(stats.closed_by_server.values())
    await close_all(client for pair in clients for client in pair)
    pipe.send(
        {
            "received_in_window": stats.received_in_window,
            "round_trips_ms": stats.round_trips_ms,
            "first_round_trips_ms": stats.first_round_trips_ms,
            "timeouts": stats.timeouts,
            "timeouts_in_window": stats.timeouts_in_window,
            "invalid_payloads": stats.invalid_payloads,
            "unexpected_frames": stats.unexpected_frames,
            "error_frames": dict(stats.error_frames),
            "closed_by_server": dict(stats.closed_by_server),
            "closed_by_server_during_run": closed_early,
            **cpu_report(cpu_window, cpu_start),
        }
    )


async def sample_cpu(plan: Plan, cpu_window: dict[str, float]) -> None:
    """This process's CPU time at the start and the end of the measured window."""
    await asyncio.sleep(max(0.0, plan.measure_from - time.monotonic()))
    cpu_window["from"] = time.process_time()
    await asyncio.sleep(max(0.0, plan.end - time.monotonic()))
    cpu_window["to"] = time.process_time()


def cpu_report(cpu_window: dict[str, float], cpu_start: float) -> dict[str, float]:
    return {
        "cpu_window_seconds": cpu_window.get("to", 0.0) - cpu_window.get("from", 0.0),
        "cpu_total_seconds": time.process_time() - cpu_start,
    }


async def finish(drivers: list[asyncio.Task], plan: Plan) -> None:
    """Let the drivers run until the end of the drain, then cancel what is left."""
    if drivers:
        await asyncio.wait(drivers, timeout=max(0.1, plan.end + plan.drain_seconds - time.monotonic()))
    for driver in drivers:
        driver.cancel()


async def close_all(closables) -> None:
    await asyncio.wait_for(asyncio.gather(*(item.close() for item in closables), return_exceptions=True), timeout=30)


def split_connects(specs: list, results: list) -> tuple[list[tuple[Any, Any]], Counter, list[str]]:
    """The pairs that connected (spec, result), the failures counted by stage, and a few samples."""
    opened = []
    connect_errors: Counter = Counter()
    samples: list[str] = []
    for spec, result in zip(specs, results, strict=True):
        if isinstance(result, BaseException):
            connect_errors[result.stage if isinstance(result, ConnectError) else type(result).__name__] += 1
            if len(samples) < 3:
                samples.append(str(result)[:300])
        else:
            opened.append((spec, result))
    return opened, connect_errors, samples


def worker_entry(pipe, main, spec_type: type, kind: str, base_url: str, specs: list[dict], options: dict) -> None:
    """A worker process: ``main(pipe, kind, base_url, specs, options)``, any failure told to the parent."""
    try:
        asyncio.run(main(pipe, kind, base_url, [spec_type(**spec) for spec in specs], options))
    except BaseException as error:  # the parent must hear about it, not wait for its deadline
        pipe.send({"fatal": f"{type(error).__name__}: {error}"[:500]})
        raise
    finally:
        pipe.close()


# --- The parent: one measured point ---------------------------------------------------------


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"Refusing to load {host!r}: the benchmark only targets loopback addresses.")


def _recv(pipe, timeout: float) -> dict:
    if not pipe.poll(max(0.0, timeout)):
        return {"fatal": f"no answer within {timeout:.0f} s"}
    try:
        return pipe.recv()
    except EOFError:
        return {"fatal": "worker exited"}


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "mean": statistics.fmean(values) if values else None,
    }


def totals(reports: list[dict]):
    """``total(name)``: the sum of a count over the workers' reports."""
    return lambda name: sum(report.get(name, 0) for report in reports)


def merges(reports: list[dict]):
    """``merged(name)``: a counter of the workers' reports added up."""

    def merged(name: str) -> dict:
        counter: Counter = Counter()
        for report in reports:
            counter.update(report.get(name, {}))
        return dict(counter)

    return merged


def loadgen_cpu(cpu_window: list[float], duration: float) -> dict[str, float | None]:
    return {
        "loadgen_cpu_cores": round(sum(cpu_window) / duration, 3),
        "loadgen_busiest_proc": round(max(cpu_window) / duration, 3) if cpu_window else None,
    }


def run_workers(
    main,
    spec_type: type,
    kind: str,
    base_url: str,
    specs: list,
    options: dict,
    *,
    procs: int,
    warmup: float,
    duration: float,
    round_trip_timeout: float,
    drain_seconds: float,
    on_window=None,
) -> tuple[dict[str, Any], list[dict] | None]:
    """Split ``specs`` over ``procs`` worker processes running ``main`` (see ``worker_entry``),
    wait until they connected, send them the Plan, and collect their reports.

    Returns the connection figures and the reports; the reports are None when a worker failed or
    no pair connected (then the figures carry ``fatal`` and every worker was told to abort)."""
    procs = max(1, min(procs, len(specs)))
    connect_timeout = options["connect_timeout"]
    context = multiprocessing.get_context("spawn")
    workers = []
    for index in range(procs):
        share = [spec.__dict__ for spec in specs[index::procs]]
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_entry,
            args=(child_end, main, spec_type, kind, base_url, share, options),
            name=f"loadgen-{index}",
        )
        process.start()
        child_end.close()
        workers.append((process, parent_end))
    try:
        started = time.monotonic()
        ready = [_recv(pipe, connect_timeout + 30) for _, pipe in workers]
        connect_seconds = time.monotonic() - started
        fatal = [message["fatal"] for message in ready if "fatal" in message]
        connected = sum(message.get("connected_pairs", 0) for message in ready)
        connect_errors: Counter = Counter()
        connect_retries: Counter = Counter()
        samples: list[str] = []
        for message in ready:
            connect_errors.update(message.get("connect_errors", {}))
            connect_retries.update(message.get("connect_retries", {}))
            samples += message.get("connect_error_samples", [])
        result: dict[str, Any] = {
            "connected_pairs": connected,
            "connect_seconds": round(connect_seconds, 2),
            "connect_errors": dict(connect_errors),
            "connect_retries": dict(connect_retries),
            "connect_error_samples": samples[:5],
            "procs": procs,
        }
        if fatal or connected == 0:
            for process, pipe in workers:
                if process.is_alive():
                    with contextlib.suppress(OSError):
                        pipe.send({"abort": True})
            result["fatal"] = fatal or ["no pair connected"]
            for _, pipe in workers:
                _recv(pipe, 40)
            return result, None
        start = time.monotonic() + 0.5
        plan = Plan(
            start=start,
            measure_from=start + warmup,
            end=start + warmup + duration,
            drain_seconds=drain_seconds,
            round_trip_timeout=round_trip_timeout,
        )
        for _, pipe in workers:
            pipe.send(plan.__dict__)
        if on_window is not None:
            on_window(plan.measure_from, plan.end)
        reports = [_recv(pipe, plan.end - time.monotonic() + drain_seconds + 60) for _, pipe in workers]
    finally:
        for process, _ in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    return result, reports


def run_point(
    kind: str,
    base_url: str,
    pairs: list[PairSpec],
    *,
    procs: int = 2,
    warmup: float = 2.0,
    duration: float = 10.0,
    round_trip_timeout: float = 10.0,
    drain_seconds: float = 5.0,
    connect_timeout: float = 120.0,
    connect_concurrency: int = 16,
    sdp_chars: int = 900,
    on_window=None,
) -> dict[str, Any]:
    """Connect every pair, run the workload, and return the load generator's measurements.

    ``on_window(measure_from, end)`` is called in this process, once the plan is fixed, so the
    harness can sample the server over exactly the measured window.
    """
    for url in {base_url, *(pair.a_url for pair in pairs), *(pair.b_url for pair in pairs)} - {""}:
        check_loopback(url)
    result, reports = run_workers(
        worker_main,
        PairSpec,
        kind,
        base_url,
        pairs,
        {"connect_timeout": connect_timeout, "connect_concurrency": connect_concurrency, "sdp_chars": sdp_chars},
        procs=procs,
        warmup=warmup,
        duration=duration,
        round_trip_timeout=round_trip_timeout,
        drain_seconds=drain_seconds,
        on_window=on_window,
    )
    result = {"pairs": len(pairs), **result}
    if reports is None:
        return result
    fatal = [report["fatal"] for report in reports if "fatal" in report]
    round_trips = [value for report in reports for value in report.get("round_trips_ms", [])]
    received = sum(report.get("received_in_window", 0) for report in reports)
    first_round_trips = [value for report in reports for value in report.get("first_round_trips_ms", [])]
    total, merged = totals(reports), merges(reports)
    cpu_window = [report.get("cpu_window_seconds", 0.0) for report in reports]
    result.update(
        {
            "window_seconds": duration,
            "messages": received,
            "messages_per_second": received / duration,
            "round_trips": len(round_trips),
            "rtt_ms": latency_summary(round_trips),
            "first_rtt_ms": {
                "p50": percentile(first_round_trips, 0.50),
                "p99": percentile(first_round_trips, 0.99),
                "max": max(first_round_trips) if first_round_trips else None,
            },
            "timeouts": total("timeouts"),
            "timeouts_in_window": total("timeouts_in_window"),
            "invalid_payloads": total("invalid_payloads"),
            "unexpected_frames": total("unexpected_frames"),
            "error_frames": merged("error_frames"),
            "closed_by_server_during_run": total("closed_by_server_during_run"),
            "closed_by_server": merged("closed_by_server"),
            "loadgen_cpu_seconds": round(sum(cpu_window), 3),
            **loadgen_cpu(cpu_window, duration),
            "loadgen_cpu_total_seconds": round(total("cpu_total_seconds"), 3),
        }
    )
    if fatal:
        result["fatal"] = fatal
    return result


def reference_pairs(count: int) -> list[PairSpec]:
    run = uuid.uuid4().hex[:8]
    return [PairSpec(a_id=f"{run}-a{index}", b_id=f"{run}-b{index}") for index in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive a running reference relay (raw or socketio).")
    parser.add_argument("--kind", choices=["raw", "socketio"], required=True)
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:<port>")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--procs", type=int, default=min(4, os.cpu_count() or 2))
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    arguments = parser.parse_args()
    result = run_point(
        arguments.kind,
        arguments.url,
        reference_pairs(arguments.pairs),
        procs=arguments.procs,
        warmup=arguments.warmup,
        duration=arguments.duration,
    )
    result.pop("round_trips_ms", None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Clients for the fault drills, as a real client behaves (docs/realtime.md, "Overload and
retrying"): HTTP over loopback, and sockets that read in a thread of their own, keep everything
they receive, heartbeat on a timer, and remember the close code the server sent. ``reconnect``
retries as the protocol asks: honour ``Retry-After``, back off with full jitter, and open the
socket again with the access token offered as a subprotocol (realtime/bearer.py)."""

import contextlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from realtime.bearer import bearer_subprotocols
from tests.drills.processes import Server

TIMEOUT = 10  # seconds for any one network step
ORIGIN = "http://localhost:3000"  # the React client's origin, allowed by default
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ABNORMAL_CLOSURE = 1006  # no close frame: the server process died, or the network did


@dataclass
class Response:
    status: int
    headers: Message  # case-insensitive, as HTTP header names are
    body: dict


def http(method: str, url: str, token: str | None = None, body: dict | None = None) -> Response:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=TIMEOUT) as response:
            return Response(response.status, response.headers, json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, json.loads(error.read() or b"{}"))


class SocketRefused(Exception):
    """The server refused the connection for now (503, 1013, connection refused)."""

    def __init__(self, reason: str, retry_after: float = 0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class DrillSocket:
    """One socket of one user to one server process."""

    def __init__(self, server: Server, token: str, *, heartbeat_seconds: float | None = None) -> None:
        self.server = server
        self.token = token
        self.messages: list[dict] = []
        self.close_code: int | None = None
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._exit = contextlib.ExitStack()
        self.connection: ClientConnection = self._exit.enter_context(
            connect(
                f"{server.ws}/ws/",
                subprotocols=bearer_subprotocols(token),
                origin=ORIGIN,
                proxy=None,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
            )
        )
        first = json.loads(self.connection.recv(timeout=TIMEOUT))
        if first["type"] != "connection.ready":
            retry_after = first.get("data", {}).get("details", {}).get("retry_after", 0)
            with contextlib.suppress(ConnectionClosed):
                self.connection.recv(timeout=TIMEOUT)  # the close that follows
            self.refused_close_code = self.connection.close_code
            self._exit.close()
            raise SocketRefused(f"handshake answered {first} and closed {self.connection.close_code}", retry_after)
        self.ready = first["data"]
        threading.Thread(target=self._read, daemon=True).start()
        if heartbeat_seconds:
            threading.Thread(target=self._heartbeat, args=(heartbeat_seconds,), daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self.connection.recv())
                with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else ABNORMAL_CLOSURE
        except OSError:
            code = ABNORMAL_CLOSURE
        with self._changed:
            self.close_code = code
            self._closed.set()
            self._changed.notify_all()

    def _heartbeat(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            try:
                self.send({"type": "presence.heartbeat", "data": {}})
            except (ConnectionClosed, OSError):
                return

    def send(self, message: dict) -> None:
        with self._send_lock:
            self.connection.send(json.dumps(message))

    def try_send(self, message: dict) -> bool:
        """Send unless the connection has already closed; whether it went out."""
        try:
            self.send(message)
        except ConnectionClosed:
            return False
        return True

    def mark(self) -> int:
        """Where the messages received so far end: ``wait`` from here sees only later ones."""
        with self._changed:
            return len(self.messages)

    def wait(self, matches: Callable[[dict], bool], *, since: int = 0, timeout: float = TIMEOUT) -> dict:
        """The first message from ``since`` on that ``matches``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages[since:]:
                    if matches(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0 or self._closed.is_set():
                    raise AssertionError(
                        f"no matching message within {timeout}s (closed: {self.close_code}); got {self.messages[since:]}"
                    )
                self._changed.wait(left)

    def request(self, message: dict, *, timeout: float = TIMEOUT) -> dict:
        """Send a message with an ``id`` and return its reply (``ack`` or ``error``)."""
        since = self.mark()
        self.send(message)
        return self.wait(lambda reply: reply.get("id") == message["id"], since=since, timeout=timeout)

    def event(self, type: str, *, since: int = 0, timeout: float = TIMEOUT, **data) -> dict:
        """The first event of ``type`` from ``since`` on whose data has the given values."""
        return self.wait(
            lambda message: message["type"] == type and all(message["data"].get(k) == v for k, v in data.items()),
            since=since,
            timeout=timeout,
        )

    def events(self, type: str, **data) -> list[dict]:
        with self._changed:
            return [
                message
                for message in self.messages
                if message["type"] == type and all(message["data"].get(k) == v for k, v in data.items())
            ]

    def wait_closed(self, timeout: float = TIMEOUT) -> int:
        assert self._closed.wait(timeout), f"socket to {self.server.name} still open after {timeout}s"
        return self.close_code

    def close(self) -> None:
        self._exit.close()
        self._closed.wait(TIMEOUT)


def backoff(attempt: int, retry_after: float = 0) -> float:
    """Full jitter on top of Retry-After; the window starts at 0.1 s here (0.5 s for people) so a
    drill does not idle, and doubles up to 2 s."""
    return retry_after + random.uniform(0, min(2.0, 0.1 * 2**attempt))


def reconnect(server: Server, token: str, *, heartbeat_seconds: float | None = None, timeout: float = 30) -> tuple:
    """Connect as a client does after a loss: retry refusals with backoff until a socket is
    ready. Returns the socket and the refusals met on the way (each a short reason)."""
    refusals: list[str] = []
    deadline = time.monotonic() + timeout
    for attempt in range(1000):
        try:
            return DrillSocket(server, token, heartbeat_seconds=heartbeat_seconds), refusals
        except SocketRefused as refused:
            refusals.append(str(refused))
            pause = backoff(attempt, refused.retry_after)
        except (OSError, ConnectionClosed) as error:
            refusals.append(f"{type(error).__name__}: {error}")
            pause = backoff(attempt)
        if time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
    raise AssertionError(f"could not reconnect to {server.name} within {timeout}s: {refusals[-5:]}")

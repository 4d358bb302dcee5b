"""The HTTP application's ASGI parts: Django's handler with one thread hop per request, on a
thread it reuses (``OneHopASGIHandler``), and the request body limit, counted as it arrives.

Django's ASGI handler reads the whole body into a temporary file (spilling to disk past 2.5 MB)
before any Django middleware runs, so a body sent without ``Content-Length`` (chunked) was read
to its end whatever its size, 200 MiB included, and ``BodySizeLimitMiddleware`` saw no length
to refuse. Here, in front of Django:

1. A declared ``Content-Length`` over the limit is answered 413 at once, the body unread; one of
   0 goes on to Django as it is.
2. Otherwise the ``http.request`` messages are read and counted; once more than the limit has
   arrived, the answer is 413 ``PAYLOAD_TOO_LARGE`` (docs/errors.md) and the rest is not read
   (the server closes the connection).
3. A body within the limit is handed to Django as one message, with its ``Content-Length``
   when the client sent none (DRF parses a request without one as having no body: a chunked
   JSON body used to arrive empty); later ``receive`` calls (the disconnect) go to the server.

The limit is ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``MAX_REQUEST_BYTES``) for paths under ``/api/``,
except on a route whose view declares its own (a ``request_body_limit()`` classmethod: the
attachment upload, ``ATTACHMENT_MAX_BYTES`` and its multipart framing); ``request_body_limit``
gives a path's limit, to this and to the Django middleware alike. What is read is kept in a
spooled temporary file (in memory up to ``FILE_UPLOAD_MAX_MEMORY_SIZE``, which covers the
upload route's limit so an upload's plaintext never reaches the disk; on disk past it) and handed
on in chunks.
"""

import json
import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

from core.errors import error_body
from core.request_context import request_id_var

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler, running the middleware chain and the view in one thread.

    Django adapts a chain of synchronous middleware to its asynchronous handler by handing the
    request back and forth: into a thread for the middleware, back to the event loop for the
    handler's inner part, and into a thread again for each view middleware's ``process_view``
    and for the view. Every middleware and view here is synchronous, so a request paid four
    hand-offs (each a future, a context copy and a wake-up of the loop and a thread) where one
    does; at the top of the hour that is CPU every ticket request spends. This handler builds
    the synchronous chain Django's WSGI handler runs and calls it with one thread-sensitive
    ``sync_to_async``: in the request's own thread, as Django's would. An async view would still
    work (Django's synchronous handler runs it with ``async_to_sync``), one hop dearer."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Django's, but the request's thread is one an earlier request used: Django gives
        every request a thread of its own and ends it with the request (a new executor per
        ``ThreadSensitiveContext``), which on the hour is a thread started and joined for
        every ticket. A WSGI server's threads serve one request after another the same way;
        what a request leaves in its thread (its database connection) Django's
        ``request_finished`` clean-up gives back, in that thread, before the next request."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = REQUEST_THREADS.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        except BaseException:
            # Cancelled or failed midway: its thread may still be running the view, and a request
            # that borrowed it next would wait for that.
            executor.shutdown(wait=False)
            raise
        # ``handle`` returns once the request's thread has finished with it (a request whose
        # client went away included: ``request_finished`` runs on that thread after the view).
        REQUEST_THREADS.give_back(executor)


class RequestThreads:
    """Single-thread executors that HTTP requests borrow, one each for the length of the request:
    as many threads as requests in flight, as with Django's handler, but kept for the next
    request rather than ended. At most ``keep`` wait idle; a burst's extra threads end with their
    requests."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []

    def take(self) -> ThreadPoolExecutor:
        try:
            return self.idle.pop()  # atomic: two event loops (a test's, a probe's) may share these
        except IndexError:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)


# Every HTTP request of this process borrows one of these.
REQUEST_THREADS = RequestThreads(keep=64)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def request_body_limit(path: str) -> int | None:
    """The body limit of a request to ``path``: None (no limit) outside ``/api/``; the route's
    view's own ``request_body_limit()`` if it has one; else ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    if not path.startswith("/api/"):
        return None
    try:
        view_class = getattr(resolve(path).func, "view_class", None)
    except Resolver404:
        view_class = None
    own = getattr(view_class, "request_body_limit", None)
    return own() if own is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _may_have_body(scope: Scope) -> bool:
    """False for a declared ``Content-Length: 0`` (a POST without a body, such as the ticket's):
    nothing to count, so the request goes on without its route being resolved twice or a spool
    made. A request declaring no length may still send a body (chunked, or HTTP/2 data frames)."""
    declared = _header(scope, b"content-length")
    return declared is None or declared.strip() != b"0"


_REPLAY_CHUNK = 64 * 1024


class RequestBodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        limit = request_body_limit(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        with tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as body:
            received = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: let Django see it
                    await self.app(scope, _replay(message, receive), send)
                    return
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    await self._refuse(scope, send, limit)
                    return
                body.write(chunk)
                if not message.get("more_body", False):
                    break
            if declared is None:
                # DRF reads no body from a request without Content-Length: now it is known, say it.
                scope = {**scope, "headers": [*scope.get("headers", ()), (b"content-length", str(received).encode())]}
            body.seek(0)
            await self.app(scope, _spooled(body, received, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        incoming = _header(scope, b"x-request-id") or b""
        request_id = incoming.decode() if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            body = json.dumps(
                error_body("PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes.", {"limit": limit})
            ).encode()
        finally:
            request_id_var.reset(token)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _spooled(body, size: int, receive: Receive) -> Receive:
    """A ``receive`` that gives the spooled body as ``http.request`` messages of at most
    ``_REPLAY_CHUNK`` bytes, read from the spool as they are asked for, then defers to the
    server's."""
    left = size
    done = False

    async def replayed() -> Message:
        nonlocal left, done
        if done:
            return await receive()
        chunk = body.read(min(left, _REPLAY_CHUNK))
        left -= len(chunk)
        done = left <= 0
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replayed


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that gives ``first`` once, then defers to the server's."""
    pending = [first]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed

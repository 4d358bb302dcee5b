"""Helpers for WebSocket tests: the real ASGI application (origin check, routing, consumer)
with a real access token offered as a subprotocol (or a ticket from the real ticket service),
reached through Channels' communicator or, with the ``served`` fixture, through a real uvicorn server running the production protocol
(realtime/direct.py) on a loopback port."""

import asyncio
import contextlib
import json
import socket
import threading

import pytest
import pytest_asyncio
import uvicorn
from channels.testing import WebsocketCommunicator
from django.db import connections
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.tokens import token_pair_for
from config.asgi import application
from config.serve import SERVER_OPTIONS
from core.events import _database_executor
from realtime.bearer import bearer_subprotocols

ORIGIN = (b"origin", b"http://localhost:3000")


@pytest.fixture(scope="session", autouse=True)
def _database_threads_give_back_connections(django_db_setup):
    """Channels' communicator turns ``close_old_connections`` into a no-op while it runs
    (channels/testing/application.py), so on PostgreSQL the threads that ran consumers' database
    work (core.events ``database_call``) keep their pooled connections after the tests, and the
    test database could not be dropped at the end. Close them in every such thread."""
    yield
    if _database_executor.cache_info().currsize == 0:
        return
    executor = _database_executor()
    workers = executor._max_workers
    everyone_busy = threading.Barrier(workers)  # so that each task runs on a thread of its own

    def close_connections() -> None:
        everyone_busy.wait(timeout=10)
        connections.close_all()

    for task in [executor.submit(close_connections) for _ in range(workers)]:
        task.result(timeout=20)


# ws://127.0.0.1:<port> of the server started by the ``served`` fixture, while it runs.
_served_url: str | None = None


def served_url() -> str:
    """ws://127.0.0.1:<port> of the server the ``served`` fixture runs."""
    assert _served_url is not None, "use the served fixture"
    return _served_url


class ServedSocket:
    """A client connection to the served application, with the communicator's methods the
    tests use."""

    def __init__(self, connection) -> None:
        self.connection = connection

    async def send_to(self, text_data: str) -> None:
        await self.connection.send(text_data)

    async def send_json_to(self, data: dict) -> None:
        await self.send_to(json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str:
        return await asyncio.wait_for(self.connection.recv(), timeout)

    async def receive_nothing(self, timeout: float = 0.1) -> bool:
        try:
            await asyncio.wait_for(self.connection.recv(), timeout)
        except TimeoutError:
            return True
        return False

    async def disconnect(self) -> None:
        await self.connection.close()
        # Let the server run the consumer's disconnect before the test goes on.
        with contextlib.suppress(ConnectionClosed):
            await self.connection.wait_closed()
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving(options: dict | None = None, **config):
    """Serve the application with uvicorn on a free loopback port, in the test's event loop,
    with ``options`` (default: the production ``SERVER_OPTIONS``); ``open_socket`` and
    ``RawClient`` connect through it while the block runs. Yields the server."""
    global _served_url
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {name: value for name, value in (options or SERVER_OPTIONS).items() if name != "loop"}  # the test's
    config = {"log_level": "warning", **config}
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, **options, **config))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    assert server.started, "uvicorn did not start"
    _served_url = f"ws://127.0.0.1:{port}"
    try:
        yield server
    finally:
        _served_url = None
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture
async def served():
    """Serve the application with uvicorn and the production WebSocket protocol while the test
    runs: ``open_socket`` then connects through it."""
    async with serving() as server:
        yield server


@pytest.fixture(params=["communicator", "uvicorn"])
def transport(request):
    """Run a test through Channels' communicator and again through the served application."""
    if request.param == "uvicorn":
        request.getfixturevalue("served")
    return request.param


async def open_socket(
    user=None, *, ticket: str | None = None, token: str | None = None, origin=ORIGIN
) -> WebsocketCommunicator:
    """Connect and return the communicator. For a user, with their access token offered as a
    subprotocol (or with ``ticket``), and consume ``connection.ready``; without one, with
    ``ticket`` or ``token`` alone, or with no credential at all."""
    from channels.db import database_sync_to_async

    if user is not None and ticket is None and token is None:
        token = (await database_sync_to_async(token_pair_for)(user))["access"]
    subprotocols = bearer_subprotocols(token) if token is not None else []
    path = f"/ws/?ticket={ticket}" if ticket is not None else "/ws/"
    if _served_url is not None:
        served = ServedSocket(
            await connect(
                _served_url + path, origin=origin[1].decode() if origin else None, subprotocols=subprotocols or None
            )
        )
        if user is not None:
            ready = await receive(served)
            assert ready["type"] == "connection.ready", ready
        return served
    headers = [origin] if origin else []
    communicator = WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    if user is not None:
        ready = await receive(communicator)
        assert ready["type"] == "connection.ready", ready
    return communicator


async def receive(communicator: WebsocketCommunicator | ServedSocket, timeout: float = 5) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def next_event(communicator: WebsocketCommunicator, timeout: float = 5) -> dict:
    """The next message that is not a presence update (people in a call see each other's
    presence change to busy; tests about calls are not about that)."""
    while True:
        message = await receive(communicator, timeout)
        if message["type"] != "presence.updated":
            return message


async def request(communicator: WebsocketCommunicator, message: dict) -> dict:
    """Send a message and return the next one that is not a presence update."""
    await communicator.send_to(text_data=json.dumps(message))
    return await next_event(communicator)


def kill_redis_clients() -> None:
    """Cut every client of this test run's Redis database (the processes' subscriptions among
    them) but the one doing it, as a Redis restart does."""
    import redis
    from django.conf import settings

    killer = redis.Redis.from_url(settings.REDIS_URL)
    database = str(killer.connection_pool.connection_kwargs.get("db", 0))
    own_id = str(killer.client_id())
    for client in killer.client_list():
        if client["db"] == database and client["id"] != own_id:
            killer.client_kill_filter(_id=client["id"])
    killer.close()

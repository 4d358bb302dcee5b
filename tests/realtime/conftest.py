"""Helpers for WebSocket tests: a communicator on the real ASGI application (origin check,
routing, consumer) with a ticket from the real ticket service."""

import json

from channels.testing import WebsocketCommunicator

from config.asgi import application
from realtime.tickets import ticket_issue

ORIGIN = (b"origin", b"http://localhost:3000")


async def open_socket(user=None, *, ticket: str | None = None, origin=ORIGIN) -> WebsocketCommunicator:
    """Connect and return the communicator; for a user, also consume ``connection.ready``."""
    from channels.db import database_sync_to_async

    if user is not None and ticket is None:
        ticket = await database_sync_to_async(ticket_issue)(user=user)
    path = f"/ws/?ticket={ticket}" if ticket is not None else "/ws/"
    headers = [origin] if origin else []
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    if user is not None:
        ready = await receive(communicator)
        assert ready["type"] == "connection.ready", ready
    return communicator


async def receive(communicator: WebsocketCommunicator, timeout: float = 5) -> dict:
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

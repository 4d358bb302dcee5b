"""Opening a connection (realtime/consumers.py ``connect``): ``connection.ready`` is the first
thing a client hears, even when an event for the user's group arrives while the connection is
still opening."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from core.events import send_now, user_group
from realtime.consumers import RealtimeConsumer
from realtime.tickets import ticket_issue
from tests.realtime.conftest import open_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_an_event_that_arrives_while_the_connection_opens_follows_connection_ready(patient, monkeypatch):
    joined = RealtimeConsumer.group_join

    async def join_then_hear_an_event(self, group):
        await joined(self, group)
        if group == user_group(patient.pk):  # a care partner's change lands in the opening's gap
            await database_sync_to_async(send_now)([group], "presence.updated", {"user_id": "someone"})
            await asyncio.sleep(0.1)

    monkeypatch.setattr(RealtimeConsumer, "group_join", join_then_hear_an_event)
    ticket = await database_sync_to_async(ticket_issue)(user=patient)

    socket = await open_socket(ticket=ticket)
    first, second = await receive(socket), await receive(socket)

    assert [first["type"], second["type"]] == ["connection.ready", "presence.updated"]
    await socket.disconnect()

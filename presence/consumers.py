"""Presence messages on the realtime socket: heartbeats and status changes."""

from core.events import database_call
from presence.serializers import PresenceUpdateSerializer
from presence.services import presence_heartbeat, presence_payload, presence_set_status
from realtime.registry import handles


@handles("presence.heartbeat")
async def heartbeat(connection, data: dict) -> dict:
    """Keeps the connection counted. ``alive: false`` means the server had already dropped it
    (heartbeats stopped for too long): the client should reconnect."""
    alive = await database_call(presence_heartbeat, channel_name=connection.channel_name)
    return {"alive": alive}


@handles("presence.set", serializer=PresenceUpdateSerializer)
async def set_status(connection, data: dict) -> dict:
    presence = await database_call(presence_set_status, user=connection.user, status=data["status"])
    return presence_payload(presence)

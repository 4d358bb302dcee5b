"""Where signaling for a call goes: its connected participants and the sockets they joined it on."""

from core.compiled import CompiledQuery
from presence.models import PresenceConnection
from video_calls.models import Call, CallParticipant, CallStatus, ParticipantStatus


def call_routes(*, call_id) -> dict[str, list[str]]:
    """``{user id: [channel names]}`` for every participant connected to an ongoing call. A
    participant who joined over REST only has no channel (signals to them cannot be delivered)."""
    joined = CallParticipant.objects.filter(
        call_id=call_id, status=ParticipantStatus.JOINED, call__status=CallStatus.ONGOING
    ).values_list("user_id", flat=True)
    return _routes(call_id, list(joined))


def call_routes_of(call: Call) -> dict[str, list[str]]:
    """``call_routes`` of a call whose participants are prefetched (``call_with_participants``):
    the same answer with one query, the connections, instead of two."""
    if call.status != CallStatus.ONGOING:
        return {}
    return _routes(call.pk, [p.user_id for p in call.participants.all() if p.status == ParticipantStatus.JOINED])


# The connections in a call, compiled once (core/compiled.py): every join reads them.
_connections_in_call: CompiledQuery[PresenceConnection] = CompiledQuery(
    lambda call_id: (
        PresenceConnection.objects.filter(call_id=call_id).only("pk", "user_id", "channel_name").order_by("pk")
    ),
    "call_id",
)


def _routes(call_id, joined: list) -> dict[str, list[str]]:
    """The channels each of the ``joined`` users joined the call on (none for a REST-only one)."""
    routes: dict[str, list[str]] = {str(user_id): [] for user_id in joined}
    if not joined:
        return routes
    for connection in _connections_in_call.all(call_id=call_id):
        channels = routes.get(str(connection.user_id))
        if channels is not None:  # a connection of someone no longer joined: not a route
            channels.append(connection.channel_name)
    return routes

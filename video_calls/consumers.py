"""Call messages on the realtime socket: join and leave (the same services as REST), media
state, and WebRTC signaling relayed between the call's connected participants.

Signaling is the hot path — dozens of offers, answers and ICE candidates per call, all calls
setting up on the hour — so it touches no database per message: each connection keeps the
call's routes (who is connected, on which channel) for a short while, drops them whenever an
event about the call passes through it, and sends to the peer's channel directly rather than
through a group. SDP and candidates are relayed, never stored.
"""

import time
from typing import Any
from uuid import UUID

from django.conf import settings
from rest_framework import serializers

from core.events import call_group, database_call
from core.exceptions import InvalidInput, PermissionDenied
from presence.services import presence_connection_enter_call, presence_connection_leave_call
from realtime import protocol
from realtime.registry import handles, on_disconnect, on_event
from video_calls.models import ParticipantStatus
from video_calls.selectors.calls import call_get_for_user
from video_calls.selectors.routes import call_routes
from video_calls.serializers import MediaUpdateSerializer, join_payload
from video_calls.services.media import media_update
from video_calls.services.rooms import call_join, call_leave
from video_calls.tasks import call_leave_unless_reconnected

ROUTE_TTL_SECONDS = 30.0
MAX_SDP_CHARS = 60_000
MAX_ICE_CANDIDATES = 50


class PeerNotConnected(PermissionDenied):
    code = "PEER_NOT_CONNECTED"
    status = 409
    default_message = "That participant has no connection in this call right now."


class CallIdSerializer(serializers.Serializer):
    call_id = serializers.UUIDField()


class CallJoinSocketSerializer(CallIdSerializer):
    passcode = serializers.CharField(required=False, allow_blank=True, max_length=64)


class MediaUpdateSocketSerializer(CallIdSerializer, MediaUpdateSerializer):
    pass


# --- Join, leave, media ---------------------------------------------------------------------


def _join(*, user, call_id: UUID, passcode: str, channel_name: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Join, point this connection at the call, and read the call's routes in the same trip
    to the database (the first signal then needs none)."""
    call = call_get_for_user(user=user, call_id=call_id)
    result = call_join(call=call, user=user, passcode=passcode)
    if result.participant.status == ParticipantStatus.JOINED:
        presence_connection_enter_call(channel_name=channel_name, call_id=call.pk)
    call.refresh_from_db()
    return join_payload(result, call), call_routes(call_id=call.pk)


@handles("call.join", serializer=CallJoinSocketSerializer)
async def join(connection, data: dict) -> dict:
    """Join (or re-join after a reload) a call. The reply is what REST's join answers — the
    call with its participant list and media credentials: the snapshot a reconnecting client
    needs. The others hear ``call.participant_joined``."""
    call_id = data["call_id"]
    payload, routes = await database_call(
        _join,
        user=connection.user,
        call_id=call_id,
        passcode=data.get("passcode", ""),
        channel_name=connection.channel_name,
    )
    await connection.group_join(call_group(call_id))
    connection.calls.add(str(call_id))
    _remember_routes(str(call_id), routes)
    return payload


def _leave(*, user, call_id: UUID, channel_name: str) -> None:
    call = call_get_for_user(user=user, call_id=call_id)
    call_leave(call=call, user=user)
    presence_connection_leave_call(channel_name=channel_name, call_id=call.pk)


@handles("call.leave", serializer=CallIdSerializer)
async def leave(connection, data: dict) -> dict:
    call_id = data["call_id"]
    await database_call(_leave, user=connection.user, call_id=call_id, channel_name=connection.channel_name)
    await connection.group_leave(call_group(call_id))
    connection.calls.discard(str(call_id))
    return {"call_id": str(call_id)}


def _media(*, user, call_id: UUID, changes: dict) -> dict[str, Any]:
    call = call_get_for_user(user=user, call_id=call_id)
    participant = media_update(call=call, user=user, **changes)
    return {
        "call_id": str(call.pk),
        "audio_enabled": participant.audio_enabled,
        "video_enabled": participant.video_enabled,
        "screen_sharing": participant.screen_sharing,
    }


@handles("media.update", serializer=MediaUpdateSocketSerializer)
async def update_media(connection, data: dict) -> dict:
    changes = {name: value for name, value in data.items() if name != "call_id"}
    return await database_call(_media, user=connection.user, call_id=data["call_id"], changes=changes)


@on_disconnect
async def leave_after_grace(connection) -> None:
    """A dropped connection leaves its calls only if the user has not come back to them within
    the grace period: a page reload must not end a call."""
    for call_id in list(getattr(connection, "calls", ())):
        await database_call(
            call_leave_unless_reconnected.apply_async,
            args=[call_id, str(connection.user.pk)],
            countdown=settings.REALTIME_RECONNECT_GRACE_SECONDS,
        )


# --- Signaling ------------------------------------------------------------------------------


# Per process, shared by its connections: call id -> (fetched at, routes). Filled by each
# socket's call.join, dropped whenever an event about the call passes through any connection
# here, and read again when a participant signals someone the routes do not reach yet (they
# may have just connected, on another process).
_ROUTES: dict[str, tuple[float, dict[str, list[str]]]] = {}


def _remember_routes(call_id: str, routes: dict[str, list[str]]) -> None:
    now = time.monotonic()
    if len(_ROUTES) > 10_000:
        for stale in [key for key, (fetched, _) in _ROUTES.items() if now - fetched > ROUTE_TTL_SECONDS]:
            del _ROUTES[stale]
    _ROUTES[call_id] = (now, routes)


async def _routes(call_id: str, *, refetch: bool = False) -> dict[str, list[str]]:
    cached = _ROUTES.get(call_id)
    if cached is not None and not refetch and time.monotonic() - cached[0] < ROUTE_TTL_SECONDS:
        return cached[1]
    routes = await database_call(call_routes, call_id=call_id)
    _remember_routes(call_id, routes)
    return routes


@on_event
def forget_routes(connection, event: dict) -> None:
    call_id = event["data"].get("call_id") if isinstance(event.get("data"), dict) else None
    if call_id is not None:
        _ROUTES.pop(str(call_id), None)


def _uuid(data: dict, name: str) -> str:
    value = data.get(name)
    if isinstance(value, str):
        try:
            return str(UUID(value))
        except ValueError:
            pass
    _invalid(name, "Must be a UUID.")


def _invalid(name: str, message: str, code: str = "invalid"):
    raise InvalidInput(details={name: [{"message": message, "code": code}]})


async def _relay(connection, data: dict, event_type: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to the addressed participant's call connections, if both the sender
    and the addressee are connected participants of the call."""
    call_id, to = _uuid(data, "call_id"), _uuid(data, "to")
    sender = str(connection.user.pk)
    routes = await _routes(call_id)
    if sender in routes and not routes.get(to):
        routes = await _routes(call_id, refetch=True)
    if sender not in routes or to not in routes or to == sender:
        raise PermissionDenied("Signals go only between connected participants of the same call.")
    channels = routes[to]
    if not channels:
        raise PeerNotConnected()
    text = protocol.encode(event_type, {"call_id": call_id, "from": sender, **payload})
    for channel in channels:
        await connection.deliver(channel, text)


def _sdp(data: dict) -> str:
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        _invalid("sdp", "A session description is required.", "required")
    if len(sdp) > MAX_SDP_CHARS:
        _invalid("sdp", f"At most {MAX_SDP_CHARS} characters.", "max_length")
    return sdp


@handles("signal.offer")
async def offer(connection, data: dict) -> None:
    await _relay(connection, data, "signal.offer", {"sdp": _sdp(data)})


@handles("signal.answer")
async def answer(connection, data: dict) -> None:
    await _relay(connection, data, "signal.answer", {"sdp": _sdp(data)})


@handles("signal.ice")
async def ice(connection, data: dict) -> None:
    """ICE candidates, one (``candidate``) or a batch (``candidates``): batching cuts the
    message count of call set-up several-fold."""
    candidates = data.get("candidates")
    if candidates is None and "candidate" in data:
        candidates = [data["candidate"]]
    if not isinstance(candidates, list) or not candidates:
        _invalid("candidates", "Give a candidate or a non-empty list of candidates.", "required")
    if len(candidates) > MAX_ICE_CANDIDATES:
        _invalid("candidates", f"At most {MAX_ICE_CANDIDATES} candidates per message.", "max_length")
    if not all(isinstance(candidate, dict | str) or candidate is None for candidate in candidates):
        _invalid("candidates", "Each candidate is an RTCIceCandidateInit object, or null for the end.")
    await _relay(connection, data, "signal.ice", {"candidates": candidates})

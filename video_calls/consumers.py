"""Call messages on the realtime socket: ringing (initiate, accept, decline, hang up), join and
leave, media state — the same services as REST, with the same errors — and WebRTC signaling
relayed between the call's connected participants.

Signaling is the hot path — dozens of offers, answers and ICE candidates per call, all calls
setting up on the hour — so it touches no database per message: each connection keeps the
call's routes (who is connected, on which channel) for a short while, drops them whenever an
event about the call passes through it, and sends to the peer's channel directly rather than
through a group. SDP and candidates are relayed, never stored.
"""

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

from django.db import transaction
from rest_framework import serializers

from audit.models import AuditAction
from audit.sockets import audited_database_call
from core.events import call_group, database_call
from core.exceptions import InvalidInput, PermissionDenied
from core.ratelimit import throttle_user_scope
from presence.services import presence_connection_enter_call, presence_connection_leave_call
from realtime import protocol
from realtime.registry import handles, on_event, on_layer_lost
from video_calls.models import ParticipantStatus
from video_calls.selectors.calls import call_get_for_user, call_with_participants, call_with_participants_of
from video_calls.selectors.routes import call_routes, call_routes_of
from video_calls.serializers import (
    CallDeclineSerializer,
    CallInitiateSerializer,
    CallJoinSerializer,
    CallSerializer,
    MediaUpdateSerializer,
    join_payload,
)
from video_calls.serializers_adhoc import placed_call_payload
from video_calls.services.adhoc import call_accept, call_decline, call_hangup, call_place
from video_calls.services.media import media_update
from video_calls.services.rooms import call_join, call_leave

ROUTE_TTL_SECONDS = 120.0

logger = logging.getLogger(__name__)
MAX_SDP_CHARS = 60_000
MAX_ICE_CANDIDATES = 50


class PeerNotConnected(PermissionDenied):
    code = "PEER_NOT_CONNECTED"
    status = 409
    default_message = "That participant has no connection in this call right now."


class CallIdSerializer(serializers.Serializer):
    call_id = serializers.UUIDField()


class CallJoinSocketSerializer(CallIdSerializer, CallJoinSerializer):
    """REST's join fields (passcode, display name, media state, recording consent) and the call."""


class MediaUpdateSocketSerializer(CallIdSerializer, MediaUpdateSerializer):
    pass


class CallDeclineSocketSerializer(CallIdSerializer, CallDeclineSerializer):
    pass


def _audited(connection, message_type: str, operation: Callable[..., Any], *, call_id: Any = "", **kwargs: Any):
    """Run a call message's domain function with its audit entry, as REST's call endpoints are
    audited (audit/sockets.py): the call's id, or the new call's for a ring."""
    if call_id:
        kwargs["call_id"] = call_id
    return audited_database_call(
        connection,
        message_type,
        operation,
        action=AuditAction.CREATE if not call_id else AuditAction.UPDATE,
        object_type="call",
        object_id=call_id,
        object_id_of=None if call_id else _placed_call_id,
        **kwargs,
    )


def _placed_call_id(payload: dict[str, Any]) -> Any:
    return payload["id"]


# --- Join, leave, media ---------------------------------------------------------------------


@transaction.atomic(savepoint=False)  # the audit entry's transaction, when there is one
def _join(*, user, call_id: UUID, channel_name: str, **join_fields: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Join, point this connection at the call, and read the call's routes in the same trip
    to the database (the first signal then needs none). Every client of every call does this on
    the hour, so it keeps to the fewest statements: the call is found and locked in one, not
    read again after the join, and the participants read for the answer also give the routes
    (``call_routes_of``), which then need only the connections."""
    call = call_get_for_user(user=user, call_id=call_id, lock=True)
    result = call_join(call=call, user=user, locked=True, **join_fields)
    if result.participant.status == ParticipantStatus.JOINED:
        presence_connection_enter_call(channel_name=channel_name, call_id=call.pk)
    call = call_with_participants_of(result.call)
    return join_payload(result, call), call_routes_of(call)


@handles("call.join", serializer=CallJoinSocketSerializer)
async def join(connection, data: dict) -> dict:
    """Join (or re-join after a reload) a call. The reply is what REST's join answers — the
    call with its participant list and media credentials: the snapshot a reconnecting client
    needs. The others hear ``call.participant_joined``."""
    call_id = data["call_id"]
    join_fields = {name: value for name, value in data.items() if name != "call_id"}
    payload, routes = await _audited(
        connection,
        "call.join",
        _join,
        call_id=call_id,
        user=connection.user,
        channel_name=connection.channel_name,
        **join_fields,
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
    await _audited(
        connection, "call.leave", _leave, call_id=call_id, user=connection.user, channel_name=connection.channel_name
    )
    await connection.group_leave(call_group(call_id))
    connection.calls.discard(str(call_id))
    return {"call_id": str(call_id)}


# --- Ringing: initiate, accept, decline, hang up ----------------------------------------------
# The same services as REST's calls/initiate/, accept/, decline/ and hangup/, through the same
# scoped lookup (someone else's call is CALL_NOT_FOUND); the acks carry what REST answers.


def _call_body(call_id: UUID) -> dict[str, Any]:
    return CallSerializer(call_with_participants(call_id=call_id)).data


def _call_control_limits(user, *scopes: str) -> None:
    """Count a call-control message on the counters of the REST endpoints it stands for: every
    ``calls/`` endpoint's (``video_call``), and ``call_initiate`` for a ring, so REST and the
    socket share one budget (core.ratelimit)."""
    for scope in ("video_call", *scopes):
        throttle_user_scope(scope, user)


def _initiate(*, user, data: dict) -> dict[str, Any]:
    _call_control_limits(user, "call_initiate")
    placed = call_place(caller=user, **data)
    return placed_call_payload(placed, call_with_participants(call_id=placed.call.pk))


@handles("call.initiate", serializer=CallInitiateSerializer)
async def initiate(connection, data: dict) -> dict:
    """Ring someone. The ack is REST's answer: the ringing call with the caller's ICE servers.
    Both sides hear ``call.initiated``; once the callee accepts, the caller sends ``call.join``
    on the connection that carries the call (it answers the caller's media credentials)."""
    return await _audited(connection, "call.initiate", _initiate, user=connection.user, data=dict(data))


def _accept(*, user, call_id: UUID, channel_name: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    _call_control_limits(user)
    call = call_get_for_user(user=user, call_id=call_id)
    result = call_accept(call=call, user=user)
    presence_connection_enter_call(channel_name=channel_name, call_id=call.pk)
    call = call_with_participants_of(result.call)
    return join_payload(result, call), call_routes_of(call)


@handles("call.accept", serializer=CallIdSerializer)
async def accept(connection, data: dict) -> dict:
    """Answer a ringing call. The ack is REST's accept answer (the join payload), and this
    connection joins the call's room as after ``call.join``, so it may signal at once."""
    call_id = data["call_id"]
    payload, routes = await _audited(
        connection, "call.accept", _accept, call_id=call_id, user=connection.user, channel_name=connection.channel_name
    )
    await connection.group_join(call_group(call_id))
    connection.calls.add(str(call_id))
    _remember_routes(str(call_id), routes)
    return payload


def _decline(*, user, call_id: UUID, reason: str) -> dict[str, Any]:
    _call_control_limits(user)
    call = call_get_for_user(user=user, call_id=call_id)
    return _call_body(call_decline(call=call, user=user, reason=reason).pk)


@handles("call.decline", serializer=CallDeclineSocketSerializer)
async def decline(connection, data: dict) -> dict:
    """Refuse a ringing call (``reason``: ``declined``, the default, or ``busy``)."""
    return await _audited(
        connection, "call.decline", _decline, call_id=data["call_id"], user=connection.user, reason=data["reason"]
    )


def _hangup(*, user, call_id: UUID, channel_name: str) -> dict[str, Any]:
    _call_control_limits(user)
    call = call_get_for_user(user=user, call_id=call_id)
    call = call_hangup(call=call, user=user)
    presence_connection_leave_call(channel_name=channel_name, call_id=call.pk)
    return _call_body(call.pk)


@handles("call.hangup", serializer=CallIdSerializer)
async def hangup(connection, data: dict) -> dict:
    """End an ad-hoc call from either side (while it rings: the caller cancels, the callee
    declines). The ack is the call as REST's hang-up answers it."""
    call_id = data["call_id"]
    body = await _audited(
        connection, "call.hangup", _hangup, call_id=call_id, user=connection.user, channel_name=connection.channel_name
    )
    await connection.group_leave(call_group(call_id))
    connection.calls.discard(str(call_id))
    return body


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
    return await _audited(
        connection, "media.update", _media, call_id=data["call_id"], user=connection.user, changes=changes
    )


# A closed connection's calls are left after the reconnect grace by the presence clean-up the
# consumer always runs (presence.services ``presence_connection_close``), the same one the
# presence sweep gives a connection whose heartbeats stopped.


# --- Signaling ------------------------------------------------------------------------------


# Per process, shared by its connections: call id -> (expires at, routes). Filled by each
# socket's call.join, dropped whenever an event about the call passes through any connection
# here, and read again when a participant signals someone the routes do not reach yet (they
# may have just connected, on another process). All of them are dropped when a connection's
# channel layer fails here (``forget_all_routes``): the events that would have dropped them may
# be lost, a Redis restart losing a ``call.ended`` for instance.
#
# The lifetime is only a safety net for a lost event (the channel layer is at-most-once): what
# it bounds is how long someone who left a call could still signal into it if the event about
# their leaving was lost. Read again every 30 s, 1,000 calls cost a process 33 reads a second;
# every 2 minutes, 8. Past it the routes are still used while they are read again in the
# background, so a busy process never holds a call's signals behind a database read; the
# lifetime varies by a quarter either way so that calls set up together on the hour are not all
# read again in the same second.
_ROUTES: dict[str, tuple[float, dict[str, list[str]]]] = {}
# Bumped whenever a call's routes are dropped: a read that started before does not store its
# (possibly older) result.
_GENERATIONS: dict[str, int] = {}
_REFRESHING: set[str] = set()
# Bumped whenever this process's channel layer fails: every route cached before is dropped, as
# is any read in flight (the events that would have dropped them may be lost).
_LAYER_EPOCH = 0


def _remember_routes(call_id: str, routes: dict[str, list[str]], generation: tuple[int, int] | None = None) -> None:
    if generation is not None and generation != (_LAYER_EPOCH, _GENERATIONS.get(call_id, 0)):
        return
    now = time.monotonic()
    if len(_ROUTES) > 10_000:
        for stale in [key for key, (expires, _) in _ROUTES.items() if expires <= now]:
            del _ROUTES[stale]
    _ROUTES[call_id] = (now + ROUTE_TTL_SECONDS * random.uniform(0.75, 1.25), routes)  # noqa: S311 - not a secret


async def _read_routes(call_id: str) -> dict[str, list[str]]:
    generation = (_LAYER_EPOCH, _GENERATIONS.get(call_id, 0))
    routes = await database_call(call_routes, call_id=call_id)
    _remember_routes(call_id, routes, generation)
    return routes


async def _refresh_routes(call_id: str) -> None:
    try:
        await _read_routes(call_id)
    except Exception:
        logger.exception("Could not read a call's routes again")
    finally:
        _REFRESHING.discard(call_id)


def _cached_routes(call_id: str) -> dict[str, list[str]] | None:
    """The call's routes if this process has them; past their lifetime they are read again in
    the background (once at a time per call) and meanwhile still answer."""
    cached = _ROUTES.get(call_id)
    if cached is None:
        return None
    if time.monotonic() >= cached[0] and call_id not in _REFRESHING:
        _REFRESHING.add(call_id)
        asyncio.get_running_loop().create_task(_refresh_routes(call_id))
    return cached[1]


async def _routes(call_id: str, *, refetch: bool = False) -> dict[str, list[str]]:
    cached = None if refetch else _cached_routes(call_id)
    if cached is not None:
        return cached
    return await _read_routes(call_id)


@on_event
def forget_routes(connection, event: dict) -> None:
    call_id = event["data"].get("call_id") if isinstance(event.get("data"), dict) else None
    if call_id is not None:
        call_id = str(call_id)
        _ROUTES.pop(call_id, None)
        if len(_GENERATIONS) > 10_000:  # keep only calls still cached or being read
            for ended in [key for key in _GENERATIONS if key not in _ROUTES and key not in _REFRESHING]:
                del _GENERATIONS[ended]
        _GENERATIONS[call_id] = _GENERATIONS.get(call_id, 0) + 1


# Tasks started by event hooks, kept until done (the loop holds only weak references).
_HOOK_TASKS: set[asyncio.Task] = set()


async def _leave_after_removal(connection, call_id: str) -> None:
    await connection.group_leave(call_group(call_id))
    await database_call(presence_connection_leave_call, channel_name=connection.channel_name, call_id=call_id)


@on_event
def leave_when_removed(connection, event: dict) -> None:
    """Someone removed from a call (by its host or by staff) is told on their own group; each of
    their sockets in the call then leaves it: no more of its events, no longer in the call
    (presence, the socket's idle rule)."""
    if event.get("type") != "call.participant_removed" or not isinstance(event.get("data"), dict):
        return
    call_id = str(event["data"].get("call_id"))
    if call_id not in getattr(connection, "calls", ()):
        return
    connection.calls.discard(call_id)
    task = asyncio.get_running_loop().create_task(_leave_after_removal(connection, call_id))
    _HOOK_TASKS.add(task)
    task.add_done_callback(_HOOK_TASKS.discard)


@on_layer_lost
def forget_all_routes(connection) -> None:
    """This process's channel layer failed (Redis restarted, or its connection dropped): events
    about any call — ``call.ended``, a participant leaving — may have been lost on the way here, so
    no cached route is trusted any more. Each call's routes are read again on its next signal."""
    global _LAYER_EPOCH
    _LAYER_EPOCH += 1
    _ROUTES.clear()


# Canonical form, as clients send it: checked with a regex, not a UUID object per message.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(data: dict, name: str) -> str:
    value = data.get(name)
    if isinstance(value, str):
        if _CANONICAL_UUID.fullmatch(value):
            return value
        try:
            return str(UUID(value))
        except ValueError:
            pass
    _invalid(name, "Must be a UUID.")


def _invalid(name: str, message: str, code: str = "invalid"):
    raise InvalidInput(details={name: [{"message": message, "code": code}]})


class _Signal(NamedTuple):
    call_id: str
    to: str
    sender: str
    text: str  # the event as the addressee receives it


def _addressee_unknown(routes: dict[str, list[str]], signal: _Signal) -> bool:
    """The sender is connected but the routes reach no connection of the addressee: they may
    have just connected, on another process, so the routes are read again."""
    return signal.sender in routes and not routes.get(signal.to)


def _addressee_channels(routes: dict[str, list[str]], signal: _Signal) -> list[str]:
    """The rule: the sender and the addressee are both connected participants of the call
    (joined, the call ongoing: video_calls.selectors.routes)."""
    if signal.sender not in routes or signal.to not in routes or signal.to == signal.sender:
        raise PermissionDenied("Signals go only between connected participants of the same call.")
    channels = routes[signal.to]
    if not channels:
        raise PeerNotConnected()
    return channels


def _signal(event_type: str, payload_of: Callable[[dict], dict[str, Any]]):
    """Register a signaling message type; ``payload_of`` validates the data and returns what is
    relayed besides ``call_id`` and ``from``. The ordinary handler reads the routes from the
    database when it must; the direct one (realtime/registry.py) answers from cached routes only
    and leaves the rest to the ordinary one. Both apply the same rule."""

    def parse(connection, data: dict) -> _Signal:
        call_id, to = _uuid(data, "call_id"), _uuid(data, "to")
        sender = connection.user_id
        payload = {"call_id": call_id, "from": sender, **payload_of(data)}
        if call_id not in connection.calls:
            # Not joined over this connection (or left): refused before any route is read, so
            # a socket that never joined cannot make the server read a call's routes again.
            raise PermissionDenied("Join the call on this connection before signaling in it.")
        return _Signal(call_id, to, sender, protocol.encode(event_type, payload))

    def direct(connection, data: dict) -> tuple[list[str], str] | None:
        signal = parse(connection, data)
        routes = _cached_routes(signal.call_id)
        if routes is None or _addressee_unknown(routes, signal):
            return None
        return _addressee_channels(routes, signal), signal.text

    async def handle(connection, data: dict) -> None:
        signal = parse(connection, data)
        routes = await _routes(signal.call_id)
        if _addressee_unknown(routes, signal):
            routes = await _routes(signal.call_id, refetch=True)
        for channel in _addressee_channels(routes, signal):
            await connection.deliver(channel, signal.text)

    handles(event_type, direct=direct)(handle)
    return handle


def _sdp(data: dict) -> dict[str, Any]:
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        _invalid("sdp", "A session description is required.", "required")
    if len(sdp) > MAX_SDP_CHARS:
        _invalid("sdp", f"At most {MAX_SDP_CHARS} characters.", "max_length")
    return {"sdp": sdp}


def _ice(data: dict) -> dict[str, Any]:
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
    return {"candidates": candidates}


offer = _signal("signal.offer", _sdp)
answer = _signal("signal.answer", _sdp)
ice = _signal("signal.ice", _ice)

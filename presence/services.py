"""Presence writes: connections opening and closing, heartbeats, chosen statuses, the sweep.

The status others see is derived in one place (``_derive_status``) and stored, so reads are a
single row; whenever it changes, ``presence.updated`` goes to the user's own connections and to
the people in a care relationship with them (never to other patients).
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Role, User
from core.compiled import CompiledQuery
from core.events import send_on_commit, user_group
from core.exceptions import InvalidInput
from presence.models import CHOOSABLE_STATUSES, PresenceConnection, PresenceStatus, UserPresence
from sessions.selectors import care_relation_ids


def _joined_live_call(user_id) -> QuerySet:
    from video_calls.models import LIVE_CALL_STATUSES, CallParticipant, ParticipantStatus

    return CallParticipant.objects.filter(
        user_id=user_id, status=ParticipantStatus.JOINED, call__status__in=LIVE_CALL_STATUSES
    ).only("pk")[:1]


# The two reads every connection's opening makes, compiled once (core/compiled.py).
_in_a_call = CompiledQuery(_joined_live_call, "user_id")
_presence_locked: CompiledQuery[UserPresence] = CompiledQuery(
    lambda user_id: UserPresence.objects.select_for_update().filter(user_id=user_id), "user_id"
)


def _derive_status(user: User, chosen: str, *, connected: bool = False) -> str:
    """``connected``: the caller knows the user has a connection (it just opened one, in this
    transaction, so no one else can have dropped it), and the check is skipped."""
    if not connected and not PresenceConnection.objects.filter(user=user).exists():
        return PresenceStatus.OFFLINE
    if chosen == PresenceStatus.DO_NOT_DISTURB:
        return PresenceStatus.DO_NOT_DISTURB
    if _in_a_call.exists(user_id=user.pk):
        return PresenceStatus.BUSY
    return chosen


def presence_payload(presence: UserPresence) -> dict:
    return {
        "user_id": str(presence.user_id),
        "status": presence.status,
        "last_seen_at": presence.last_seen_at.isoformat() if presence.last_seen_at else None,
    }


@transaction.atomic(savepoint=False)  # part of its caller's transaction: no savepoint round trips
def presence_refresh(*, user: User, connected: bool = False) -> UserPresence:
    """Recompute what others see of ``user`` and tell them if it changed. Called after any
    change that may affect it: connections, chosen status, joining or leaving a call.
    ``connected``: see ``_derive_status``. What else derives the status is read after the lock,
    never in the locking statement: a concurrent change (another connection closing) committed
    while this waited for the lock must be seen."""
    presence = _presence_locked.first(user_id=user.pk)
    if presence is None:  # the user's first connection ever
        presence, _ = UserPresence.objects.select_for_update().get_or_create(user=user)
    presence.user = user  # already at hand: _announce needs it
    status = _derive_status(user, presence.chosen_status, connected=connected)
    if status != presence.status:
        now = timezone.now()
        # An update of the row rather than ``save()``: every connection's opening comes here.
        UserPresence.objects.filter(pk=presence.pk).update(status=status, last_seen_at=now, updated_at=now)
        presence.status, presence.last_seen_at, presence.updated_at = status, now, now
        _announce(presence)
    return presence


def _care_relations_of(role: str) -> CompiledQuery[User]:
    """``care_relation_ids`` of a user with ``role``, compiled once: every change of what others
    see (each connection's opening, on the hour) is announced to them."""
    return CompiledQuery(
        lambda user_id: User.objects.filter(pk__in=care_relation_ids(user=User(pk=user_id, role=role))).only("pk"),
        "user_id",
    )


# Only patients and doctors have care relations (sessions.selectors ``care_relation_ids``).
_care_relations = {role: _care_relations_of(role) for role in (Role.PATIENT, Role.DOCTOR)}


def _announce(presence: UserPresence) -> None:
    """``presence.updated`` to the user's own connections and their care relations, on commit."""
    relations = _care_relations.get(presence.user.role)
    related = relations.all(user_id=presence.user_id) if relations is not None else []
    audience = {presence.user_id, *(user.pk for user in related)}
    send_on_commit([user_group(pk) for pk in audience], "presence.updated", presence_payload(presence))


def presence_refresh_on_commit(*, user_id) -> None:
    """Refresh once the current transaction commits, when the change it depends on (a joined
    or left call) is visible."""

    def refresh() -> None:
        user = User.objects.filter(pk=user_id).first()
        if user is not None:
            presence_refresh(user=user)

    transaction.on_commit(refresh)


@transaction.atomic
def presence_connection_open(*, user: User, channel_name: str) -> UserPresence:
    """Count a new connection (its channel name is new: the channel layer makes one per
    connection). Every process's connections are rows, so presence holds across processes."""
    now = timezone.now()
    PresenceConnection.objects.create(user=user, channel_name=channel_name, opened_at=now, last_heartbeat_at=now)
    return presence_refresh(user=user, connected=True)


def _connections_gone(gone: Iterable[tuple[Any, Any]]) -> None:
    """The clean-up every ended connection gets, whether its socket closed or the sweep dropped
    it: ``gone`` is ``(user id, call id)`` for each call one of the user's connections was in,
    and the user leaves each after the reconnect grace unless they are back in it
    (video_calls.services.rooms ``calls_leave_after_grace``)."""
    from video_calls.services.rooms import calls_leave_after_grace

    calls_by_user: dict[Any, set[Any]] = {}
    for user_id, call_id in gone:
        if call_id is not None:
            calls_by_user.setdefault(user_id, set()).add(call_id)
    for user_id, call_ids in calls_by_user.items():
        calls_leave_after_grace(user_id=user_id, call_ids=call_ids)


@transaction.atomic
def presence_connection_close(*, user: User, channel_name: str, call_ids: Iterable = ()) -> UserPresence:
    """The connection closed: it no longer counts, and the user leaves the calls it was in
    (``call_ids``, those the connection joined, besides the one its row points at) after the
    reconnect grace."""
    connection = PresenceConnection.objects.filter(channel_name=channel_name)
    in_call = list(connection.exclude(call=None).values_list("call_id", flat=True))
    connection.delete()
    _connections_gone((user.pk, call_id) for call_id in {*in_call, *call_ids})
    return presence_refresh(user=user)


def presence_connection_enter_call(*, channel_name: str, call_id) -> None:
    """Signals to this user in the call now go to this connection (see video_calls.selectors.routes)."""
    PresenceConnection.objects.filter(channel_name=channel_name).update(call_id=call_id)


def presence_connection_leave_call(*, channel_name: str, call_id) -> None:
    PresenceConnection.objects.filter(channel_name=channel_name, call_id=call_id).update(call=None)


def presence_heartbeat(*, channel_name: str) -> bool:
    """Keep a connection live. False if the sweep already dropped it (the client should
    reconnect to be counted again)."""
    return PresenceConnection.objects.filter(channel_name=channel_name).update(last_heartbeat_at=timezone.now()) == 1


@transaction.atomic
def presence_set_status(*, user: User, status: str) -> UserPresence:
    if status not in CHOOSABLE_STATUSES:
        raise InvalidInput(
            details={
                "status": [{"message": f"Choose one of {', '.join(CHOOSABLE_STATUSES)}.", "code": "invalid_choice"}]
            }
        )
    UserPresence.objects.update_or_create(user=user, defaults={"chosen_status": status})
    return presence_refresh(user=user)


@transaction.atomic
def presence_sweep(*, now=None) -> int:
    """Drop connections whose heartbeats stopped (a crashed or killed process, a lost network)
    and mark the users left without a live connection offline, each in one bulk statement; then
    tell their care relations. A dropped connection gets the clean-up of a closed one: its user
    leaves the call it was in after the reconnect grace, unless back in it by then. Returns how
    many connections were dropped."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS)
    stale = PresenceConnection.objects.filter(last_heartbeat_at__lt=cutoff)
    swept = list(stale.values_list("user_id", "call_id"))
    user_ids = {user_id for user_id, _ in swept}
    dropped, _ = stale.delete()
    # A connection that heartbeat between the two statements survives; the leave scheduled for
    # its call then finds it there and changes nothing.
    _connections_gone(swept)
    gone_offline = (
        UserPresence.objects.filter(user_id__in=user_ids)
        .exclude(status=PresenceStatus.OFFLINE)
        .exclude(user_id__in=PresenceConnection.objects.values("user_id"))
    )
    offline_ids = list(gone_offline.values_list("user_id", flat=True))
    UserPresence.objects.filter(user_id__in=offline_ids).update(
        status=PresenceStatus.OFFLINE, last_seen_at=now, updated_at=now
    )
    for presence in UserPresence.objects.filter(user_id__in=offline_ids).select_related("user"):
        _announce(presence)
    return dropped

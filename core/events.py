"""Realtime fan-out from the domain.

Services call ``send_on_commit`` with the groups that should hear about a change; the event is
sent only after the surrounding transaction commits, so nobody is told about a change that
rolled back. REST views, WebSocket consumers and Celery tasks all reach clients this way.

Group names: ``user.<id>`` covers every connection of one user; ``call.<id>`` every
participant connection of one call. Event names and payloads are listed in docs/realtime.md.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def user_group(user_id: Any) -> str:
    return f"user.{user_id}"


def call_group(call_id: Any) -> str:
    return f"call.{call_id}"


def send_now(groups: Iterable[str], event_type: str, data: dict[str, Any]) -> None:
    """Send an event to groups immediately. The channel layer is at-most-once: a failure is
    logged, never raised into the business transaction that already committed."""
    layer = get_channel_layer()
    if layer is None:
        return
    # One id for all groups: a connection in several of them (a user's group and a call's)
    # gets the event once.
    message = {"type": "domain.event", "event_id": uuid.uuid4().hex, "event": {"type": event_type, "data": data}}
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # a broken layer must not turn a committed change into a 500
            logger.exception("Could not send %s to a group", event_type)


def send_on_commit(groups: Iterable[str], event_type: str, data: dict[str, Any]) -> None:
    """Queue an event for the groups once the current transaction commits."""
    groups = list(groups)
    transaction.on_commit(lambda: send_now(groups, event_type, data))


def close_user_connections_on_commit(user_id: Any) -> None:
    """After commit, close every open WebSocket of the user (signed out everywhere, suspended)."""

    def close() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(user_group(user_id), {"type": "connection.revoke"})
        except Exception:
            logger.exception("Could not close a user's connections")

    transaction.on_commit(close)

"""The audit trail of socket messages that read or write health data.

A socket message is audited as a request is (audit/middleware.py): one entry per message, in
the same transaction as what the message does, or after it for a refused or failed attempt.
An entry names the message type as its route (``ws:chat.send``), ``WS`` as its method and the
socket's path; the actor, IP address, user agent and request id are the connection's.

A handler runs its domain function through ``audited_database_call`` instead of
``database_call``::

    return await audited_database_call(
        connection, "chat.send", _send,
        action=AuditAction.CREATE, object_type="message", object_id_of=lambda ack: ack["message"]["id"],
        user=connection.user, data=dict(data),
    )

(everything but ``audited_call``'s own keywords goes to the operation).

1. the domain function and the ``allowed`` entry run in one transaction: an entry that cannot be
   written takes the action with it, and an action that rolls back takes its entry;
2. an ``ApplicationError`` is recorded after that transaction, ``denied`` for 401, 403, 404 and
   429 and ``failed`` for the rest, and raised again for the consumer to answer;
3. a dependency that is down (core/outages.py) leaves no entry, as over HTTP; any other
   exception is a ``failed`` attempt with status 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from rest_framework.throttling import BaseThrottle

from audit.models import AuditOutcome
from audit.services import audit_record
from core.events import database_call
from core.exceptions import ApplicationError
from core.outages import outage_of

logger = logging.getLogger(__name__)

SOCKET_METHOD = "WS"
_DENIED_STATUSES = frozenset({401, 403, 404, 429})


@dataclass(frozen=True)
class SocketAccess:
    """Who sends a socket message, from where: what an entry needs of the connection."""

    actor: Any
    message_type: str
    path: str
    request_id: str
    ip_address: str | None
    user_agent: str


class _Headers:
    """The handshake as DRF's throttles read a request: X-Forwarded-For behind ``NUM_PROXIES``
    proxies, the peer's address otherwise (the same address an HTTP entry records)."""

    def __init__(self, scope: dict) -> None:
        self.headers = {
            name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers") or ()
        }
        client = scope.get("client") or (None, None)
        self.META = {"REMOTE_ADDR": client[0] or ""}
        self.user_agent = self.headers.get("user-agent", "")


_ip_of = BaseThrottle().get_ident


def socket_access(connection: Any, message_type: str) -> SocketAccess:
    scope = getattr(connection, "scope", None) or {}
    handshake = _Headers(scope)
    return SocketAccess(
        actor=connection.user,
        message_type=message_type,
        path=scope.get("path", "")[:300],
        request_id=str(getattr(connection, "request_id", "") or ""),
        ip_address=_ip_of(handshake) or None,
        user_agent=handshake.user_agent,
    )


def record_socket_access(
    access: SocketAccess,
    *,
    action: str,
    object_type: str,
    outcome: str,
    object_id: Any = "",
    status_code: int | None = None,
    record_type: str = "",
    record_ids: Any = (),
) -> None:
    audit_record(
        actor=access.actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        record_type=record_type,
        record_ids=record_ids,
        status_code=status_code,
        method=SOCKET_METHOD,
        route=f"ws:{access.message_type}",
        path=access.path,
        request_id=access.request_id,
        ip_address=access.ip_address,
        user_agent=access.user_agent,
    )


def audited_call(
    *,
    operation: Callable[..., Any],
    access: SocketAccess,
    action: str,
    object_type: str,
    object_id: Any = "",
    object_id_of: Callable[[Any], Any] | None = None,
    record_type: str = "",
    record_ids: Any = (),
    **kwargs: Any,
) -> Any:
    """``operation(**kwargs)`` with its audit entry (see the module's steps). Runs in the database
    thread: hand it to ``core.events.database_call``."""
    described = {"action": action, "object_type": object_type, "record_type": record_type, "record_ids": record_ids}
    try:
        with transaction.atomic():
            result = operation(**kwargs)
            entry_id = object_id_of(result) if object_id_of is not None else object_id
            record_socket_access(access, **described, object_id=entry_id, outcome=AuditOutcome.ALLOWED, status_code=200)
            return result
    except ApplicationError as error:
        status_code = error.status
        outcome = AuditOutcome.DENIED if status_code in _DENIED_STATUSES else AuditOutcome.FAILED
        _record_attempt(access, described, object_id, outcome, status_code)
        raise
    except Exception as error:
        if outage_of(error) is None:
            _record_attempt(access, described, object_id, AuditOutcome.FAILED, 500)
        raise


def _record_attempt(
    access: SocketAccess, described: dict[str, Any], object_id: Any, outcome: str, status_code: int
) -> None:
    try:
        record_socket_access(access, **described, object_id=object_id, outcome=outcome, status_code=status_code)
    except DatabaseError:
        logger.warning("Could not record a %s attempt of %s in the audit trail", status_code, access.message_type)


async def audited_database_call(
    connection: Any, message_type: str, operation: Callable[..., Any], **kwargs: Any
) -> Any:
    """``core.events.database_call`` of ``operation`` with its audit entry (``audited_call``), for
    the socket message ``message_type`` of ``connection``."""
    return await database_call(
        audited_call, operation=operation, access=socket_access(connection, message_type), **kwargs
    )

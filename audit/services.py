"""Writes of the audit trail: one entry per audited request, and the retention prune.

``audit_record`` is called by audit/middleware.py inside the transaction of the request it
records (so the entry is gone if the action rolls back), or after it when the request was
refused or failed (so the attempt is kept although nothing it did is). Tasks and consumers that
touch health data outside a request call it too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pgtrigger
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry, AuditEntryQuerySet
from core import metrics

logger = logging.getLogger(__name__)

_PROTECTION = "audit.AuditEntry:audit_append_only"


def audit_record(
    *,
    actor: Any,
    action: str,
    object_type: str,
    outcome: str,
    object_id: Any = "",
    record_type: str = "",
    record_ids: Iterable[Any] = (),
    status_code: int | None = None,
    method: str = "",
    route: str = "",
    path: str = "",
    request_id: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> AuditEntry:
    """One INSERT, whatever the number of records a list showed (their ids go in one column).
    Counted in the metrics (``telehealth_audit_rows_written``) once it is committed."""
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    entry = AuditEntry.objects.create(
        actor_id=actor_id,
        action=action,
        object_type=object_type[:64],
        object_id=str(object_id or "")[:64],
        record_type=record_type,
        record_ids=[str(record_id) for record_id in record_ids],
        outcome=outcome,
        status_code=status_code,
        method=method[:8],
        route=route[:100],
        path=path[:300],
        request_id=request_id[:64],
        ip_address=ip_address or None,
        user_agent=user_agent[:300],
    )
    transaction.on_commit(metrics.audit_rows_written.inc)
    return entry


def audit_cutoff(*, now: datetime | None = None) -> datetime:
    """Entries older than this are past ``AUDIT_RETENTION_DAYS``."""
    return (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)


@transaction.atomic
def audit_prune(*, now: datetime | None = None) -> int:
    """Delete the entries past retention in one bulk ``DELETE``; returns how many.

    This is the one path past the append-only guards, on purpose and in one place:
    ``pgtrigger.ignore`` lifts the PostgreSQL protection trigger for the statements of this
    block only (a transaction-local setting), and the queryset's own refusal is stepped over by
    calling the plain ``QuerySet.delete``.
    """
    expired = AuditEntry.objects.filter(occurred_at__lt=audit_cutoff(now=now))
    with pgtrigger.ignore(_PROTECTION):
        deleted, _ = super(AuditEntryQuerySet, expired).delete()
    return deleted

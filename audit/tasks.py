"""Periodic work of the audit trail (scheduled in config/settings/audit.py)."""

import logging

from celery import shared_task

from audit.services import audit_prune

logger = logging.getLogger(__name__)


@shared_task
def audit_prune_expired() -> int:
    """Entries older than ``AUDIT_RETENTION_DAYS`` are deleted in one bulk statement."""
    count = audit_prune()
    if count:
        logger.info("Pruned %d audit entries past retention", count)
    return count

"""Django's ``flush``, which empties every table with one ``TRUNCATE`` on PostgreSQL.

The audit table refuses ``TRUNCATE`` (audit/models.py), so a flush fails there, as it should on
a clinic's database. Where ``AUDIT_FLUSH_ALLOWED`` is on (the test suite: its transactional
tests flush between tests) the refusal is lifted for the flush's own statements.
"""

from typing import Any

import pgtrigger
from django.conf import settings
from django.core.management.commands import flush

_NO_TRUNCATE = "audit.AuditEntry:audit_no_truncate"


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        if not settings.AUDIT_FLUSH_ALLOWED:
            super().handle(**options)
            return
        with pgtrigger.ignore(_NO_TRUNCATE):
            super().handle(**options)

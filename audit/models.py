"""The audit entry: who did what to which record, with what outcome, from where, and when.

An entry holds ids only, never health data, so the trail itself can be shown to any staff member
and kept for years. It is append-only at three levels:

1. the model refuses ``save()`` of an existing row and ``delete()``; its queryset refuses
   ``update()`` and ``delete()`` (so ``bulk_update`` too);
2. the admin is read-only (audit/admin.py);
3. on PostgreSQL a django-pgtrigger protection trigger refuses ``UPDATE`` and ``DELETE`` of any
   row, raw SQL included, and a statement-level trigger refuses ``TRUNCATE``. Only the retention prune (audit/services.py ``audit_prune``) passes
   it, under ``pgtrigger.ignore`` for that one statement.

SQLite (the embedded default for a laptop and the tests) gets levels 1 and 2 only:
django-pgtrigger installs triggers on PostgreSQL alone.
"""

from __future__ import annotations

from typing import Any, NoReturn

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(RuntimeError):
    """Raised by any attempt to change or remove an audit entry through the ORM."""


class AuditAction(models.TextChoices):
    LIST = "list"
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DOWNLOAD = "download"
    EXPORT = "export"


class AuditOutcome(models.TextChoices):
    ALLOWED = "allowed"
    # Refused before anything was done: not signed in, not allowed, not visible (404), throttled.
    DENIED = "denied"
    # Allowed to try, but the action did not happen: invalid input, a conflict, a server error.
    FAILED = "failed"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted; audit_prune removes expired ones.")


class AuditEntry(models.Model):
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When, in UTC.")
    # No database constraint and no cascade: the trail outlives the account it names, and
    # deleting a user must never reach the trail (the trigger would refuse it anyway).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        help_text="Who, when signed in.",
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64, help_text="The kind of record addressed: session, call, message…")
    object_id = models.CharField(max_length=64, blank=True, help_text="The record addressed or created, if any.")
    record_type = models.CharField(max_length=64, blank=True, help_text="The kind of the records a list showed.")
    record_ids = models.JSONField(default=list, blank=True, help_text="The ids of the records a list showed.")
    outcome = models.CharField(max_length=8, choices=AuditOutcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(max_length=8, blank=True)
    route = models.CharField(max_length=100, blank=True, help_text="The URL name, e.g. conversation-messages.")
    # The path without its query string: ids only (a search term could be health data).
    path = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
        ]
        triggers = [
            pgtrigger.Protect(name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            # TRUNCATE fires no row trigger: a statement-level one refuses it (the table owner can
            # still drop the trigger; the application's role should not own the table, see
            # docs/operations.md).
            pgtrigger.Trigger(
                name="audit_no_truncate",
                level=pgtrigger.Statement,
                when=pgtrigger.Before,
                operation=pgtrigger.Truncate,
                func="RAISE EXCEPTION 'pgtrigger: Cannot truncate rows from % table', TG_TABLE_NAME;",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_type} {self.object_id} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted; audit_prune removes expired ones.")

"""No one changes or removes an audit entry: not the ORM, not the admin, and on PostgreSQL not
raw SQL either. Only the retention prune passes, and only for expired entries."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AppendOnlyError, AuditEntry
from audit.services import audit_prune, audit_record
from audit.tasks import audit_prune_expired
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def entry_at(instant: datetime) -> AuditEntry:
    with time_machine.travel(instant, tick=False):
        return audit_record(actor=None, action="read", object_type="session", object_id="s-1", outcome="allowed")


@pytest.fixture
def entry() -> AuditEntry:
    return entry_at(NOW)


def test_the_orm_refuses_to_change_or_delete_an_entry(entry):
    entry.outcome = "denied"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(outcome="denied")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnlyError), transaction.atomic():
        AuditEntry.objects.bulk_update([entry], ["outcome"])

    assert AuditEntry.objects.get(pk=entry.pk).outcome == "allowed"


def test_the_admin_shows_entries_and_offers_no_add_change_or_delete(entry):
    browser = Client()
    browser.force_login(StaffFactory(is_superuser=True))
    page = f"/admin/audit/auditentry/{entry.pk}/change/"

    listing = browser.get("/admin/audit/auditentry/?outcome__exact=allowed&action__exact=read")
    detail = browser.get(page)
    changed = browser.post(page, {"outcome": "denied"})
    added = browser.get("/admin/audit/auditentry/add/")
    deleted = browser.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"})
    bulk_deleted = browser.post(
        "/admin/audit/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )

    assert (listing.status_code, detail.status_code) == (200, 200)
    assert "s-1" in listing.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert (changed.status_code, added.status_code, deleted.status_code) == (403, 403, 403)
    assert bulk_deleted.status_code in (200, 302)
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "allowed"


@pytest.mark.postgres
def test_postgresql_refuses_raw_sql_updates_and_deletes(entry):
    for statement in (
        "UPDATE audit_auditentry SET outcome = 'denied' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="pgtrigger: Cannot"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])

    assert AuditEntry.objects.get(pk=entry.pk).outcome == "allowed"


@pytest.mark.postgres
def test_postgresql_refuses_to_truncate_the_trail(entry):
    with (
        pytest.raises(DatabaseError, match="pgtrigger: Cannot truncate"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditentry")

    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.postgres
def test_a_flush_empties_the_trail_only_where_it_is_allowed(entry, settings):
    from django.core.management import CommandError, call_command

    settings.AUDIT_FLUSH_ALLOWED = False
    with pytest.raises(CommandError) as refused, transaction.atomic():
        call_command("flush", interactive=False, verbosity=0)
    assert "pgtrigger: Cannot truncate" in str(refused.value.__cause__)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()

    settings.AUDIT_FLUSH_ALLOWED = True
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEntry.objects.exists()


def test_the_prune_removes_only_entries_past_retention_in_one_statement(settings):
    settings.AUDIT_RETENTION_DAYS = 2190
    expired = [entry_at(NOW - timedelta(days=2191)), entry_at(NOW - timedelta(days=2200))]
    kept = [entry_at(NOW - timedelta(days=2189)), entry_at(NOW)]

    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
        pruned = audit_prune()

    assert pruned == len(expired)
    assert len([query for query in captured if "DELETE" in query["sql"]]) == 1
    assert set(AuditEntry.objects.values_list("pk", flat=True)) == {entry.pk for entry in kept}


def test_the_periodic_task_prunes_with_the_default_of_six_years(settings):
    assert settings.AUDIT_RETENTION_DAYS == 2190
    assert settings.CELERY_BEAT_SCHEDULE["audit-prune"]["task"] == "audit.tasks.audit_prune_expired"
    entry_at(NOW - timedelta(days=2191))
    kept = entry_at(NOW - timedelta(days=2000))

    with time_machine.travel(NOW, tick=False):
        assert audit_prune_expired.delay().get() == 1

    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [kept.pk]


def test_only_the_prune_lifts_the_protection_trigger():
    """The one controlled way past the trigger stays in one function (docs/operations.md)."""
    root = Path(__file__).resolve().parents[2]
    sources = [
        path
        for folder in (
            "accounts",
            "audit",
            "config",
            "core",
            "messaging",
            "presence",
            "realtime",
            "sessions",
            "video_calls",
        )
        for path in (root / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]

    lifting = sorted(str(path.relative_to(root)) for path in sources if "pgtrigger.ignore(" in path.read_text())

    # the prune, and the flush where AUDIT_FLUSH_ALLOWED is on (the test suite)
    assert lifting == ["audit/management/commands/flush.py", "audit/services.py"]

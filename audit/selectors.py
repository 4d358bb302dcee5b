"""Reads of the audit trail, for staff only (the API and the admin ask the same way)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from accounts.models import User
from audit.models import AuditAction, AuditEntry, AuditOutcome
from core.exceptions import PermissionDenied
from core.filters import UtcIsoDateTimeFilter


class AuditEntryFilter(django_filters.FilterSet):
    actor = django_filters.UUIDFilter(field_name="actor_id", help_text="Entries of this user.")
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices, help_text="Repeat for several.")
    outcome = django_filters.MultipleChoiceFilter(choices=AuditOutcome.choices, help_text="Repeat for several.")
    object_type = django_filters.CharFilter(help_text="session, call, conversation, message, profile…")
    object_id = django_filters.CharFilter(help_text="The record a request addressed (with object_type).")
    route = django_filters.CharFilter(help_text="The URL name, e.g. conversation-messages.")
    ip_address = django_filters.CharFilter()
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", help_text="At or after.")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt", help_text="Before.")

    class Meta:
        model = AuditEntry
        fields: list[str] = []


def audit_entry_list_for_user(*, user: User) -> QuerySet[AuditEntry]:
    """The whole trail, newest first, for clinic staff; anyone else is refused (403)."""
    if not user.is_clinic_staff:
        raise PermissionDenied("Only clinic staff may read the audit trail.")
    return AuditEntry.objects.order_by("-occurred_at", "-id")

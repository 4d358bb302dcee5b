"""Query filters of the session list (django-filter). Invalid values answer 400 VALIDATION_ERROR;
instants are compared in UTC whatever offset they were sent with (core/filters.py)."""

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from core.filters import UtcIsoDateTimeFilter
from sessions.models import PaymentStatus, Session, SessionStatus, SessionType
from sessions.selectors import user_time_zone


class SessionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SessionStatus.choices, help_text="Repeat for several.")
    payment_status = django_filters.MultipleChoiceFilter(choices=PaymentStatus.choices)
    session_type = django_filters.ChoiceFilter(choices=SessionType.choices)
    starts_after = UtcIsoDateTimeFilter(
        field_name="scheduled_start", lookup_expr="gte", help_text="Sessions starting at or after this instant."
    )
    starts_before = UtcIsoDateTimeFilter(
        field_name="scheduled_start", lookup_expr="lt", help_text="Sessions starting before this instant."
    )
    local_date = django_filters.DateFilter(
        method="filter_local_date",
        help_text="Sessions starting on this calendar day in the requester's profile time zone (UTC for staff).",
    )
    doctor = django_filters.UUIDFilter(field_name="doctor_id")
    patient = django_filters.UUIDFilter(field_name="patient_id")
    refund_due = django_filters.BooleanFilter(
        method="filter_refund_due", help_text="Paid sessions marked for refund and not yet refunded."
    )
    ordering = django_filters.OrderingFilter(
        fields=(("scheduled_start", "scheduled_start"), ("created_at", "created_at"), ("status", "status"))
    )

    class Meta:
        model = Session
        fields: list[str] = []

    def filter_local_date(self, queryset: QuerySet[Session], name: str, value: date) -> QuerySet[Session]:
        """A local day can be 23 or 25 hours long across a daylight-saving change: its bounds are
        the local midnights converted to UTC, not ``date`` plus 24 hours."""
        if value >= date.max:
            raise ValidationError({"local_date": ["Date out of range."]})
        zone = user_time_zone(self.request.user)
        try:  # in UTC: east of Greenwich, the first day of year 1 starts in year 0
            start = datetime.combine(value, time.min, tzinfo=zone).astimezone(UTC)
            end = datetime.combine(value + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        except OverflowError:
            raise ValidationError({"local_date": ["Date out of range."]}) from None
        return queryset.filter(scheduled_start__gte=start, scheduled_start__lt=end)

    def filter_refund_due(self, queryset: QuerySet[Session], name: str, value: bool) -> QuerySet[Session]:
        due = {"refund_requested_at__isnull": False, "payment_status": PaymentStatus.PAID}
        return queryset.filter(**due) if value else queryset.exclude(**due)

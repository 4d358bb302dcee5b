"""Query-string filters shared by the list endpoints.

``UtcIsoDateTimeFilter`` is django-filter's ISO 8601 filter with the instant converted to UTC
before it reaches the database. Python accepts UTC offsets up to ±23:59, PostgreSQL's
``timestamptz`` input only up to ±15:59, so ``?starts_after=2027-01-01T00:00:00+19:00`` was
sent as written and answered 500; in UTC it is an ordinary instant. An instant that falls
outside years 1 to 9999 once converted (``9999-12-31T23:00:00-05:00``) is a field error, as is an
offset of 24 hours or more, which does not parse.
"""

from datetime import UTC, datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    default_error_messages = {"out_of_range": "Date/time out of range once converted to UTC."}

    def to_python(self, value) -> datetime | None:
        instant = super().to_python(value)
        if instant is None:
            return None
        try:
            return instant.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField

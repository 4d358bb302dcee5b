"""Call history, call detail, quality samples and statistics, each scoped to who asks.

Everything starts from ``call_list_for_user`` (participant or initiator; staff see all), so a
call outside the caller's reach answers 404 ``CALL_NOT_FOUND``. The list's cost does not grow
with its length: participants come in one prefetch and the quality assessment is three
correlated subqueries in the page query itself, never a query per row.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from accounts.models import User
from core.exceptions import NotFound
from video_calls.models import (
    Call,
    CallEvent,
    CallKind,
    CallMedia,
    CallQualitySample,
    CallStatus,
    QualityGrade,
)
from video_calls.selectors.calls import call_list_for_user, call_list_own, participants_with_users
from video_calls.services.quality import quality_assess

# Worst last: the highest rank among a participant's samples is their worst grade.
GRADE_RANK: dict[str, int] = {grade: rank for rank, grade in enumerate(QualityGrade.values, start=1)}
RANK_GRADE: dict[int, str] = {rank: grade for grade, rank in GRADE_RANK.items()}

STATISTICS_PERIODS: dict[str, timedelta] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


def day_start(day: date) -> datetime:
    """Midnight UTC opening ``day``: date filters compare ``created_at`` with an index-friendly
    range instead of casting every row's timestamp to a date."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_after(day: date) -> datetime | None:
    """Midnight UTC closing ``day``; ``None`` for the last representable day (no upper bound)."""
    if day == date.max:
        return None
    return day_start(day + timedelta(days=1))


# --- History list ------------------------------------------------------------------------------


def _worst_participant_average(field: str) -> Subquery:
    """The highest per-participant average of ``field`` in the outer call: a call is as good as
    its worst leg, and taking the maximum per figure gives exactly the worst participant's
    assessment because the assessment only gets worse as a figure grows."""
    per_participant = (
        CallQualitySample.objects.filter(call=OuterRef("pk"), **{f"{field}__isnull": False})
        .values("participant")
        .annotate(average=Avg(field))
        .order_by("-average")
        .values("average")[:1]
    )
    return Subquery(per_participant, output_field=FloatField())


def _with_quality_figures(calls: QuerySet[Call]) -> QuerySet[Call]:
    return calls.annotate(
        worst_avg_rtt_ms=_worst_participant_average("rtt_ms"),
        worst_avg_packet_loss_percent=_worst_participant_average("packet_loss_percent"),
        worst_avg_jitter_ms=_worst_participant_average("jitter_ms"),
    )


def call_quality_assessment(call: Call) -> str | None:
    """The assessment of a call annotated by ``_with_quality_figures``."""
    return quality_assess(
        rtt_ms=call.worst_avg_rtt_ms,
        packet_loss_percent=call.worst_avg_packet_loss_percent,
        jitter_ms=call.worst_avg_jitter_ms,
    )


class CallHistoryFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise forms.ValidationError({"date_to": "Must be on or after date_from."}, code="invalid_range")
        return cleaned


class NullsLastOrderingFilter(django_filters.OrderingFilter):
    """Calls without a duration sort after the others in both directions, on every database
    (PostgreSQL and SQLite disagree on where NULL goes), and ties break on creation then id so
    pages never overlap."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        ordering = []
        for param in value:
            descending = param.startswith("-")
            expression = F(self.get_ordering_value(param).lstrip("-"))
            ordering.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
        return qs.order_by(*ordering, "-created_at", "-id")


class CallHistoryFilter(django_filters.FilterSet):
    """Filters of the history list; every invalid value is a 400 ``VALIDATION_ERROR``."""

    kind = django_filters.ChoiceFilter(choices=CallKind.choices, help_text="Session room or ad-hoc call.")
    media = django_filters.ChoiceFilter(choices=CallMedia.choices, help_text="Call type: video or voice.")
    status = django_filters.MultipleChoiceFilter(
        choices=CallStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    session = django_filters.UUIDFilter(field_name="session_id", help_text="Calls of this session.")
    date_from = django_filters.DateFilter(
        method="filter_date_from", help_text="Created on or after this day (YYYY-MM-DD, UTC)."
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to", help_text="Created on or before this day (YYYY-MM-DD, UTC)."
    )
    ordering = NullsLastOrderingFilter(
        fields=(("created_at", "created_at"), ("duration_seconds", "duration_seconds")),
        help_text="created_at, -created_at (default), duration_seconds or -duration_seconds.",
    )

    class Meta:
        model = Call
        fields = ["kind", "media", "status", "session", "date_from", "date_to"]
        form = CallHistoryFilterForm

    def filter_date_from(self, queryset: QuerySet[Call], name: str, value: date) -> QuerySet[Call]:
        return queryset.filter(created_at__gte=day_start(value))

    def filter_date_to(self, queryset: QuerySet[Call], name: str, value: date) -> QuerySet[Call]:
        end = day_after(value)
        return queryset if end is None else queryset.filter(created_at__lt=end)


def call_history_list(*, user: User) -> QuerySet[Call]:
    """The calls ``user`` may see, newest first, with everything a history row shows.

    Filtering and ordering are applied by ``CallHistoryFilter`` on top; the cost per page is
    one query for the rows (quality figures included) and one for their participants.
    """
    calls = (
        call_list_for_user(user=user)
        .select_related("initiated_by")
        .prefetch_related(participants_with_users())
        .order_by("-created_at", "-id")
    )
    return _with_quality_figures(calls)


# --- Detail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantQualitySummary:
    sample_count: int
    avg_rtt_ms: float | None
    min_rtt_ms: int | None
    max_rtt_ms: int | None
    avg_packet_loss_percent: float | None
    avg_jitter_ms: float | None
    avg_audio_bitrate_kbps: float | None
    avg_video_bitrate_kbps: float | None
    avg_frame_rate: float | None
    worst_audio_quality: str | None
    worst_video_quality: str | None
    assessment: str | None


EMPTY_QUALITY_SUMMARY = ParticipantQualitySummary(
    sample_count=0,
    avg_rtt_ms=None,
    min_rtt_ms=None,
    max_rtt_ms=None,
    avg_packet_loss_percent=None,
    avg_jitter_ms=None,
    avg_audio_bitrate_kbps=None,
    avg_video_bitrate_kbps=None,
    avg_frame_rate=None,
    worst_audio_quality=None,
    worst_video_quality=None,
    assessment=None,
)


def _grade_rank(field: str) -> Case:
    return Case(
        *(When(**{field: grade}, then=Value(rank)) for grade, rank in GRADE_RANK.items()),
        default=None,
        output_field=IntegerField(),
    )


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def quality_summary_by_participant(*, call_id: Any) -> dict[int, ParticipantQualitySummary]:
    """Per-participant averages, extremes, counts and worst grades of one call, in one
    aggregate query; keyed by participant row id. Participants without samples are absent."""
    rows = (
        CallQualitySample.objects.filter(call_id=call_id)
        .values("participant_id")
        .annotate(
            sample_count=Count("id"),
            avg_rtt_ms=Avg("rtt_ms"),
            min_rtt_ms=Min("rtt_ms"),
            max_rtt_ms=Max("rtt_ms"),
            avg_packet_loss_percent=Avg("packet_loss_percent"),
            avg_jitter_ms=Avg("jitter_ms"),
            avg_audio_bitrate_kbps=Avg("audio_bitrate_kbps"),
            avg_video_bitrate_kbps=Avg("video_bitrate_kbps"),
            avg_frame_rate=Avg("frame_rate"),
            worst_audio_rank=Max(_grade_rank("audio_quality")),
            worst_video_rank=Max(_grade_rank("video_quality")),
        )
        .order_by()
    )
    return {
        row["participant_id"]: ParticipantQualitySummary(
            sample_count=row["sample_count"],
            avg_rtt_ms=_rounded(row["avg_rtt_ms"]),
            min_rtt_ms=row["min_rtt_ms"],
            max_rtt_ms=row["max_rtt_ms"],
            avg_packet_loss_percent=_rounded(row["avg_packet_loss_percent"]),
            avg_jitter_ms=_rounded(row["avg_jitter_ms"]),
            avg_audio_bitrate_kbps=_rounded(row["avg_audio_bitrate_kbps"]),
            avg_video_bitrate_kbps=_rounded(row["avg_video_bitrate_kbps"]),
            avg_frame_rate=_rounded(row["avg_frame_rate"]),
            worst_audio_quality=RANK_GRADE.get(row["worst_audio_rank"]),
            worst_video_quality=RANK_GRADE.get(row["worst_video_rank"]),
            assessment=quality_assess(
                rtt_ms=row["avg_rtt_ms"],
                packet_loss_percent=row["avg_packet_loss_percent"],
                jitter_ms=row["avg_jitter_ms"],
            ),
        )
        for row in rows
    }


def call_history_get(*, user: User, call_id: Any) -> Call:
    """One call with its participants (each carrying ``quality_summary``), its ordered event
    timeline and its quality assessment: four queries whatever the call's size."""
    call = (
        _with_quality_figures(call_list_for_user(user=user))
        .select_related("initiated_by", "host", "ended_by")
        .prefetch_related(
            participants_with_users(),
            Prefetch("events", queryset=CallEvent.objects.select_related("actor", "subject").order_by("at", "id")),
        )
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        raise NotFound("Call not found.", code="CALL_NOT_FOUND")
    summaries = quality_summary_by_participant(call_id=call.pk)
    for participant in call.participants.all():
        participant.quality_summary = summaries.get(participant.pk, EMPTY_QUALITY_SUMMARY)
    return call


# --- Quality samples ---------------------------------------------------------------------------


class QualitySampleFilter(django_filters.FilterSet):
    participant = django_filters.UUIDFilter(
        field_name="participant__user_id", help_text="User id of the participant whose samples to list."
    )

    class Meta:
        model = CallQualitySample
        fields = ["participant"]


def quality_sample_list(*, user: User, call_id: Any) -> QuerySet[CallQualitySample]:
    """Samples of a call ``user`` may see (participants, the initiator, staff), oldest first."""
    call = call_list_for_user(user=user).filter(pk=call_id).values_list("pk", flat=True).first()
    if call is None:
        raise NotFound("Call not found.", code="CALL_NOT_FOUND")
    return (
        CallQualitySample.objects.filter(call_id=call).select_related("participant__user").order_by("recorded_at", "id")
    )


# --- Statistics --------------------------------------------------------------------------------


def statistics_window(
    *, period: str | None, date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` of a named period ending now, or of whole UTC days from/to (either
    bound may be open)."""
    if period:
        now = timezone.now()
        return now - STATISTICS_PERIODS[period], now
    return (day_start(date_from) if date_from else None), (day_after(date_to) if date_to else None)


def call_statistics(
    *, user: User, period: str | None, date_from: date | None, date_to: date | None, own_only: bool
) -> dict[str, Any]:
    """Totals by status, kind and media, and the average and summed duration of completed
    calls, for the calls ``user`` may see (or only those they took part in) created in the
    window (see ``statistics_window``).

    One aggregate query: every figure is a filtered ``COUNT``, an ``AVG`` or a ``SUM``
    computed by the database; no row reaches Python.
    """
    period_start, period_end = statistics_window(period=period, date_from=date_from, date_to=date_to)
    calls = call_list_own(user=user) if own_only else call_list_for_user(user=user)
    if period_start is not None:
        calls = calls.filter(created_at__gte=period_start)
    if period_end is not None:
        calls = calls.filter(created_at__lt=period_end)

    completed = Q(status=CallStatus.COMPLETED, duration_seconds__isnull=False)
    aggregates: dict[str, Any] = {"total": Count("id")}
    aggregates |= {f"status__{value}": Count("id", filter=Q(status=value)) for value in CallStatus.values}
    aggregates |= {f"kind__{value}": Count("id", filter=Q(kind=value)) for value in CallKind.values}
    aggregates |= {f"media__{value}": Count("id", filter=Q(media=value)) for value in CallMedia.values}
    aggregates["average_duration_seconds"] = Avg("duration_seconds", filter=completed)
    aggregates["total_duration_seconds"] = Sum("duration_seconds", filter=completed)
    figures = calls.order_by().aggregate(**aggregates)

    average = figures["average_duration_seconds"]
    return {
        "scope": "mine" if own_only else "all",
        "period_start": period_start,
        "period_end": period_end,
        "total": figures["total"],
        "by_status": {value: figures[f"status__{value}"] for value in CallStatus.values},
        "by_kind": {value: figures[f"kind__{value}"] for value in CallKind.values},
        "by_media": {value: figures[f"media__{value}"] for value in CallMedia.values},
        "average_duration_seconds": None if average is None else round(float(average), 1),
        "total_duration_seconds": figures["total_duration_seconds"] or 0,
    }

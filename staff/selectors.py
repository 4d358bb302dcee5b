"""What the staff console reads: the dashboard figures, analytics per period, and the user and
call lists with their filters. Every figure is computed by the database (counts, averages and
``TruncDay``/``TruncWeek``/``TruncMonth`` groupings), a fixed number of queries whatever the
amount of data. Only clinic staff reach these (staff/permissions.py); the admin's index shows the
same dashboard from ``dashboard_figures``.

Days, weeks and months are the clinic's (``CLINIC_TIME_ZONE``): "sessions today" at 23:30 in
Berlin means Berlin's today, not UTC's.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Avg, Case, Count, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone

from accounts.models import Role, User
from core.exceptions import NotFound
from presence.models import PresenceStatus, UserPresence
from sessions.models import Session, SessionStatus
from video_calls.models import Call, CallParticipant, CallQualitySample, CallStatus, QualityGrade
from video_calls.selectors.calls import participants_with_users

# A quality grade as a score, 5 (excellent) to 1 (bad): the dashboard's average call quality.
QUALITY_SCORES = {
    QualityGrade.EXCELLENT: 5,
    QualityGrade.GOOD: 4,
    QualityGrade.FAIR: 3,
    QualityGrade.POOR: 2,
    QualityGrade.BAD: 1,
}
# The quality figure covers the reports of this last span.
QUALITY_WINDOW = timedelta(hours=24)

GRANULARITIES = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def clinic_zone() -> ZoneInfo:
    return ZoneInfo(settings.CLINIC_TIME_ZONE)


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _score(field: str) -> Case:
    return Case(
        *(When(**{field: grade}, then=Value(score)) for grade, score in QUALITY_SCORES.items()),
        default=None,
        output_field=IntegerField(),
    )


# --- Dashboard ------------------------------------------------------------------------------


def dashboard_figures(*, now: datetime | None = None) -> dict[str, Any]:
    """The numbers on the console's front page. Five queries, whatever the clinic's size.

    - calls active now: calls in progress (``ongoing``);
    - sessions today: sessions scheduled today (clinic time), cancelled ones left out;
    - no-shows this week: sessions of this week (from Monday) marked no-show;
    - average call quality: the mean score (5 excellent … 1 bad) of every audio and video grade
      reported in the last 24 hours, ``null`` without reports;
    - users online: users with a live connection (presence other than offline).
    """
    now = now or timezone.now()
    zone = clinic_zone()
    today = now.astimezone(zone).date()
    day_start = _start_of(today, zone)
    week_start = _start_of(today - timedelta(days=today.weekday()), zone)
    quality = CallQualitySample.objects.filter(recorded_at__gt=now - QUALITY_WINDOW).aggregate(
        audio=Avg(_score("audio_quality")),
        video=Avg(_score("video_quality")),
        audio_reports=Count("pk", filter=~Q(audio_quality="")),
        video_reports=Count("pk", filter=~Q(video_quality="")),
    )
    reports = quality["audio_reports"] + quality["video_reports"]
    average_quality = None
    if reports:
        total = (quality["audio"] or 0) * quality["audio_reports"] + (quality["video"] or 0) * quality["video_reports"]
        average_quality = round(total / reports, 2)
    return {
        "calls_active": Call.objects.filter(status=CallStatus.ONGOING).count(),
        "sessions_today": Session.objects.filter(
            scheduled_start__gte=day_start, scheduled_start__lt=day_start + timedelta(days=1)
        )
        .exclude(status=SessionStatus.CANCELLED)
        .count(),
        "no_shows_this_week": Session.objects.filter(
            scheduled_start__gte=week_start, scheduled_start__lt=now, status=SessionStatus.NO_SHOW
        ).count(),
        "average_call_quality": average_quality,
        "quality_reports": reports,
        "users_online": UserPresence.objects.exclude(status=PresenceStatus.OFFLINE).count(),
        "time_zone": zone.key,
        "at": now,
    }


# --- Analytics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyticsRange:
    start: date  # first day, inclusive
    end: date  # last day, inclusive
    granularity: str  # day, week or month


def _period_starts(span: AnalyticsRange) -> list[date]:
    """Every period the range touches, so that a period without data still has a row."""
    if span.granularity == "day":
        first, step = span.start, lambda day: day + timedelta(days=1)
    elif span.granularity == "week":
        first, step = span.start - timedelta(days=span.start.weekday()), lambda day: day + timedelta(days=7)
    else:
        first = span.start.replace(day=1)
        step = lambda day: (day.replace(day=28) + timedelta(days=4)).replace(day=1)  # noqa: E731
    periods, period = [], first
    while period <= span.end:
        periods.append(period)
        period = step(period)
    return periods


def _grouped(queryset: QuerySet, *, field: str, span: AnalyticsRange, zone: ZoneInfo, **aggregates) -> dict:
    """One query: ``aggregates`` per period of ``field`` (in the clinic's zone) within the range."""
    trunc = GRANULARITIES[span.granularity]
    since, until = _start_of(span.start, zone), _start_of(span.end + timedelta(days=1), zone)
    rows = (
        queryset.filter(**{f"{field}__gte": since, f"{field}__lt": until})
        .annotate(period=trunc(field, tzinfo=zone))
        .values("period")
        .annotate(**aggregates)
        .order_by("period")
    )
    by_period = {}
    for row in rows:
        period = row.pop("period")
        # Truncated in the clinic's zone, the value is that zone's midnight: its date is the period.
        by_period[period.date() if isinstance(period, datetime) else period] = row
    return by_period


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def analytics(*, span: AnalyticsRange) -> dict[str, Any]:
    """Calls, sessions, completion and no-show rates, average call duration and new users by
    role, per period of the range: three grouped queries.

    A session counts in the period it was scheduled in; its rates are over the sessions that
    were not cancelled (completed / held-or-missed, no-show / held-or-missed). A call counts in
    the period it was created in; its average duration is over the calls that ended with one.
    """
    zone = clinic_zone()
    calls = _grouped(
        Call.objects.all(),
        field="created_at",
        span=span,
        zone=zone,
        calls=Count("pk"),
        calls_completed=Count("pk", filter=Q(status=CallStatus.COMPLETED)),
        average_duration_seconds=Avg("duration_seconds"),
    )
    sessions = _grouped(
        Session.objects.all(),
        field="scheduled_start",
        span=span,
        zone=zone,
        sessions=Count("pk"),
        sessions_cancelled=Count("pk", filter=Q(status=SessionStatus.CANCELLED)),
        sessions_completed=Count("pk", filter=Q(status=SessionStatus.COMPLETED)),
        no_shows=Count("pk", filter=Q(status=SessionStatus.NO_SHOW)),
    )
    users = _grouped(
        User.objects.all(),
        field="date_joined",
        span=span,
        zone=zone,
        **{role.value: Count("pk", filter=Q(role=role)) for role in Role},
    )
    periods = []
    for period in _period_starts(span):
        call_row, session_row, user_row = calls.get(period, {}), sessions.get(period, {}), users.get(period, {})
        held = session_row.get("sessions", 0) - session_row.get("sessions_cancelled", 0)
        duration = call_row.get("average_duration_seconds")
        periods.append(
            {
                "period_start": period,
                "calls": call_row.get("calls", 0),
                "calls_completed": call_row.get("calls_completed", 0),
                "average_call_seconds": round(duration, 1) if duration is not None else None,
                "sessions": session_row.get("sessions", 0),
                "sessions_completed": session_row.get("sessions_completed", 0),
                "no_shows": session_row.get("no_shows", 0),
                "completion_rate": _rate(session_row.get("sessions_completed", 0), held),
                "no_show_rate": _rate(session_row.get("no_shows", 0), held),
                "new_users": {role.value: user_row.get(role.value, 0) for role in Role},
            }
        )
    return {
        "start": span.start,
        "end": span.end,
        "granularity": span.granularity,
        "time_zone": zone.key,
        "periods": periods,
    }


# --- Users ----------------------------------------------------------------------------------

# An account always has an email or a phone number (registration and the admin refuse neither);
# deleting one removes both, so an account with neither is a deleted one.
DELETED = Q(email__isnull=True, phone_number="", is_active=False)
USER_STATUSES = ("active", "suspended", "deleted")


def staff_user_list(*, search: str = "", role: str = "", status: str = "") -> QuerySet[User]:
    """Every account, newest first, with the profile the detail shows: one query a page."""
    users = User.objects.select_related("doctor_profile", "patient_profile")
    if search:
        for word in search.split()[:5]:
            users = users.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(display_name__icontains=word)
                | Q(email__icontains=word)
                | Q(phone_number__icontains=word)
            )
    if role:
        users = users.filter(role=role)
    if status == "active":
        users = users.filter(is_active=True)
    elif status == "suspended":
        users = users.filter(is_active=False).exclude(DELETED)
    elif status == "deleted":
        users = users.filter(DELETED)
    return users.order_by("-date_joined", "id")


def staff_user_get(*, user_id) -> User:
    user = staff_user_list().filter(pk=user_id).first()
    if user is None:
        raise NotFound("User not found.", code="USER_NOT_FOUND")
    return user


def user_status(user: User) -> str:
    if user.is_active:
        return "active"
    return "deleted" if user.email is None and not user.phone_number else "suspended"


# --- Calls ----------------------------------------------------------------------------------


def staff_call_list(*, status: str = "", kind: str = "", media: str = "") -> QuerySet[Call]:
    """Every call, newest first, with its host and participants and their users: three
    queries a page, whatever its size. ``status=active`` means any live status."""
    calls = Call.objects.select_related("host", "initiated_by").prefetch_related(participants_with_users())
    if status == "active":
        calls = calls.filter(status__in=(CallStatus.WAITING, CallStatus.RINGING, CallStatus.ONGOING))
    elif status:
        calls = calls.filter(status=status)
    if kind:
        calls = calls.filter(kind=kind)
    if media:
        calls = calls.filter(media=media)
    return calls.order_by("-created_at", "id")


def staff_call_get(*, call_id) -> Call:
    call = staff_call_list().filter(pk=call_id).first()
    if call is None:
        raise NotFound("Call not found.", code="CALL_NOT_FOUND")
    return call


def staff_call_participants(*, call: Call) -> QuerySet[CallParticipant]:
    return CallParticipant.objects.filter(call=call).select_related("user").order_by("id")

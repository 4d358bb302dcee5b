"""The one rule that decides whether a user may join a session's call, and when.

The REST ``can-join`` endpoint and the video-call app both call ``join_decision``, so the answer a
client sees before joining is exactly the rule the call enforces. The reasons are stable codes
(docs/sessions.md); they are checked in the order below, so a cancelled session says
``SESSION_CANCELLED`` even if it was also never paid.

1. ``NOT_PARTICIPANT``: the user is neither the session's doctor nor its patient (staff included).
2. ``SESSION_CANCELLED``: the session was cancelled.
3. ``SESSION_COMPLETED``: the call already ended.
4. ``WINDOW_CLOSED`` for a ``no_show`` session: the sweep only marks sessions whose window closed.
5. ``NOT_CONFIRMED``: the doctor (or staff) has not confirmed the request yet.
6. ``PAYMENT_PENDING``: the session is not paid (pending, failed or refunded).
7. ``TOO_EARLY``: before ``opens_at`` (``scheduled_start`` minus the opening lead).
8. ``WINDOW_CLOSED``: at or after ``closes_at``.

The window is half-open, ``[opens_at, closes_at)``, and covers the whole booked duration:
``closes_at`` is the later of ``scheduled_start`` plus the closing allowance
(``JOIN_WINDOW_CLOSES_MINUTES_AFTER``) and the scheduled end plus the grace period
(``JOIN_WINDOW_GRACE_MINUTES_AFTER_END``), so a four-hour session is not cut off after two.
``in_progress`` sessions pass, so a participant whose connection dropped can rejoin while the
window is open.

Everything that depends on the close reads it from here: the decision below, the expiry of a
call's media credentials, the call sweep that ends calls whose window closed, and the no-show
sweep. The sweeps select in SQL with ``join_window_closed``, the same instant written as a
filter, so the database and Python agree to the microsecond (``closes_at <= now`` is closed).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, IntegerField, Q, Value
from django.utils import timezone

from sessions.models import PaymentStatus, Session, SessionStatus

NOT_PARTICIPANT = "NOT_PARTICIPANT"
SESSION_CANCELLED = "SESSION_CANCELLED"
NOT_CONFIRMED = "NOT_CONFIRMED"
PAYMENT_PENDING = "PAYMENT_PENDING"
TOO_EARLY = "TOO_EARLY"
WINDOW_CLOSED = "WINDOW_CLOSED"
SESSION_COMPLETED = "SESSION_COMPLETED"

REASONS = (
    NOT_PARTICIPANT,
    SESSION_CANCELLED,
    NOT_CONFIRMED,
    PAYMENT_PENDING,
    TOO_EARLY,
    WINDOW_CLOSED,
    SESSION_COMPLETED,
)


@dataclass(frozen=True)
class JoinDecision:
    can_join: bool
    reason: str | None
    minutes_until_start: int
    session_status: str
    payment_status: str
    opens_at: datetime
    closes_at: datetime


def join_window_bounds(session: Session) -> tuple[datetime, datetime]:
    """``(opens_at, closes_at)`` of the session's join window, from the current settings."""
    opens_at = session.scheduled_start - timedelta(minutes=settings.JOIN_WINDOW_OPENS_MINUTES_BEFORE)
    closes_at = max(
        session.scheduled_start + timedelta(minutes=settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER),
        session.scheduled_end + timedelta(minutes=settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END),
    )
    return opens_at, closes_at


def join_window_closed(*, now: datetime, prefix: str = "") -> Q:
    """A filter matching sessions whose window has closed at ``now`` (``closes_at <= now``), for
    ``Session`` querysets or, with ``prefix="session__"``, querysets of a model pointing at one.

    ``closes_at`` is a maximum of two instants, so it is at most ``now`` exactly when both are:
    ``start + allowance <= now`` and ``start + duration + grace <= now``, the latter written as
    ``start <= now - grace - duration`` so the indexed column stands alone on the left.
    """
    allowance = timedelta(minutes=settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER)
    grace = timedelta(minutes=settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END)
    # Output fields are spelled out: Django infers no type for "small integer times duration".
    minutes = ExpressionWrapper(F(f"{prefix}duration_minutes"), output_field=IntegerField())
    duration = ExpressionWrapper(minutes * Value(timedelta(minutes=1)), output_field=DurationField())
    latest_start_for_duration = ExpressionWrapper(
        Value(now - grace, output_field=DateTimeField()) - duration, output_field=DateTimeField()
    )
    return Q(**{f"{prefix}scheduled_start__lte": now - allowance}) & Q(
        **{f"{prefix}scheduled_start__lte": latest_start_for_duration}
    )


def minutes_until(start: datetime, now: datetime) -> int:
    """Whole minutes until ``start``, rounded up (30 seconds to go is "1 minute"), never negative."""
    return max(0, math.ceil((start - now).total_seconds() / 60))


def _refusal(session: Session, user) -> str | None:
    if not session.is_participant(user):
        return NOT_PARTICIPANT
    if session.status == SessionStatus.CANCELLED:
        return SESSION_CANCELLED
    if session.status == SessionStatus.COMPLETED:
        return SESSION_COMPLETED
    if session.status == SessionStatus.NO_SHOW:
        return WINDOW_CLOSED
    if session.status == SessionStatus.REQUESTED:
        return NOT_CONFIRMED
    if session.payment_status != PaymentStatus.PAID:
        return PAYMENT_PENDING
    return None


def join_decision(*, session: Session, user, now: datetime | None = None) -> JoinDecision:
    """Whether ``user`` may join ``session`` at ``now`` (default: the current time), and why not."""
    now = now or timezone.now()
    opens_at, closes_at = join_window_bounds(session)
    reason = _refusal(session, user)
    if reason is None and now < opens_at:
        reason = TOO_EARLY
    if reason is None and now >= closes_at:
        reason = WINDOW_CLOSED
    return JoinDecision(
        can_join=reason is None,
        reason=reason,
        minutes_until_start=minutes_until(session.scheduled_start, now),
        session_status=session.status,
        payment_status=session.payment_status,
        opens_at=opens_at,
        closes_at=closes_at,
    )

"""Status changes after booking: confirm, cancel, the video call's join and completion, and the
no-show sweep. Each is one conditional ``UPDATE`` so concurrent callers cannot both win."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import User
from core.exceptions import InvalidInput, NotFound, PermissionDenied
from sessions.models import NoShowParty, PaymentStatus, Session, SessionStatus
from sessions.services.booking import RESCHEDULABLE, ensure_participant_or_staff, ensure_patient_notice
from sessions.services.common import INVALID_SESSION_STATE, conditional_update, notify_participants


@transaction.atomic
def session_confirm(*, session: Session, user: User, now: datetime | None = None) -> Session:
    """The session's doctor (or staff) accepts a requested session."""
    ensure_participant_or_staff(session=session, user=user)
    if not (user.pk == session.doctor_id or user.is_clinic_staff):
        raise PermissionDenied("Only the session's doctor or clinic staff can confirm it.")
    session = conditional_update(
        Session.objects.filter(status=SessionStatus.REQUESTED),
        session=session,
        code=INVALID_SESSION_STATE,
        message="Only a requested session can be confirmed.",
        status=SessionStatus.CONFIRMED,
        confirmed_at=now or timezone.now(),
    )
    notify_participants(session, "session.confirmed")
    return session


@transaction.atomic
def session_cancel(*, session: Session, user: User, reason: str = "", now: datetime | None = None) -> Session:
    """A participant or staff cancels a requested or confirmed session. A patient must give the
    configured notice. A paid session is marked for refund (``refund_requested_at``)."""
    now = now or timezone.now()
    ensure_participant_or_staff(session=session, user=user)
    ensure_patient_notice(session=session, user=user, now=now, action="cancel")
    session = conditional_update(
        Session.objects.filter(status__in=RESCHEDULABLE),
        session=session,
        code=INVALID_SESSION_STATE,
        message="Only requested or confirmed sessions can be cancelled.",
        status=SessionStatus.CANCELLED,
        cancelled_by=user,
        cancelled_at=now,
        cancellation_reason=reason,
        refund_requested_at=Case(
            When(payment_status=PaymentStatus.PAID, then=Value(now)), default=F("refund_requested_at")
        ),
    )
    notify_participants(session, "session.cancelled")
    return session


@transaction.atomic
def session_record_join(*, session: Session, user: User, at: datetime) -> Session:
    """Record a participant joining the call (called by the video-call app after ``join_decision``
    allowed it). Only the first join time of each participant is kept; the first join of anyone
    moves a confirmed session to ``in_progress`` with ``actual_start``. Rejoins change nothing."""
    if user.pk == session.doctor_id:
        field = "doctor_joined_at"
    elif user.pk == session.patient_id:
        field = "patient_joined_at"
    else:
        raise NotFound()
    Session.objects.filter(pk=session.pk, **{f"{field}__isnull": True}).update(**{field: at, "updated_at": at})
    started = Session.objects.filter(pk=session.pk, status=SessionStatus.CONFIRMED).update(
        status=SessionStatus.IN_PROGRESS, actual_start=at, updated_at=at
    )
    session.refresh_from_db()
    if started:
        notify_participants(session, "session.started")
    return session


@transaction.atomic
def session_complete(*, session: Session, started_at: datetime, ended_at: datetime) -> Session:
    """The call ended: ``in_progress`` becomes ``completed`` with the call's actual times."""
    if ended_at < started_at:
        raise InvalidInput("A call cannot end before it starts.", details={"ended_at": ["Before started_at."]})
    session = conditional_update(
        Session.objects.filter(status=SessionStatus.IN_PROGRESS),
        session=session,
        code=INVALID_SESSION_STATE,
        message="Only a session in progress can be completed.",
        status=SessionStatus.COMPLETED,
        actual_start=started_at,
        actual_end=ended_at,
    )
    notify_participants(session, "session.completed")
    return session


def session_no_show_sweep(*, now: datetime | None = None) -> int:
    """Mark sessions whose join window closed without both participants as ``no_show``; returns
    how many changed.

    1. Candidates are ``confirmed`` sessions (nobody joined) and ``in_progress`` sessions where one
       participant never joined, whose window closed (``scheduled_start + closing allowance <= now``).
    2. ``no_show_party`` comes from the recorded join times: ``both``, ``doctor`` or ``patient``.
    3. When the doctor was absent and the session is paid, ``refund_requested_at`` is set.
    All three happen in one bulk ``UPDATE`` (atomic by itself, so no transaction is opened); a
    session changed concurrently (completed by the call, cancelled) no longer matches and is left
    alone.
    """
    now = now or timezone.now()
    window_closed_before = now - timedelta(minutes=settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER)
    doctor_absent = Q(doctor_joined_at__isnull=True)
    patient_absent = Q(patient_joined_at__isnull=True)
    return (
        Session.objects.filter(
            status__in=[SessionStatus.CONFIRMED, SessionStatus.IN_PROGRESS],
            scheduled_start__lte=window_closed_before,
        )
        .filter(doctor_absent | patient_absent)
        .update(
            status=SessionStatus.NO_SHOW,
            no_show_party=Case(
                When(doctor_absent & patient_absent, then=Value(NoShowParty.BOTH)),
                When(doctor_absent, then=Value(NoShowParty.DOCTOR)),
                default=Value(NoShowParty.PATIENT),
            ),
            refund_requested_at=Case(
                When(
                    doctor_absent & Q(payment_status=PaymentStatus.PAID, refund_requested_at__isnull=True),
                    then=Value(now),
                ),
                default=F("refund_requested_at"),
            ),
            updated_at=now,
        )
    )

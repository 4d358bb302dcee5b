"""Status changes after booking: confirm, cancel, the video call's join and completion, and the
periodic sweeps (no-shows, lapsed requests). Each is one conditional ``UPDATE`` so concurrent
callers cannot both win, and each tells both participants (``session.*`` events) on commit."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import User
from core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from sessions.join_window import join_window_closed
from sessions.models import NoShowParty, PaymentStatus, Session, SessionStatus
from sessions.services.booking import RESCHEDULABLE, ensure_participant_or_staff, ensure_patient_notice
from sessions.services.common import (
    INVALID_SESSION_STATE,
    REQUEST_LAPSED,
    conditional_update,
    notify_participants,
)

# One sweep run changes at most this many sessions; the next run picks up the rest.
SWEEP_BATCH = 500
# The ``cancellation_reason`` of a request that lapsed (``session_lapse_sweep``); with
# ``cancelled_by`` empty it tells a lapse from a cancellation by someone.
LAPSED_REASON = "Not confirmed before its scheduled start."
# What the sweeps read of each session: its id and what ``notify_participants`` sends.
_EVENT_FIELDS = ("id", "doctor", "patient", "status", "payment_status", "scheduled_start")


def _cancellation(*, now: datetime, by: User | None, reason: str) -> dict[str, Any]:
    """What every cancellation writes, by a person or (``by`` None) by the lapse sweep; a paid
    session is marked for refund now."""
    return {
        "status": SessionStatus.CANCELLED,
        "cancelled_by": by,
        "cancelled_at": now,
        "cancellation_reason": reason,
        "refund_requested_at": Case(
            When(payment_status=PaymentStatus.PAID, then=Value(now)), default=F("refund_requested_at")
        ),
    }


@transaction.atomic
def session_confirm(*, session: Session, user: User, now: datetime | None = None) -> Session:
    """The session's doctor (or staff) accepts a requested session, before its start: a request
    nobody confirmed by then has lapsed (the lapse sweep cancels it), so confirming it late would
    put a session in the past on both calendars."""
    now = now or timezone.now()
    ensure_participant_or_staff(session=session, user=user)
    if not (user.pk == session.doctor_id or user.is_clinic_staff):
        raise PermissionDenied("Only the session's doctor or clinic staff can confirm it.")
    if session.status == SessionStatus.REQUESTED and session.scheduled_start <= now:
        raise Conflict(
            "This request was not confirmed before its start and has lapsed; book a new session.",
            code=REQUEST_LAPSED,
            details={"status": session.status, "payment_status": session.payment_status},
        )
    session = conditional_update(
        Session.objects.filter(status=SessionStatus.REQUESTED, scheduled_start__gt=now),
        session=session,
        code=INVALID_SESSION_STATE,
        message="Only a requested session can be confirmed.",
        status=SessionStatus.CONFIRMED,
        confirmed_at=now,
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
        **_cancellation(now=now, by=user, reason=reason),
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


def _sweep(due: QuerySet[Session], *, event_type: str, **changes: Any) -> int:
    """Apply ``changes`` (including the new ``status``) to up to ``SWEEP_BATCH`` sessions of
    ``due`` and tell each one's participants; returns how many changed.

    1. One ``SELECT ... FOR UPDATE SKIP LOCKED`` reads the due sessions, oldest start first,
       with what their events need. A session a request is changing right now (a join, a
       cancellation) is skipped, not waited for: the next run sees it, if it is still due.
    2. One ``UPDATE`` of exactly those rows, still filtered by ``due``'s conditions (on SQLite,
       which has no row locks, a write transaction is serialized instead).
    3. One ``event_type`` event per changed session, to its doctor and patient, sent after
       commit and built from the rows of step 1: no query per session.
    """
    with transaction.atomic():
        sessions = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("scheduled_start")
            .only(*_EVENT_FIELDS)[:SWEEP_BATCH]
        )
        if not sessions:
            return 0
        due.filter(pk__in=[session.pk for session in sessions]).update(**changes)
        for session in sessions:
            session.status = changes["status"]
            notify_participants(session, event_type)
    return len(sessions)


def session_no_show_sweep(*, now: datetime | None = None) -> int:
    """Mark sessions whose join window closed without both participants as ``no_show``; returns
    how many changed.

    1. Candidates are ``confirmed`` sessions (nobody joined) and ``in_progress`` sessions where one
       participant never joined, whose join window closed (``closes_at <= now``: at ``closes_at``
       itself the window is closed, as ``join_decision`` says; ``join_window.join_window_closed``).
    2. ``no_show_party`` comes from the recorded join times: ``both``, ``doctor`` or ``patient``.
    3. When the doctor was absent and the session is paid, ``refund_requested_at`` is set.
    All three happen in one bulk ``UPDATE`` (see ``_sweep``), and both participants of each
    session hear ``session.no_show``; a session changed concurrently (completed by the call,
    cancelled) no longer matches and is left alone.
    """
    now = now or timezone.now()
    doctor_absent = Q(doctor_joined_at__isnull=True)
    patient_absent = Q(patient_joined_at__isnull=True)
    due = Session.objects.filter(
        join_window_closed(now=now), status__in=[SessionStatus.CONFIRMED, SessionStatus.IN_PROGRESS]
    ).filter(doctor_absent | patient_absent)
    return _sweep(
        due,
        event_type="session.no_show",
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


def session_lapse_sweep(*, now: datetime | None = None) -> int:
    """Cancel requested sessions whose start has passed without a confirmation; returns how many
    changed.

    A request nobody confirmed by its start will not take place, so it becomes ``cancelled``,
    attributed to nobody (``cancelled_by`` empty, ``cancellation_reason`` ``LAPSED_REASON``).
    Why ``cancelled`` and not a new status: everything the clinic wants for a lapsed request is
    what a cancellation already does, everywhere it is checked: the calendars are freed (the
    overlap check and PostgreSQL's exclusion constraints skip cancelled sessions), joining
    answers ``SESSION_CANCELLED``, a room left open is closed by the call sweep, a payment is
    marked for refund (here if already paid, by the webhook if it arrives later), and presence
    does not count it as a care relationship. ``no_show`` would be wrong: nobody was expected to
    come. (docs/sessions.md, "Lapse sweep".)

    One bulk ``UPDATE`` (see ``_sweep``); both participants hear ``session.cancelled``, the
    event of every other cancellation. A request confirmed or cancelled concurrently no longer
    matches and is left alone.
    """
    now = now or timezone.now()
    due = Session.objects.filter(status=SessionStatus.REQUESTED, scheduled_start__lte=now)
    return _sweep(
        due,
        event_type="session.cancelled",
        updated_at=now,
        **_cancellation(now=now, by=None, reason=LAPSED_REASON),
    )

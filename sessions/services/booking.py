"""Booking and rescheduling: who may book whom, when, and the no-overlap rule.

The overlap rule is checked here in a transaction (the only guard on SQLite) and guaranteed on
PostgreSQL by the exclusion constraints of migration 0003; an exclusion violation raised by a
concurrent booking is answered with the same 409 SCHEDULE_CONFLICT as the check.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role, User
from accounts.selectors import patient_list_for_user
from core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from sessions.models import Session, SessionStatus, SessionType
from sessions.services.common import SCHEDULE_CONFLICT, conditional_update, notify_participants

# Constraint name (migration 0003) -> the participant whose calendar is full.
_OVERLAP_CONSTRAINTS = {
    "consultations_session_doctor_no_overlap": "doctor",
    "consultations_session_patient_no_overlap": "patient",
}
RESCHEDULABLE = (SessionStatus.REQUESTED, SessionStatus.CONFIRMED)


def _schedule_conflict(party: str) -> Conflict:
    return Conflict(
        f"The {party} already has a session at or near that time (including the "
        f"{settings.SESSION_BUFFER_MINUTES}-minute buffer between sessions).",
        code=SCHEDULE_CONFLICT,
        details={"conflicts_with": party},
    )


def _overlap_party(exc: IntegrityError) -> str | None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    return _OVERLAP_CONSTRAINTS.get(constraint or "")


def blocked_until_for(*, scheduled_start: datetime, duration_minutes: int) -> datetime:
    """End of the calendar block: the scheduled end plus the buffer in force now."""
    return scheduled_start + timedelta(minutes=duration_minutes + settings.SESSION_BUFFER_MINUTES)


def _ensure_no_overlap(
    *, doctor_id, patient_id, scheduled_start: datetime, blocked_until: datetime, exclude_pk=None
) -> None:
    """Two blocked ranges ``[start, blocked_until)`` overlap exactly when the gap between the
    sessions is shorter than the buffer, which is the rule (and what the constraint compares)."""
    overlapping = Session.objects.exclude(status=SessionStatus.CANCELLED).filter(
        scheduled_start__lt=blocked_until, blocked_until__gt=scheduled_start
    )
    if exclude_pk is not None:
        overlapping = overlapping.exclude(pk=exclude_pk)
    if overlapping.filter(doctor_id=doctor_id).exists():
        raise _schedule_conflict("doctor")
    if overlapping.filter(patient_id=patient_id).exists():
        raise _schedule_conflict("patient")


def _validate_timing(*, scheduled_start: datetime, duration_minutes: int, now: datetime) -> None:
    if scheduled_start <= now:
        raise InvalidInput(
            "A session must start in the future.", code="START_IN_PAST", details={"scheduled_start": ["In the past."]}
        )
    horizon = settings.SESSION_BOOKING_HORIZON_DAYS
    if scheduled_start > now + timedelta(days=horizon):
        raise InvalidInput(
            f"Sessions can be booked at most {horizon} days ahead.",
            code="START_TOO_FAR",
            details={"scheduled_start": [f"More than {horizon} days ahead."]},
        )
    low, high = settings.SESSION_MIN_DURATION_MINUTES, settings.SESSION_MAX_DURATION_MINUTES
    if not low <= duration_minutes <= high:
        raise InvalidInput(
            f"A session lasts between {low} and {high} minutes.",
            details={"duration_minutes": [f"Must be between {low} and {high}."]},
        )


def _ensure_doctor_bookable(doctor: User) -> None:
    profile = getattr(doctor, "doctor_profile", None)
    if not (doctor.is_active and profile is not None and profile.is_verified):
        raise InvalidInput(
            "This doctor cannot be booked (not verified or not active).",
            code="DOCTOR_NOT_BOOKABLE",
            details={"doctor_id": ["Not bookable."]},
        )


def _ensure_patient_active(patient: User) -> None:
    if not patient.is_active:
        raise InvalidInput(
            "This patient's account is not active.", code="PATIENT_INACTIVE", details={"patient_id": ["Not active."]}
        )


def _resolve_participants(*, requested_by: User, doctor_id, patient_id) -> tuple[User, User]:
    """Apply "who may book": a patient for themselves, a doctor with one of their patients (anyone
    they have or had a session with), staff for anyone."""
    if requested_by.is_patient:
        if patient_id is not None and patient_id != requested_by.pk:
            raise PermissionDenied("Patients book sessions for themselves.")
        patient_id = requested_by.pk
    elif requested_by.is_doctor:
        if doctor_id is not None and doctor_id != requested_by.pk:
            raise PermissionDenied("Doctors book sessions in their own calendar.")
        doctor_id = requested_by.pk
    elif not requested_by.is_clinic_staff:
        raise PermissionDenied()
    missing = {
        name: ["This field is required."]
        for name, value in (("doctor_id", doctor_id), ("patient_id", patient_id))
        if value is None
    }
    if missing:
        raise InvalidInput(details=missing)
    if doctor_id == patient_id:
        raise InvalidInput(
            "The doctor and the patient must be different people.",
            code="SAME_USER",
            details={"patient_id": ["Same as the doctor."]},
        )

    doctor = User.objects.select_related("doctor_profile").filter(pk=doctor_id, role=Role.DOCTOR).first()
    if doctor is None:
        raise NotFound("No such doctor.")
    if requested_by.is_doctor:
        patients = patient_list_for_user(user=requested_by)
    else:
        patients = User.objects.filter(role=Role.PATIENT)
    patient = patients.filter(pk=patient_id).first()
    if patient is None:
        raise NotFound("No such patient.")
    return doctor, patient


@transaction.atomic
def session_book(
    *,
    requested_by: User,
    scheduled_start: datetime,
    doctor_id=None,
    patient_id=None,
    duration_minutes: int | None = None,
    session_type: str = SessionType.INITIAL,
    reason: str = "",
    now: datetime | None = None,
) -> Session:
    """Book a session in ``requested`` status, priced from the doctor's profile.

    1. Resolve and authorize the participants (404 for ids the requester may not use).
    2. Check the doctor is bookable, the patient active, the start in the future and in range.
    3. Check both calendars (buffer included), then insert; on PostgreSQL the exclusion
       constraint turns a concurrent overlapping insert into the same SCHEDULE_CONFLICT.
    """
    now = now or timezone.now()
    doctor, patient = _resolve_participants(requested_by=requested_by, doctor_id=doctor_id, patient_id=patient_id)
    _ensure_doctor_bookable(doctor)
    _ensure_patient_active(patient)
    profile = doctor.doctor_profile
    duration_minutes = duration_minutes or profile.consultation_minutes
    _validate_timing(scheduled_start=scheduled_start, duration_minutes=duration_minutes, now=now)
    blocked_until = blocked_until_for(scheduled_start=scheduled_start, duration_minutes=duration_minutes)
    _ensure_no_overlap(
        doctor_id=doctor.pk, patient_id=patient.pk, scheduled_start=scheduled_start, blocked_until=blocked_until
    )
    try:
        with transaction.atomic():
            session = Session.objects.create(
                doctor=doctor,
                patient=patient,
                scheduled_start=scheduled_start,
                duration_minutes=duration_minutes,
                blocked_until=blocked_until,
                session_type=session_type,
                reason=reason,
                price=profile.consultation_fee or Decimal("0"),
                currency=profile.currency,
                created_by=requested_by,
            )
    except IntegrityError as exc:
        party = _overlap_party(exc)
        if party is None:
            raise
        raise _schedule_conflict(party) from exc
    notify_participants(session, "session.booked")
    return session


def ensure_patient_notice(*, session: Session, user: User, now: datetime, action: str) -> None:
    """Patients change their plans only up to the notice period before the start."""
    if user.pk != session.patient_id:
        return
    notice = timedelta(hours=settings.SESSION_PATIENT_CANCEL_NOTICE_HOURS)
    if now > session.scheduled_start - notice:
        raise Conflict(
            f"Patients can {action} a session up to {settings.SESSION_PATIENT_CANCEL_NOTICE_HOURS} hours before it "
            "starts; contact the clinic.",
            code="NOTICE_PERIOD_PASSED",
            details={"notice_hours": settings.SESSION_PATIENT_CANCEL_NOTICE_HOURS},
        )


def ensure_participant_or_staff(*, session: Session, user: User) -> None:
    if not (session.is_participant(user) or user.is_clinic_staff):
        raise NotFound()


@transaction.atomic
def session_reschedule(
    *,
    session: Session,
    user: User,
    scheduled_start: datetime,
    duration_minutes: int | None = None,
    now: datetime | None = None,
) -> Session:
    """Move a requested or confirmed session, under the same rules as booking. When the patient
    moves a confirmed session it goes back to ``requested``: the doctor has not agreed to the new
    time."""
    now = now or timezone.now()
    ensure_participant_or_staff(session=session, user=user)
    ensure_patient_notice(session=session, user=user, now=now, action="reschedule")
    doctor = User.objects.select_related("doctor_profile").get(pk=session.doctor_id)
    _ensure_doctor_bookable(doctor)
    _ensure_patient_active(User.objects.get(pk=session.patient_id))
    duration_minutes = duration_minutes or session.duration_minutes
    _validate_timing(scheduled_start=scheduled_start, duration_minutes=duration_minutes, now=now)
    blocked_until = blocked_until_for(scheduled_start=scheduled_start, duration_minutes=duration_minutes)
    _ensure_no_overlap(
        doctor_id=session.doctor_id,
        patient_id=session.patient_id,
        scheduled_start=scheduled_start,
        blocked_until=blocked_until,
        exclude_pk=session.pk,
    )
    changes: dict = {
        "scheduled_start": scheduled_start,
        "duration_minutes": duration_minutes,
        "blocked_until": blocked_until,
    }
    if user.pk == session.patient_id:
        changes.update(status=SessionStatus.REQUESTED, confirmed_at=None)
    try:
        with transaction.atomic():
            session = conditional_update(
                Session.objects.filter(status__in=RESCHEDULABLE),
                session=session,
                code="INVALID_SESSION_STATE",
                message="Only requested or confirmed sessions can be rescheduled.",
                **changes,
            )
    except IntegrityError as exc:
        party = _overlap_party(exc)
        if party is None:
            raise
        raise _schedule_conflict(party) from exc
    notify_participants(session, "session.rescheduled")
    return session

"""Session reads, each scoped to who asks: a patient sees their sessions, a doctor theirs, staff
all. Another user's session is not found (404), never forbidden, so its existence is not revealed."""

import zoneinfo

from django.db.models import QuerySet

from accounts.models import User
from core.exceptions import NotFound
from sessions.models import Payment, Session


def session_list_for_user(*, user: User) -> QuerySet[Session]:
    """Both participants and their profiles come in the same query, so a page costs the same
    number of queries whatever its size."""
    sessions = Session.objects.select_related(
        "doctor", "doctor__doctor_profile", "patient", "patient__patient_profile"
    ).order_by("-scheduled_start", "id")
    if user.is_clinic_staff:
        return sessions
    if user.is_doctor:
        return sessions.filter(doctor=user)
    if user.is_patient:
        return sessions.filter(patient=user)
    return sessions.none()


def session_get_for_user(*, user: User, session_id) -> Session:
    session = session_list_for_user(user=user).filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.")
    return session


def payment_list_for_session(*, session: Session) -> QuerySet[Payment]:
    """Payments of a session the caller already obtained through ``session_get_for_user``."""
    return session.payments.order_by("-created_at", "id")


def user_time_zone(user: User) -> zoneinfo.ZoneInfo:
    """The IANA zone a user's local times are computed in: their profile's, UTC for staff."""
    profile = getattr(user, "doctor_profile", None) if user.is_doctor else None
    if user.is_patient:
        profile = getattr(user, "patient_profile", None)
    name = getattr(profile, "time_zone", "") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")

"""Session reads, each scoped to who asks: a patient sees their sessions, a doctor theirs, staff
all. Another user's session is not found (404), never forbidden, so its existence is not revealed.

Two rules other apps import rather than restate:

* **who may see a session**: ``session_list_for_user`` (rooms, ad-hoc calls linked to a session);
* **the care relationship**: ``care_relationship_sessions`` and the helpers built on it (the
  patient directory, booking, ringing, presence). Every session counts except a cancelled one:
  a session can only be cancelled while ``requested`` or ``confirmed``, before anyone joined,
  so a cancelled session never took place and ties nobody together (docs/sessions.md).
"""

import zoneinfo

from django.db.models import QuerySet

from accounts.models import User
from core.exceptions import NotFound
from sessions.models import Payment, Session, SessionStatus


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


def care_relationship_sessions() -> QuerySet[Session]:
    """The sessions that put a doctor and a patient in a care relationship: all but cancelled ones
    (requested, confirmed, in progress, completed, no-show)."""
    return Session.objects.exclude(status=SessionStatus.CANCELLED)


def care_relation_ids(*, user: User) -> QuerySet:
    """Ids of the users in a care relationship with ``user``: a patient's doctors, a doctor's
    patients, nobody for anyone else. A lazy query, usable as a subquery (``pk__in=``)."""
    sessions = care_relationship_sessions()
    if user.is_patient:
        return sessions.filter(patient=user).values_list("doctor_id", flat=True).distinct()
    if user.is_doctor:
        return sessions.filter(doctor=user).values_list("patient_id", flat=True).distinct()
    return sessions.none().values_list("pk", flat=True)


def care_relationship_sessions_between(*, user: User, other_id) -> QuerySet[Session]:
    """The sessions that put ``user`` and the user ``other_id`` (an id, or an ``OuterRef`` to one)
    in a care relationship; none unless one is a patient and the other their doctor."""
    sessions = care_relationship_sessions()
    if user.is_patient:
        return sessions.filter(patient=user, doctor_id=other_id)
    if user.is_doctor:
        return sessions.filter(doctor=user, patient_id=other_id)
    return sessions.none()


def in_care_relationship(*, user: User, other_id) -> bool:
    """Whether ``user`` and the user ``other_id`` are a doctor and a patient in a care relationship."""
    return care_relationship_sessions_between(user=user, other_id=other_id).exists()


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

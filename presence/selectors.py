"""Presence reads, under one privacy rule: a patient's presence is seen only by the patient,
their doctors (a care relationship, ``sessions.selectors``) and staff; a doctor's presence by any
signed-in user (patients look for an available doctor); staff presence by staff."""

from django.db.models import QuerySet

from accounts.models import Role, User
from core.exceptions import NotFound
from presence.models import PresenceStatus, UserPresence
from sessions import selectors as session_selectors


def presence_visible_to(*, viewer: User, target: User) -> bool:
    if viewer.pk == target.pk or viewer.is_clinic_staff:
        return True
    if target.is_doctor:
        return True
    if target.is_patient:
        return viewer.is_doctor and session_selectors.in_care_relationship(user=viewer, other_id=target.pk)
    return False


def presence_get_for_user(*, viewer: User, user_id) -> UserPresence:
    target = User.objects.filter(pk=user_id, is_active=True).first()
    if target is None or not presence_visible_to(viewer=viewer, target=target):
        raise NotFound("User not found.", code="USER_NOT_FOUND")
    presence, _ = UserPresence.objects.get_or_create(user=target)
    return presence


def online_doctor_list(*, viewer: User) -> QuerySet[UserPresence]:
    """Verified doctors who are connected (online, away, busy or do-not-disturb)."""
    return (
        UserPresence.objects.filter(
            user__role=Role.DOCTOR, user__is_active=True, user__doctor_profile__is_verified=True
        )
        .exclude(status=PresenceStatus.OFFLINE)
        .select_related("user", "user__doctor_profile")
        .order_by("user__last_name", "user__first_name", "user_id")
    )

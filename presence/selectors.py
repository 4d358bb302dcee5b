"""Presence reads, under one privacy rule: a patient's presence is seen only by the patient,
their doctors (a care relationship, ``sessions.selectors``) and staff; a doctor's presence by any
signed-in user (patients look for an available doctor); staff presence by staff."""

from django.db.models import Q, QuerySet

from accounts.models import Role, User
from core.exceptions import NotFound, PermissionDenied
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


def _connected() -> QuerySet[UserPresence]:
    """Presence rows of active users with a live connection (online, away, busy or do-not-disturb)."""
    return UserPresence.objects.filter(user__is_active=True).exclude(status=PresenceStatus.OFFLINE)


# Which roles each role may list, and whom of that role: the privacy rule above, as a query.
_VISIBLE_ROLES = {
    Role.STAFF: (Role.PATIENT, Role.DOCTOR, Role.STAFF),
    Role.DOCTOR: (Role.PATIENT, Role.DOCTOR),
    Role.PATIENT: (Role.DOCTOR,),
}


def online_user_list(*, viewer: User, role: str | None = None) -> QuerySet[UserPresence]:
    """Connected users of ``role`` (every role the viewer may see when None) that ``viewer`` may
    see: staff see everyone; a doctor their patients (the care relationship,
    ``sessions.selectors.care_relation_ids``) and verified doctors; a patient verified doctors.
    A role the viewer may never see is refused (403) rather than answered empty, so a client
    can tell "nobody online" from "not for you"."""
    visible = _VISIBLE_ROLES.get(viewer.role, ())
    if role is not None and role not in visible:
        raise PermissionDenied("You may not list online users of this role.")
    roles = (role,) if role is not None else visible
    if viewer.is_clinic_staff:
        scope = Q(user__role__in=roles)
    else:
        scope = Q()
        if Role.DOCTOR in roles:
            scope |= Q(user__role=Role.DOCTOR, user__doctor_profile__is_verified=True)
        if Role.PATIENT in roles:
            scope |= Q(user__role=Role.PATIENT, user_id__in=session_selectors.care_relation_ids(user=viewer))
    return (
        _connected()
        .filter(scope)
        .select_related("user", "user__doctor_profile")
        .order_by("user__role", "user__last_name", "user__first_name", "user_id")
    )


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

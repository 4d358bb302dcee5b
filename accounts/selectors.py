"""Account reads, each scoped to who asks: a record the requester may not see is not found."""

from django.db.models import Q, QuerySet

from accounts.models import Role, User
from core.exceptions import NotFound, PermissionDenied
from sessions.selectors import care_relation_ids


def doctor_list_for_user(*, user: User, search: str = "", specialty: str = "") -> QuerySet[User]:
    """Verified, active doctors for everyone; staff also see unverified and suspended ones."""
    doctors = User.objects.filter(role=Role.DOCTOR).select_related("doctor_profile")
    if not user.is_clinic_staff:
        doctors = doctors.filter(is_active=True, doctor_profile__is_verified=True)
    if search:
        for word in search.split()[:5]:
            doctors = doctors.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(doctor_profile__specialty__icontains=word)
            )
    if specialty:
        doctors = doctors.filter(doctor_profile__specialty__iexact=specialty)
    return doctors.order_by("last_name", "first_name", "id")


def doctor_get_for_user(*, user: User, doctor_id) -> User:
    doctor = doctor_list_for_user(user=user).filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound()
    return doctor


def patient_list_for_user(*, user: User, search: str = "") -> QuerySet[User]:
    """Staff see every patient; a doctor sees the patients in a care relationship with them (a
    session that was not cancelled, ``sessions.selectors.care_relationship_sessions``).
    Patients have no patient directory."""
    patients = User.objects.filter(role=Role.PATIENT).select_related("patient_profile")
    if user.is_doctor:
        patients = patients.filter(pk__in=care_relation_ids(user=user))
    elif not user.is_clinic_staff:
        raise PermissionDenied("Only doctors and staff can list patients.")
    if search:
        for word in search.split()[:5]:
            patients = patients.filter(
                Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
            )
    return patients.order_by("last_name", "first_name", "id")


def patient_get_for_user(*, user: User, patient_id) -> User:
    if not (user.is_doctor or user.is_clinic_staff):
        raise NotFound()
    patient = patient_list_for_user(user=user).filter(pk=patient_id).first()
    if patient is None:
        raise NotFound()
    return patient


def user_get_visible_to(*, viewer: User, user_id) -> User:
    """A user ``viewer`` may see, by the directory and care-relationship rules above, or 404:
    themselves; anyone, for staff; a verified active doctor (the doctor directory), for anyone;
    a doctor's patients and a patient's doctors (``sessions.selectors.care_relation_ids``).
    What they may see of them is the serializer's business (the avatar is one thing)."""
    if viewer.is_clinic_staff or str(viewer.pk) == str(user_id):
        user = User.objects.filter(pk=user_id).first()
    else:
        user = (
            User.objects.filter(pk=user_id, is_active=True)
            .filter(Q(role=Role.DOCTOR, doctor_profile__is_verified=True) | Q(pk__in=care_relation_ids(user=viewer)))
            .first()
        )
    if user is None:
        raise NotFound()
    return user

"""``GET presence/online/?role=``: who is connected now, by role, under the presence privacy rule
(presence/selectors.py ``online_user_list``): staff see every role, a doctor their patients (the
care relationship of the sessions app) and verified doctors, a patient verified doctors."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from presence.selectors import online_user_list
from presence.serializers import OnlineUserSerializer
from presence.services import presence_connection_open
from sessions.models import SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/presence/online/"
_DAYS = itertools.count(1)


def treat(doctor, patient, **fields) -> None:
    """A session between the two, each on a day of its own (a doctor's sessions may not overlap)."""
    start = timezone.now().replace(microsecond=0) + timedelta(days=next(_DAYS))
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=start, **fields)


def online(*users) -> None:
    for user in users:
        presence_connection_open(user=user, channel_name=f"{user.pk}-tab")


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["user_id"] for row in response.json()["results"]]


@pytest.fixture
def world(doctor, patient, staff, outsider):
    """The persona doctor treats the persona patient; another doctor treats the outsider; an
    unverified doctor; everyone but ``offline_patient`` is connected."""
    treat(doctor, patient)
    other_doctor = DoctorFactory()
    treat(other_doctor, outsider)
    unverified = DoctorFactory(doctor_profile__is_verified=False)
    offline_patient = PatientFactory()
    treat(doctor, offline_patient)
    online(doctor, patient, staff, outsider, other_doctor, unverified)
    return {"other_doctor": other_doctor, "unverified": unverified, "offline_patient": offline_patient}


# --- Staff: any role -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["patient", "doctor", "staff"])
def test_staff_see_connected_users_of_any_role(world, staff, role):
    response = client_for(staff).get(URL, {"role": role})

    rows = response.json()["results"]
    assert listed(response)
    assert {row["role"] for row in rows} == {role}
    assert str(world["offline_patient"].pk) not in listed(response)


def test_staff_without_a_role_see_everyone_connected(world, doctor, patient, staff, outsider):
    ids = set(listed(client_for(staff).get(URL)))

    expected = {doctor, patient, staff, outsider, world["other_doctor"], world["unverified"]}
    assert ids == {str(user.pk) for user in expected}


# --- A doctor: their patients -------------------------------------------------------------------


def test_a_doctor_sees_their_connected_patients_only(world, doctor, patient):
    response = client_for(doctor).get(URL, {"role": "patient"})

    assert listed(response) == [str(patient.pk)]  # not the outsider, not the one offline
    [row] = response.json()["results"]
    assert row == {
        "user_id": str(patient.pk),
        "full_name": patient.full_name,
        "role": "patient",
        "specialty": None,
        "status": "online",
        "last_seen_at": row["last_seen_at"],
    }


def test_a_patient_whose_only_session_was_cancelled_is_not_the_doctors(doctor):
    former = PatientFactory()
    treat(doctor, former, status=SessionStatus.CANCELLED)
    online(former)

    assert listed(client_for(doctor).get(URL, {"role": "patient"})) == []


def test_a_doctor_sees_verified_doctors_and_their_patients_without_a_role(world, doctor, patient):
    ids = set(listed(client_for(doctor).get(URL)))

    assert ids == {str(doctor.pk), str(world["other_doctor"].pk), str(patient.pk)}


def test_a_doctor_may_not_list_staff(world, doctor):
    assert_error(client_for(doctor).get(URL, {"role": "staff"}), 403, "PERMISSION_DENIED")


# --- A patient: doctors, as today --------------------------------------------------------------


def test_a_patient_sees_verified_doctors(world, doctor, patient):
    response = client_for(patient).get(URL, {"role": "doctor"})

    assert set(listed(response)) == {str(doctor.pk), str(world["other_doctor"].pk)}
    assert {row["specialty"] for row in response.json()["results"]} == {doctor.doctor_profile.specialty} | {
        world["other_doctor"].doctor_profile.specialty
    }
    assert set(listed(client_for(patient).get(URL))) == set(listed(response))


@pytest.mark.parametrize("role", ["patient", "staff"])
def test_a_patient_may_not_list_other_roles(world, patient, role):
    assert_error(client_for(patient).get(URL, {"role": role}), 403, "PERMISSION_DENIED")


# --- Bad input, anonymous ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "nurse", "DOCTOR"])
def test_an_unknown_role_is_a_field_error(patient, role):
    error = assert_error(client_for(patient).get(URL, {"role": role}), 400, "VALIDATION_ERROR")

    assert set(error["details"]) == {"role"}
    [item] = error["details"]["role"]
    assert item["code"] == "invalid_choice"
    assert item["message"]


def test_anonymous_requests_are_refused(anon_client):
    assert_error(anon_client.get(URL), 401, "NOT_AUTHENTICATED")


# --- Query budget ------------------------------------------------------------------------------


@pytest.mark.parametrize("patients", [1, 6])
def test_the_list_costs_one_query_however_many_are_online(doctor, patients, django_assert_num_queries):
    treated = [PatientFactory() for _ in range(patients)]
    for someone in treated:
        treat(doctor, someone)
    online(*treated, DoctorFactory())
    viewer = User.objects.get(pk=doctor.pk)

    # presence rows with their users and doctor profiles, the care relationship as a subquery
    with django_assert_num_queries(1):
        rows = OnlineUserSerializer(online_user_list(viewer=viewer), many=True).data

    assert len(rows) == patients + 1
    assert sum(row["specialty"] is not None for row in rows) == 1

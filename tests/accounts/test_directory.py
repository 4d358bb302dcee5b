"""The directory: verified doctors for everyone, a doctor's own patients, everyone for staff;
query counts that do not grow with the page."""

import uuid

import pytest

from accounts import services
from sessions.models import SessionStatus
from tests.accounts.helpers import DOCTORS, PATIENTS, session_between
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [entry["id"] for entry in response.json()["results"]]


# --- Doctors --------------------------------------------------------------------------------


def test_patient_sees_only_verified_active_doctors(patient_client, doctor):
    # given a verified doctor, an unverified one and a suspended one
    unverified = DoctorFactory(doctor_profile__is_verified=False)
    suspended = DoctorFactory()
    services.user_suspend(user=suspended)

    # when a patient lists doctors
    response = patient_client.get(DOCTORS)

    # then only the verified, active doctor is listed, without license number or contact details
    assert _ids(response) == [str(doctor.pk)]
    body = response.json()
    assert body["count"] == 1
    (entry,) = body["results"]
    assert set(entry) == {"id", "first_name", "last_name", "full_name", "display_name", "avatar_url", "profile"}
    assert entry["full_name"] == "Gregory House"
    assert "license_number" not in entry["profile"]
    assert entry["profile"]["specialty"] == "Family Medicine"
    assert str(unverified.pk) not in _ids(response)
    assert str(suspended.pk) not in _ids(response)


def test_staff_also_see_unverified_and_suspended_doctors(staff_client, doctor):
    # given a verified, an unverified and a suspended doctor
    unverified = DoctorFactory(doctor_profile__is_verified=False)
    suspended = DoctorFactory()
    services.user_suspend(user=suspended)

    # when staff list doctors
    response = staff_client.get(DOCTORS)

    # then all three are listed
    assert set(_ids(response)) == {str(doctor.pk), str(unverified.pk), str(suspended.pk)}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("House", ["house"]),
        ("gregory", ["house"]),
        ("cardio", ["yang"]),
        ("Cristina Cardiology", ["yang"]),
        ("medicine", ["house"]),
        ("nobody", []),
    ],
)
def test_doctors_are_searched_by_name_and_specialty(patient_client, doctor, search, expected):
    # given Dr House (Family Medicine) and Dr Yang (Cardiology)
    yang = DoctorFactory(first_name="Cristina", last_name="Yang", doctor_profile__specialty="Cardiology")
    by_name = {"house": str(doctor.pk), "yang": str(yang.pk)}

    # when a patient searches
    response = patient_client.get(DOCTORS, {"search": search})

    # then the matching doctors are listed
    assert _ids(response) == [by_name[name] for name in expected]


def test_doctors_are_filtered_by_exact_specialty(patient_client, doctor):
    # given doctors in Cardiology and Pediatric Cardiology
    yang = DoctorFactory(doctor_profile__specialty="Cardiology")
    DoctorFactory(doctor_profile__specialty="Pediatric Cardiology")

    # when a patient filters by specialty, in other case
    response = patient_client.get(DOCTORS, {"specialty": "cardiology"})

    # then only the exact specialty is listed
    assert _ids(response) == [str(yang.pk)]


def test_doctors_are_paginated(patient_client):
    # given five verified doctors
    doctors = sorted(DoctorFactory.create_batch(5), key=lambda d: (d.last_name, d.first_name, str(d.pk)))

    # when a patient asks for the second page of two
    response = patient_client.get(DOCTORS, {"page": 2, "page_size": 2})

    # then the page holds the third and fourth doctors in name order, with links both ways
    assert _ids(response) == [str(doctors[2].pk), str(doctors[3].pk)]
    body = response.json()
    assert body["count"] == 5
    assert body["next"] is not None
    assert body["previous"] is not None


@pytest.mark.parametrize("params", [{"page": "abc"}, {"page": 999}, {"page": "0"}, {"page": 10**30}])
def test_bad_page_is_not_found(patient_client, doctor, params):
    # given a verified doctor
    # when a page that does not exist is asked for
    response = patient_client.get(DOCTORS, params)

    # then it is not found, not a crash
    assert_error(response, 404, "NOT_FOUND")


def test_too_long_search_is_a_validation_error(patient_client):
    # given a search longer than allowed
    # when it is sent
    response = patient_client.get(DOCTORS, {"search": "x" * 101})

    # then it is a validation error
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "search" in error["details"]


def test_doctor_detail(patient_client, doctor):
    # given a verified doctor
    # when a patient opens their page
    response = patient_client.get(f"{DOCTORS}{doctor.pk}/")

    # then they see the public profile
    assert response.status_code == 200
    assert response.json()["id"] == str(doctor.pk)
    assert response.json()["profile"]["consultation_fee"] == "75.00"


def test_unverified_doctor_is_not_found_for_patients_but_visible_to_staff(patient_client, staff_client):
    # given an unverified doctor
    unverified = DoctorFactory(doctor_profile__is_verified=False)

    # when a patient and staff open their page
    as_patient = patient_client.get(f"{DOCTORS}{unverified.pk}/")
    as_staff = staff_client.get(f"{DOCTORS}{unverified.pk}/")

    # then the patient gets 404 and staff see them
    assert_error(as_patient, 404, "NOT_FOUND")
    assert as_staff.status_code == 200


@pytest.mark.parametrize("path_id", ["patient", "unknown", "not-a-uuid"])
def test_doctor_detail_of_a_non_doctor_is_not_found(patient_client, patient, path_id):
    # given ids that do not name a doctor
    ids = {"patient": str(patient.pk), "unknown": str(uuid.uuid4()), "not-a-uuid": "12345"}

    # when a doctor page is opened with one
    response = patient_client.get(f"{DOCTORS}{ids[path_id]}/")

    # then it is not found
    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("path", [DOCTORS, f"{DOCTORS}{uuid.uuid4()}/", PATIENTS, f"{PATIENTS}{uuid.uuid4()}/"])
def test_directory_needs_a_signed_in_user(anon_client, path):
    # given no credentials
    # when the directory is read
    response = anon_client.get(path)

    # then it is refused as unauthenticated
    assert_error(response, 401, "NOT_AUTHENTICATED")


# --- Patients -------------------------------------------------------------------------------


def test_doctor_sees_only_patients_they_have_or_had_a_session_with(doctor_client, doctor, patient, outsider):
    # given the doctor's current patient, a past one, and the outsider seen by another doctor
    past = PatientFactory(first_name="Paula", last_name="Past")
    session_between(doctor=doctor, patient=patient)
    session_between(doctor=doctor, patient=past, status=SessionStatus.COMPLETED, days_ago=30)
    session_between(doctor=DoctorFactory(), patient=outsider)

    # when the doctor lists patients
    response = doctor_client.get(PATIENTS)

    # then only their own two are listed, once each, with contact details
    assert sorted(_ids(response)) == sorted([str(patient.pk), str(past.pk)])
    entry = next(item for item in response.json()["results"] if item["id"] == str(patient.pk))
    assert entry["email"] == patient.email
    assert entry["profile"] == {"date_of_birth": None, "time_zone": "Europe/Berlin"}


def test_a_patient_whose_only_session_was_cancelled_is_not_the_doctors_patient(doctor_client, doctor, patient):
    # given a patient whose only session with the doctor was cancelled before it took place
    cancelled = PatientFactory(first_name="Carla", last_name="Cancelled")
    session_between(doctor=doctor, patient=patient)
    session_between(doctor=doctor, patient=cancelled, status=SessionStatus.CANCELLED)

    # when the doctor lists patients, or opens that patient
    listed = _ids(doctor_client.get(PATIENTS))
    detail = doctor_client.get(f"{PATIENTS}{cancelled.pk}/")

    # then the patient is neither listed nor found
    assert listed == [str(patient.pk)]
    assert_error(detail, 404, "NOT_FOUND")


def test_doctor_with_several_sessions_lists_the_patient_once(doctor_client, doctor, patient):
    # given three sessions with one patient
    for days_ago in (0, 7, 14):
        session_between(doctor=doctor, patient=patient, days_ago=days_ago)

    # when the doctor lists patients
    response = doctor_client.get(PATIENTS)

    # then the patient is listed once
    assert _ids(response) == [str(patient.pk)]
    assert response.json()["count"] == 1


def test_staff_see_every_patient(staff_client, patient, outsider, doctor):
    # given two patients and a doctor
    # when staff list patients
    response = staff_client.get(PATIENTS)

    # then both patients, and no doctor, are listed
    assert sorted(_ids(response)) == sorted([str(patient.pk), str(outsider.pk)])


def test_patients_are_searched_by_name_and_email(staff_client, patient, outsider):
    # given Alice Patient and Oscar Outsider
    # when staff search
    by_name = staff_client.get(PATIENTS, {"search": "oscar"})
    by_email = staff_client.get(PATIENTS, {"search": patient.email})

    # then the matching patient is listed
    assert _ids(by_name) == [str(outsider.pk)]
    assert _ids(by_email) == [str(patient.pk)]


def test_patient_cannot_list_patients(patient_client):
    # given a signed-in patient
    # when they list patients
    response = patient_client.get(PATIENTS)

    # then they are refused
    assert_error(response, 403, "PERMISSION_DENIED")


def test_patient_detail_for_the_doctor_and_staff(doctor_client, staff_client, doctor, patient):
    # given a patient the doctor has a session with
    session_between(doctor=doctor, patient=patient)

    # when the doctor and staff open the patient's page
    as_doctor = doctor_client.get(f"{PATIENTS}{patient.pk}/")
    as_staff = staff_client.get(f"{PATIENTS}{patient.pk}/")

    # then both see them
    assert as_doctor.status_code == 200
    assert as_doctor.json()["id"] == str(patient.pk)
    assert as_staff.status_code == 200


def test_another_doctors_patient_is_not_found(doctor_client, outsider):
    # given the outsider, seen by another doctor only
    session_between(doctor=DoctorFactory(), patient=outsider)

    # when the doctor opens the outsider's page
    response = doctor_client.get(f"{PATIENTS}{outsider.pk}/")

    # then it is not found
    assert_error(response, 404, "NOT_FOUND")


def test_patient_detail_is_not_found_for_patients(patient_client, patient, outsider):
    # given two patients
    # when a patient opens their own page and the outsider's
    own = patient_client.get(f"{PATIENTS}{patient.pk}/")
    other = client_for(patient).get(f"{PATIENTS}{outsider.pk}/")

    # then both are not found
    assert_error(own, 404, "NOT_FOUND")
    assert_error(other, 404, "NOT_FOUND")


def test_patient_detail_of_a_doctor_is_not_found(staff_client, doctor):
    # given a doctor
    # when staff open the doctor through the patient directory
    response = staff_client.get(f"{PATIENTS}{doctor.pk}/")

    # then it is not found
    assert_error(response, 404, "NOT_FOUND")


# --- Query budgets --------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [2, 20])
def test_doctor_list_query_count_does_not_grow_with_the_page(patient_client, django_assert_num_queries, page_size):
    # given twenty verified doctors
    DoctorFactory.create_batch(20)

    # when a patient lists a page of them
    # then it takes three queries (the user, the count, the page with profiles)
    with django_assert_num_queries(3):
        response = patient_client.get(DOCTORS, {"page_size": page_size})
    assert len(response.json()["results"]) == page_size


@pytest.mark.parametrize("page_size", [2, 20])
def test_patient_list_query_count_does_not_grow_with_the_page(
    doctor_client, doctor, django_assert_num_queries, page_size
):
    # given twenty patients the doctor has seen
    for patient in PatientFactory.create_batch(20):
        session_between(doctor=doctor, patient=patient)

    # when the doctor lists a page of them
    # then it takes four queries (the user, the count, the page with profiles, the audit entry)
    with django_assert_num_queries(4):
        response = doctor_client.get(PATIENTS, {"page_size": page_size})
    assert len(response.json()["results"]) == page_size

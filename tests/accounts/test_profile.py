"""The signed-in user's own account: read it, and change only what a user may change."""

import pytest

from accounts.models import DoctorProfile, Role, User
from tests.accounts.helpers import ME
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_patient_reads_their_account(patient_client, patient):
    # given a signed-in patient
    # when they read their account
    response = patient_client.get(ME)

    # then they see their account and patient profile, and no doctor profile
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(patient.pk)
    assert body["email"] == patient.email
    assert body["full_name"] == "Alice Patient"
    assert body["role"] == "patient"
    assert body["patient_profile"] == {"date_of_birth": None, "time_zone": "Europe/Berlin"}
    assert body["doctor_profile"] is None
    assert "password" not in body
    assert "token_generation" not in body


def test_doctor_reads_their_account_with_license(doctor_client, doctor):
    # given a signed-in doctor
    # when they read their account
    response = doctor_client.get(ME)

    # then they see their doctor profile, license included
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "doctor"
    assert body["doctor_profile"]["license_number"] == doctor.doctor_profile.license_number
    assert body["doctor_profile"]["is_verified"] is True
    assert body["patient_profile"] is None


def test_staff_reads_their_account_without_profiles(staff_client, staff):
    # given a signed-in staff member
    # when they read their account
    body = staff_client.get(ME).json()

    # then there is no profile
    assert (body["role"], body["doctor_profile"], body["patient_profile"]) == ("staff", None, None)


def test_patient_updates_names_and_profile(patient_client, patient):
    # given a signed-in patient
    # when they change their name, birth date and time zone
    response = patient_client.patch(
        ME,
        {"first_name": "Alicia", "patient_profile": {"date_of_birth": "1985-02-03", "time_zone": "Asia/Tokyo"}},
    )

    # then the answer and the database show the change
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Alicia"
    assert response.json()["patient_profile"] == {"date_of_birth": "1985-02-03", "time_zone": "Asia/Tokyo"}
    patient.refresh_from_db()
    assert (patient.first_name, patient.last_name) == ("Alicia", "Patient")
    assert str(patient.patient_profile.date_of_birth) == "1985-02-03"
    assert patient.patient_profile.time_zone == "Asia/Tokyo"


def test_doctor_updates_practice_details(doctor_client, doctor):
    # given a signed-in doctor
    # when they change bio, fee, currency, session length and time zone
    response = doctor_client.patch(
        ME,
        {
            "doctor_profile": {
                "bio": "Diagnostics.",
                "consultation_fee": "95.50",
                "currency": "EUR",
                "consultation_minutes": 30,
                "time_zone": "Europe/Rome",
            }
        },
    )

    # then the profile is changed
    assert response.status_code == 200, response.content
    profile = DoctorProfile.objects.get(user=doctor)
    assert (profile.bio, str(profile.consultation_fee), profile.currency) == ("Diagnostics.", "95.50", "EUR")
    assert (profile.consultation_minutes, profile.time_zone) == (30, "Europe/Rome")


def test_no_mass_assignment_of_role_email_flags_or_license():
    # given an unverified doctor with unverified email and phone
    doctor = DoctorFactory(
        email="dr.grey@example.test",
        email_verified=False,
        phone_number="+14155550123",
        doctor_profile__is_verified=False,
        doctor_profile__specialty="Surgery",
        doctor_profile__license_number="SURG-1",
    )
    client = client_for(doctor)

    # when they try to promote themselves through their profile
    response = client.patch(
        ME,
        {
            "id": "00000000-0000-0000-0000-000000000000",
            "role": "staff",
            "email": "boss@example.test",
            "email_verified": True,
            "phone_number": "+12025550143",
            "phone_verified": True,
            "is_active": False,
            "is_staff": True,
            "is_superuser": True,
            "token_generation": 99,
            "password": "Sturdy-Lantern-42",
            "doctor_profile": {"is_verified": True, "specialty": "Cardiology", "license_number": "FAKE-1"},
        },
    )

    # then the request succeeds but nothing of that changed
    assert response.status_code == 200, response.content
    doctor.refresh_from_db()
    assert doctor.role == Role.DOCTOR
    assert doctor.email == "dr.grey@example.test"
    assert (doctor.email_verified, doctor.phone_verified) == (False, False)
    assert doctor.phone_number == "+14155550123"
    assert (doctor.is_active, doctor.is_staff, doctor.is_superuser) == (True, False, False)
    assert doctor.token_generation == 0
    assert not doctor.check_password("Sturdy-Lantern-42")
    profile = DoctorProfile.objects.get(user=doctor)
    assert (profile.is_verified, profile.specialty, profile.license_number) == (False, "Surgery", "SURG-1")
    # and the token still works
    assert client.get(ME).status_code == 200


def test_patient_cannot_create_or_edit_a_doctor_profile(patient_client, patient):
    # given a signed-in patient
    # when they send doctor profile fields
    response = patient_client.patch(ME, {"doctor_profile": {"bio": "I am a doctor now.", "time_zone": "Asia/Tokyo"}})

    # then nothing changes: no doctor profile, and their own time zone is untouched
    assert response.status_code == 200, response.content
    assert not DoctorProfile.objects.filter(user=patient).exists()
    patient.refresh_from_db()
    assert patient.patient_profile.time_zone == "Europe/Berlin"


def test_doctor_without_a_profile_gets_not_found_for_profile_edits():
    # given a doctor account made in the admin without a profile
    doctor = UserFactory(role=Role.DOCTOR)

    # when they edit profile fields
    response = client_for(doctor).patch(ME, {"first_name": "Meredith", "doctor_profile": {"bio": "Hi."}})

    # then it is refused as not found, and nothing was half-written
    assert_error(response, 404, "NOT_FOUND")
    doctor.refresh_from_db()
    assert doctor.first_name != "Meredith"


def test_patient_without_a_profile_gets_one_on_first_edit():
    # given a patient account made in the admin without a profile
    patient = UserFactory(role=Role.PATIENT)

    # when they set their time zone
    response = client_for(patient).patch(ME, {"patient_profile": {"time_zone": "Asia/Tokyo"}})

    # then the profile exists with it
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=patient.pk).patient_profile.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"last_name": {"a": 1}}, "last_name"),
        ({"patient_profile": "Europe/Paris"}, "patient_profile"),
        ({"patient_profile": {"date_of_birth": "03/02/1985"}}, "patient_profile"),
        ({"patient_profile": {"date_of_birth": "2999-01-01"}}, "patient_profile"),
        ({"patient_profile": {"time_zone": "Mars/Olympus_Mons"}}, "patient_profile"),
    ],
    ids=["blank-name", "long-name", "name-object", "profile-string", "date-format", "future-birth", "time-zone"],
)
def test_bad_patient_update_is_a_validation_error(patient_client, patient, body, field):
    # given a signed-in patient
    # when they send an invalid change
    response = patient_client.patch(ME, body)

    # then it is refused, naming the field, and nothing changed
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]
    patient.refresh_from_db()
    assert patient.first_name == "Alice"


@pytest.mark.parametrize(
    "profile",
    [
        {"consultation_fee": "-1.00"},
        {"consultation_fee": 10**20},
        {"consultation_fee": "free"},
        {"consultation_minutes": 5},
        {"consultation_minutes": 10**9},
        {"consultation_minutes": "long"},
        {"currency": "euro"},
        {"bio": "x" * 5001},
    ],
)
def test_bad_doctor_update_is_a_validation_error(doctor_client, doctor, profile):
    # given a signed-in doctor
    # when they send an invalid practice detail
    response = doctor_client.patch(ME, {"doctor_profile": profile})

    # then it is refused and the profile is unchanged
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "doctor_profile" in error["details"]
    profile_row = DoctorProfile.objects.get(user=doctor)
    assert (str(profile_row.consultation_fee), profile_row.consultation_minutes) == ("75.00", 50)


def test_me_needs_a_signed_in_user(anon_client):
    # given no credentials
    # when the account is read or changed
    read = anon_client.get(ME)
    change = anon_client.patch(ME, {"first_name": "Eve"})

    # then both are refused as unauthenticated
    assert_error(read, 401, "NOT_AUTHENTICATED")
    assert_error(change, 401, "NOT_AUTHENTICATED")


def test_me_refuses_non_json_and_malformed_bodies(patient_client):
    # given a signed-in patient
    # when they send a form-encoded body and a broken JSON body
    form = patient_client.patch(ME, "first_name=Eve", content_type="application/x-www-form-urlencoded")
    broken = patient_client.patch(ME, '{"first_name": ', content_type="application/json")

    # then each is refused with its code
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(broken, 400, "MALFORMED_REQUEST")


@pytest.mark.parametrize("method", ["put", "post", "delete"])
def test_me_has_no_other_methods(patient_client, method):
    # given a signed-in patient
    # when they use a method the endpoint does not have
    response = getattr(patient_client, method)(ME, {})

    # then it is refused
    assert_error(response, 405, "METHOD_NOT_ALLOWED")

"""Admin for users and profiles: pages load, search and filters work, and the verify /
suspend / reactivate actions go through the services (suspending revokes tokens)."""

import pytest
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.test import Client

from accounts.models import DoctorProfile, Role, User
from tests.accounts.helpers import LOGIN, ME
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PASSWORD, DoctorFactory, PatientFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def superuser():
    return StaffFactory(first_name="Ada", last_name="Admin", is_superuser=True)


@pytest.fixture
def admin_browser(superuser) -> Client:
    browser = Client()
    browser.force_login(superuser)
    return browser


def _act(browser: Client, action: str, users) -> None:
    response = browser.post(CHANGELIST, {"action": action, "_selected_action": [str(user.pk) for user in users]})
    assert response.status_code == 302, response.content


def test_user_list_search_and_filters_load(admin_browser, doctor, patient):
    # given a doctor and a patient
    # when the user list is opened, searched and filtered
    listing = admin_browser.get(CHANGELIST)
    search = admin_browser.get(CHANGELIST, {"q": "House"})
    by_role = admin_browser.get(CHANGELIST, {"role__exact": "patient"})
    by_verified = admin_browser.get(CHANGELIST, {"doctor_profile__is_verified__exact": "1"})

    # then each page loads and lists the matching users
    assert listing.status_code == 200
    assert doctor.email in listing.content.decode()
    assert search.status_code == 200
    assert doctor.email in search.content.decode()
    assert patient.email not in search.content.decode()
    assert patient.email in by_role.content.decode()
    assert doctor.email not in by_role.content.decode()
    assert doctor.email in by_verified.content.decode()


def test_change_and_add_pages_load(admin_browser, doctor, patient, staff):
    # given a doctor, a patient and a staff member
    # when their change pages and the add page are opened
    pages = [f"{CHANGELIST}{user.pk}/change/" for user in (doctor, patient, staff)] + [f"{CHANGELIST}add/"]
    responses = [admin_browser.get(page) for page in pages]

    # then all load, the doctor's with the license inline
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    assert doctor.doctor_profile.license_number in responses[0].content.decode()


def test_profile_admins_load(admin_browser, doctor, patient):
    # given profiles
    # when their lists are opened and searched
    doctors = admin_browser.get("/admin/accounts/doctorprofile/", {"q": doctor.doctor_profile.license_number})
    patients = admin_browser.get("/admin/accounts/patientprofile/", {"q": patient.last_name})

    # then they load with the match
    assert doctors.status_code == 200
    assert f"Dr. {doctor.full_name}" in doctors.content.decode()
    assert patients.status_code == 200
    assert f"Patient {patient.full_name}" in patients.content.decode()


def test_staff_add_a_user_in_the_admin(admin_browser):
    # given the add form
    # when staff create a staff member there
    response = admin_browser.post(
        f"{CHANGELIST}add/",
        {
            "email": "New.Staff@Example.test",
            "first_name": "Nina",
            "last_name": "New",
            "role": "staff",
            "password1": "Sturdy-Lantern-42",
            "password2": "Sturdy-Lantern-42",
            "usable_password": "true",
        },
    )

    # then the user exists with a hashed password and a lower-cased email
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.staff@example.test")
    assert user.role == Role.STAFF
    assert identify_hasher(user.password).algorithm == get_hasher().algorithm


@pytest.mark.parametrize(("email", "phone", "created"), [("", "+14155550123", True), ("", "", False)])
def test_staff_add_a_user_with_a_phone_only_or_neither(admin_browser, email, phone, created):
    # when staff create a patient with a phone number and no email, or with neither
    response = admin_browser.post(
        f"{CHANGELIST}add/",
        {
            "email": email,
            "phone_number": phone,
            "first_name": "Pia",
            "last_name": "Phone",
            "role": "patient",
            "password1": "Sturdy-Lantern-42",
            "password2": "Sturdy-Lantern-42",
            "usable_password": "true",
        },
    )

    # then the phone-only account exists without an address; one with neither is refused
    if created:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert User.objects.get(last_name="Phone").email is None
    else:
        assert response.status_code == 200
        assert b"Give an email address, a phone number, or both." in response.content
        assert not User.objects.filter(last_name="Phone").exists()


def test_verify_action_verifies_doctors_only(admin_browser, patient, django_capture_on_commit_callbacks):
    # given two unverified doctors and a patient
    first = DoctorFactory(doctor_profile__is_verified=False)
    second = DoctorFactory(doctor_profile__is_verified=False)

    # when staff verify all three
    _act(admin_browser, "verify_doctors", [first, second, patient])

    # then both doctors are verified, with the time recorded, and patients can book them
    profiles = DoctorProfile.objects.filter(user__in=[first, second])
    assert [profile.is_verified for profile in profiles] == [True, True]
    assert all(profile.verified_at is not None for profile in profiles)
    assert not DoctorProfile.objects.filter(user=patient).exists()
    listed = client_for(patient).get("/api/v1/doctors/").json()["results"]
    assert {str(first.pk), str(second.pk)} <= {entry["id"] for entry in listed}


def test_suspend_action_blocks_sign_in_and_revokes_tokens(admin_browser, patient, doctor):
    # given a patient and a doctor with working tokens
    patient_client, doctor_client = client_for(patient), client_for(doctor)
    assert patient_client.get(ME).status_code == 200

    # when staff suspend both
    _act(admin_browser, "suspend_users", [patient, doctor])

    # then both are inactive, their tokens are revoked and they cannot sign in
    for user in (patient, doctor):
        user.refresh_from_db()
    assert (patient.is_active, doctor.is_active) == (False, False)
    assert (patient.token_generation, doctor.token_generation) == (1, 1)
    assert_error(patient_client.get(ME), 401, "TOKEN_INVALID")
    assert_error(doctor_client.get(ME), 401, "TOKEN_INVALID")
    assert_error(
        Client().post(LOGIN, {"email": patient.email, "password": PASSWORD}, content_type="application/json"),
        401,
        "INVALID_CREDENTIALS",
    )


def test_staff_cannot_suspend_themselves(admin_browser, superuser):
    # given the signed-in superuser
    # when they select themselves for suspension
    _act(admin_browser, "suspend_users", [superuser])

    # then they stay active
    superuser.refresh_from_db()
    assert superuser.is_active is True


def test_reactivate_action_allows_sign_in_but_old_tokens_stay_revoked(admin_browser, patient):
    # given a suspended patient and a token from before the suspension
    old_client = client_for(patient)
    _act(admin_browser, "suspend_users", [patient])

    # when staff reactivate them
    _act(admin_browser, "reactivate_users", [patient])

    # then they can sign in again, but the old token does not come back to life
    patient.refresh_from_db()
    assert patient.is_active is True
    login = Client().post(LOGIN, {"email": patient.email, "password": PASSWORD}, content_type="application/json")
    assert login.status_code == 200
    assert_error(old_client.get(ME), 401, "TOKEN_INVALID")


def test_unticking_active_on_the_form_revokes_tokens(admin_browser):
    # given a staff member (no profile inline) with a working token
    member = StaffFactory(first_name="Sid", last_name="Staff")
    old_client = client_for(member)

    # when the admin form is saved with "active" unticked
    response = admin_browser.post(
        f"{CHANGELIST}{member.pk}/change/",
        {
            "email": member.email,
            "first_name": "Sid",
            "last_name": "Staff",
            "role": "staff",
            "phone_number": "",
            "is_staff": "on",
        },
    )

    # then the user is inactive and the token is revoked
    assert response.status_code == 302, response.content.decode()[:2000]
    member.refresh_from_db()
    assert member.is_active is False
    assert member.token_generation == 1
    assert_error(old_client.get(ME), 401, "TOKEN_INVALID")


@pytest.mark.parametrize("persona", ["patient", "doctor", "clinic-staff-without-admin"])
def test_admin_is_closed_to_non_staff(persona):
    # given users without admin access
    users = {
        "patient": PatientFactory(),
        "doctor": DoctorFactory(),
        "clinic-staff-without-admin": UserFactory(role=Role.STAFF, is_staff=False),
    }
    browser = Client()
    browser.force_login(users[persona])

    # when they open the admin user list
    response = browser.get(CHANGELIST)

    # then they are sent to the admin sign-in page
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_password_set_in_the_admin_revokes_tokens(admin_browser, patient):
    # given a patient with a working token
    old_client = client_for(patient)

    # when staff set a new password for them in the admin
    response = admin_browser.post(
        f"{CHANGELIST}{patient.pk}/password/",
        {"password1": "Sturdy-Lantern-42", "password2": "Sturdy-Lantern-42", "usable_password": "true"},
    )

    # then the new password is set and the old token is revoked
    assert response.status_code == 302, response.content.decode()[:2000]
    patient.refresh_from_db()
    assert patient.check_password("Sturdy-Lantern-42")
    assert_error(old_client.get(ME), 401, "TOKEN_INVALID")

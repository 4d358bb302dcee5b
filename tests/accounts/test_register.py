"""Registration: patients and unverified doctors sign up; a known email gets the same answer."""

import re

import pytest
from django.core import mail

from accounts import sms
from accounts.models import DoctorProfile, Role, User
from tests.accounts.helpers import (
    DOCTORS,
    PHONE,
    REGISTER,
    STRONG_PASSWORD,
    doctor_register_body,
    error_messages,
    link_in,
    register_body,
)
from tests.assertions import assert_error
from tests.factories import PASSWORD, DoctorFactory, PatientFactory

pytestmark = pytest.mark.django_db

ACCEPTED = {"detail": "Registration received. Check your email to confirm your address, then sign in."}


def test_patient_registers_and_is_emailed_a_confirmation_link(anon_client, django_capture_on_commit_callbacks):
    # given a new visitor
    body = register_body(date_of_birth="1990-05-17", time_zone="Europe/Paris")

    # when they register
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, body)

    # then the answer is 202 and an unconfirmed patient with a profile exists
    assert response.status_code == 202, response.content
    assert response.json() == ACCEPTED
    user = User.objects.get(email="margaret.hamilton@example.test")
    assert user.role == Role.PATIENT
    assert user.email_verified is False
    assert user.is_active is True
    assert str(user.patient_profile.date_of_birth) == "1990-05-17"
    assert user.patient_profile.time_zone == "Europe/Paris"
    # and a confirmation link went to the address
    (message,) = mail.outbox
    assert message.to == ["margaret.hamilton@example.test"]
    assert message.subject == "Confirm your email address"
    assert link_in(message)["path"] == "/verify-email"


def test_doctor_registers_unverified_and_is_not_listed(anon_client, patient_client):
    # given a doctor's sign-up
    # when they register
    response = anon_client.post(REGISTER, doctor_register_body(bio="Brains."))

    # then they exist as an unverified doctor with their profile
    assert response.status_code == 202, response.content
    doctor = User.objects.get(email="dr.shepherd@example.test")
    assert doctor.role == Role.DOCTOR
    profile = doctor.doctor_profile
    assert (profile.specialty, profile.license_number, str(profile.consultation_fee)) == (
        "Neurology",
        "NEURO-0001",
        "120.00",
    )
    assert profile.time_zone == "America/Chicago"
    assert profile.is_verified is False
    # and patients cannot find them until staff verify them
    listed = patient_client.get(DOCTORS).json()["results"]
    assert str(doctor.pk) not in [entry["id"] for entry in listed]


def test_known_email_gets_the_same_answer_and_its_owner_is_told(anon_client, django_capture_on_commit_callbacks):
    # given a registered patient
    owner = PatientFactory(email="margaret.hamilton@example.test")

    # when someone registers with the same address, in other case
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, register_body(email="MARGARET.Hamilton@example.test", first_name="Eve"))

    # then the answer is the one a new address gets
    assert response.status_code == 202
    assert response.json() == ACCEPTED
    # and nothing changed about the account
    assert User.objects.filter(email="margaret.hamilton@example.test").count() == 1
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert owner.first_name != "Eve"
    # and the owner (not the registrant) is told someone tried
    (message,) = mail.outbox
    assert message.to == ["margaret.hamilton@example.test"]
    assert message.subject == "You already have an account"


def test_known_email_costs_a_password_hash_like_a_new_one(anon_client, argon2_hashes):
    # given a registered patient
    PatientFactory(email="margaret.hamilton@example.test")

    # when someone registers with that address
    response = anon_client.post(REGISTER, register_body())

    # then the password was hashed anyway, so the answer takes as long as for a new address
    assert response.status_code == 202
    assert argon2_hashes == ["hash"]


def test_registration_with_a_phone_number_texts_a_code(anon_client, django_capture_on_commit_callbacks):
    # given a visitor who gives a phone number
    # when they register
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, register_body(phone_number=PHONE))

    # then the number is on the account, unverified, and a 6-digit code was texted to it
    assert response.status_code == 202
    user = User.objects.get(email="margaret.hamilton@example.test")
    assert (user.phone_number, user.phone_verified) == (PHONE, False)
    (text,) = sms.outbox
    assert text.to == PHONE
    assert re.search(r"\b\d{6}\b", text.body)


def test_staff_role_cannot_be_chosen(anon_client):
    # given a sign-up asking for the staff role
    # when it is sent
    response = anon_client.post(REGISTER, register_body(role="staff"))

    # then it is refused and nobody is created
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "role" in error["details"]
    assert not User.objects.exists()


def test_doctor_needs_specialty_and_license(anon_client):
    # given a doctor's sign-up without specialty and license number
    body = doctor_register_body()
    del body["specialty"], body["license_number"]

    # when it is sent
    response = anon_client.post(REGISTER, body)

    # then both are reported missing
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"specialty", "license_number"}
    assert not User.objects.exists()


def test_license_number_on_file_is_a_conflict(anon_client):
    # given a doctor with license NEURO-0001
    DoctorFactory(doctor_profile__license_number="NEURO-0001")

    # when another doctor registers with the same license number
    response = anon_client.post(REGISTER, doctor_register_body())

    # then it is a conflict and no second account exists
    assert_error(response, 409, "LICENSE_NUMBER_TAKEN")
    assert not User.objects.filter(email="dr.shepherd@example.test").exists()
    assert DoctorProfile.objects.filter(license_number="NEURO-0001").count() == 1


@pytest.mark.parametrize("field", ["password", "first_name", "last_name"])
def test_missing_field_is_reported(anon_client, field):
    # given a sign-up without one required field
    body = register_body()
    del body[field]

    # when it is sent
    response = anon_client.post(REGISTER, body)

    # then that field is reported
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", ["margaret@example.test"]),
        ("password", {"value": STRONG_PASSWORD}),
        ("first_name", {"name": "Margaret"}),
        ("last_name", True),
        ("role", 7),
        ("date_of_birth", "seventeenth of May"),
        ("date_of_birth", 19900517),
        ("time_zone", "Mars/Olympus_Mons"),
        ("consultation_fee", "a lot"),
        ("consultation_fee", 10**20),
        ("currency", "dollars"),
        ("phone_number", 4155550123),
    ],
)
def test_wrong_typed_field_is_reported(anon_client, field, value):
    # given a sign-up with a field of the wrong type or form
    body = register_body(**{field: value})

    # when it is sent
    response = anon_client.post(REGISTER, body)

    # then that field is reported
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["margaret", "margaret@", "@example.test", "margaret@example", "a b@example.test"])
def test_invalid_email_is_reported(anon_client, email):
    # given a sign-up with a malformed email address
    # when it is sent
    response = anon_client.post(REGISTER, register_body(email=email))

    # then the email is reported
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "email" in error["details"]


@pytest.mark.parametrize(
    "phone",
    [
        "4155550123",
        "+1 415 555 0123",
        "+1-415-555-0123",
        "+1234",
        "+14155550123456789",
        "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0662\u0663",
    ],
    ids=["no-plus", "spaces", "dashes", "too-short", "too-long", "arabic-indic-digits"],
)
def test_invalid_phone_is_reported(anon_client, phone):
    # given a sign-up with a phone number not in E.164 form, or not a possible number
    # when it is sent
    response = anon_client.post(REGISTER, register_body(phone_number=phone))

    # then the phone number is reported
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "phone_number" in error["details"]
    assert not User.objects.exists()


def test_date_of_birth_in_the_future_is_reported(anon_client):
    # given a sign-up with a birth date after today
    # when it is sent
    response = anon_client.post(REGISTER, register_body(date_of_birth="2999-01-01"))

    # then the birth date is reported
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "date_of_birth" in error["details"]


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Ab1-xyz", "too short"),
        ("lantern-sturdy-42", "an upper-case letter"),
        ("LANTERN-STURDY-42", "a lower-case letter"),
        ("Lantern-Sturdy-Forty", "a digit"),
        ("Password1", "too common"),
        ("Hamilton-1", "too similar to the last name"),
    ],
    ids=["length", "upper", "lower", "digit", "common", "similar-to-user"],
)
def test_weak_password_is_refused_with_the_rule_it_breaks(anon_client, password, rule):
    # given a sign-up whose password breaks one rule
    # when it is sent
    response = anon_client.post(REGISTER, register_body(password=password))

    # then the password is refused, naming the rule, and nobody is created
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(rule in message for message in error_messages(error, "password")), error
    assert not User.objects.exists()


def test_form_encoded_body_is_unsupported(anon_client):
    # given a body that is not JSON
    # when it is sent
    response = anon_client.post(
        REGISTER, "email=a%40b.test&password=x", content_type="application/x-www-form-urlencoded"
    )

    # then it is refused as an unsupported media type
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_a_malformed_request(anon_client):
    # given a body that is broken JSON
    # when it is sent
    response = anon_client.post(REGISTER, '{"email": "a@b.test", ', content_type="application/json")

    # then it is refused as malformed
    assert_error(response, 400, "MALFORMED_REQUEST")


def test_json_that_is_not_an_object_is_a_validation_error(anon_client):
    # given a JSON array instead of an object
    # when it is sent
    response = anon_client.post(REGISTER, "[1, 2, 3]", content_type="application/json")

    # then it is a validation error
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "non_field_errors" in error["details"]


def test_get_is_not_allowed(anon_client):
    # given the register endpoint
    # when it is read
    response = anon_client.get(REGISTER)

    # then the method is refused
    assert_error(response, 405, "METHOD_NOT_ALLOWED")

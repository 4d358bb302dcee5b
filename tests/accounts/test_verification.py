"""Email verification by emailed link (and resend), phone verification by texted code."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from accounts import sms
from accounts.models import PhoneVerification, User
from tests.accounts.helpers import (
    EMAIL_RESEND,
    EMAIL_VERIFY,
    LOGIN,
    OTHER_PHONE,
    PHONE,
    PHONE_SEND_CODE,
    PHONE_VERIFY,
    REGISTER,
    link_in,
    register_body,
    sent_code,
)
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db

RESEND_ANSWER = {"detail": "If the address belongs to an unconfirmed account, a new link is on its way."}


def _registered(anon_client, capture) -> tuple[User, dict]:
    with capture(execute=True):
        assert anon_client.post(REGISTER, register_body()).status_code == 202
    return User.objects.get(email="margaret.hamilton@example.test"), link_in(mail.outbox[-1])


# --- Email ----------------------------------------------------------------------------------


def test_emailed_link_confirms_the_address(anon_client, django_capture_on_commit_callbacks):
    # given a new registrant and the link they were emailed
    user, link = _registered(anon_client, django_capture_on_commit_callbacks)

    # when they open it
    response = anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]})

    # then the address is confirmed
    assert response.status_code == 200, response.content
    assert response.json() == {"detail": "Email address confirmed."}
    user.refresh_from_db()
    assert user.email_verified is True


def test_confirmation_link_works_once(anon_client, django_capture_on_commit_callbacks):
    # given a confirmation link that has been used
    _, link = _registered(anon_client, django_capture_on_commit_callbacks)
    assert anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]}).status_code == 200

    # when it is used again
    response = anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]})

    # then it is refused
    assert_error(response, 400, "INVALID_VERIFICATION_TOKEN")


def test_confirmation_link_expires(anon_client, django_capture_on_commit_callbacks):
    # given a confirmation link sent just over PASSWORD_RESET_TIMEOUT ago
    with time_machine.travel(timezone.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5), tick=False):
        user, link = _registered(anon_client, django_capture_on_commit_callbacks)

    # when it is used
    response = anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]})

    # then it is refused and the address stays unconfirmed
    assert_error(response, 400, "INVALID_VERIFICATION_TOKEN")
    user.refresh_from_db()
    assert user.email_verified is False


def test_password_reset_token_does_not_confirm_an_address(anon_client, django_capture_on_commit_callbacks):
    # given a new registrant who also asked for a password reset link
    user, _ = _registered(anon_client, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        anon_client.post("/api/v1/auth/password/forgot/", {"email": user.email})
    reset = link_in(mail.outbox[-1])

    # when the reset token is presented as a confirmation token
    response = anon_client.post(EMAIL_VERIFY, {"uid": reset["uid"], "token": reset["token"]})

    # then it is refused
    assert_error(response, 400, "INVALID_VERIFICATION_TOKEN")
    user.refresh_from_db()
    assert user.email_verified is False


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"uid": "garbage", "token": "garbage"}, 400, "INVALID_VERIFICATION_TOKEN"),
        ({"token": "abc"}, 400, "VALIDATION_ERROR"),
        ({"uid": "abc"}, 400, "VALIDATION_ERROR"),
        ({"uid": ["abc"], "token": "abc"}, 400, "VALIDATION_ERROR"),
    ],
    ids=["garbage", "no-uid", "no-token", "uid-list"],
)
def test_bad_confirmation_input_is_refused(anon_client, body, status, code):
    # given a malformed confirmation request
    # when it is sent
    response = anon_client.post(EMAIL_VERIFY, body)

    # then it is refused with the error shape
    assert_error(response, status, code)


def test_resend_sends_a_new_working_link(anon_client, django_capture_on_commit_callbacks):
    # given an unconfirmed registrant
    user, _ = _registered(anon_client, django_capture_on_commit_callbacks)

    # when they ask for a new link
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(EMAIL_RESEND, {"email": user.email})

    # then the answer is 202 and the new link confirms the address
    assert response.status_code == 202
    assert response.json() == RESEND_ANSWER
    link = link_in(mail.outbox[-1])
    assert anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]}).status_code == 200
    user.refresh_from_db()
    assert user.email_verified is True


@pytest.mark.parametrize("email", ["confirmed@example.test", "nobody@example.test"], ids=["confirmed", "unknown"])
def test_resend_answers_the_same_and_sends_nothing_when_there_is_nothing_to_confirm(
    anon_client, django_capture_on_commit_callbacks, email
):
    # given a confirmed account (and no account for the unknown address)
    PatientFactory(email="confirmed@example.test", email_verified=True)

    # when a new link is asked for
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(EMAIL_RESEND, {"email": email})

    # then the answer is the usual one and nothing is sent
    assert response.status_code == 202
    assert response.json() == RESEND_ANSWER
    assert mail.outbox == []


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"email": 42}])
def test_bad_resend_input_is_a_validation_error(anon_client, body):
    # given a malformed request
    # when it is sent
    response = anon_client.post(EMAIL_RESEND, body)

    # then it is a validation error
    assert_error(response, 400, "VALIDATION_ERROR")


# --- Phone ----------------------------------------------------------------------------------


def test_texted_code_verifies_the_phone_and_it_becomes_a_login(
    patient_client, patient, anon_client, django_capture_on_commit_callbacks
):
    # given a patient who asks for a code to a new number
    with django_capture_on_commit_callbacks(execute=True):
        sent = patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    assert sent.status_code == 202
    assert sent.json() == {"detail": "A code is on its way."}
    patient.refresh_from_db()
    assert (patient.phone_number, patient.phone_verified) == (PHONE, False)
    # and only a hash of the code is stored
    code = sent_code(PHONE)
    assert code not in PhoneVerification.objects.get(user=patient).code_hash

    # when they send the code back
    response = patient_client.post(PHONE_VERIFY, {"code": code})

    # then the number is verified
    assert response.status_code == 200, response.content
    assert response.json()["phone_verified"] is True
    patient.refresh_from_db()
    assert patient.phone_verified is True
    # and it signs them in
    login = anon_client.post(LOGIN, {"phone_number": PHONE, "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["user"]["id"] == str(patient.pk)


def test_code_goes_to_the_number_on_the_account_when_none_is_given(django_capture_on_commit_callbacks):
    # given a patient with an unverified number on the account
    patient = PatientFactory(phone_number=PHONE)

    # when they ask for a code without naming a number
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(patient).post(PHONE_SEND_CODE, {})

    # then it is texted to the number on the account
    assert response.status_code == 202
    assert [text.to for text in sms.outbox] == [PHONE]


def test_code_without_any_number_is_a_validation_error(patient_client):
    # given a patient with no number on the account
    # when they ask for a code without naming one
    response = patient_client.post(PHONE_SEND_CODE, {})

    # then the number is reported missing and nothing is sent
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "phone_number" in error["details"]
    assert sms.outbox == []


@pytest.mark.parametrize("phone", ["4155550123", "+1234", "+1 415 555 0123", 14155550123])
def test_code_to_an_invalid_number_is_a_validation_error(patient_client, patient, phone):
    # given a signed-in patient
    # when they ask for a code to a malformed number
    response = patient_client.post(PHONE_SEND_CODE, {"phone_number": phone})

    # then it is refused and the account is unchanged
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "phone_number" in error["details"]
    patient.refresh_from_db()
    assert patient.phone_number == ""


def test_wrong_code_is_refused(patient_client, patient, django_capture_on_commit_callbacks):
    # given a code texted to the patient
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    wrong = f"{(int(sent_code(PHONE)) + 1) % 10**6:06d}"

    # when they send another code
    response = patient_client.post(PHONE_VERIFY, {"code": wrong})

    # then it is refused and counted
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")
    patient.refresh_from_db()
    assert patient.phone_verified is False
    assert PhoneVerification.objects.get(user=patient).attempts == 1


@override_settings(PHONE_CODE_MAX_ATTEMPTS=2)
def test_code_is_burnt_after_the_allowed_attempts(patient_client, patient, django_capture_on_commit_callbacks):
    # given a texted code and two wrong tries (the limit)
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    code = sent_code(PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(2):
        assert_error(patient_client.post(PHONE_VERIFY, {"code": wrong}), 400, "INVALID_VERIFICATION_CODE")

    # when the right code is sent
    response = patient_client.post(PHONE_VERIFY, {"code": code})

    # then it no longer works
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")
    patient.refresh_from_db()
    assert patient.phone_verified is False


def test_code_expires(patient, django_capture_on_commit_callbacks):
    # given a code texted just over PHONE_CODE_TTL_SECONDS ago
    sent_at = timezone.now() - timedelta(seconds=settings.PHONE_CODE_TTL_SECONDS + 5)
    with time_machine.travel(sent_at, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert client_for(patient).post(PHONE_SEND_CODE, {"phone_number": PHONE}).status_code == 202

    # when it is sent back
    response = client_for(patient).post(PHONE_VERIFY, {"code": sent_code(PHONE)})

    # then it is refused
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")
    patient.refresh_from_db()
    assert patient.phone_verified is False


def test_new_code_replaces_the_earlier_one(patient_client, patient, django_capture_on_commit_callbacks):
    # given two codes texted one after the other
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    first = sent_code(PHONE)
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    second = sent_code(PHONE)

    # when the first is sent back, then the second
    stale = patient_client.post(PHONE_VERIFY, {"code": first})
    fresh = patient_client.post(PHONE_VERIFY, {"code": second})

    # then only the newest works
    assert_error(stale, 400, "INVALID_VERIFICATION_CODE")
    assert fresh.status_code == 200


def test_code_for_an_earlier_number_does_not_verify_a_new_one(
    patient_client, patient, django_capture_on_commit_callbacks
):
    # given a code texted to one number, then the number changed on another request
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})
    first = sent_code(PHONE)
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": OTHER_PHONE})

    # when the first number's code is sent back
    response = patient_client.post(PHONE_VERIFY, {"code": first})

    # then it is refused
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")
    patient.refresh_from_db()
    assert (patient.phone_number, patient.phone_verified) == (OTHER_PHONE, False)


def test_number_verified_on_another_account_is_a_conflict(patient_client, patient, django_capture_on_commit_callbacks):
    # given another account that verified PHONE, and a code texted to PHONE for the patient
    PatientFactory(phone_number=PHONE, phone_verified=True)
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})

    # when the patient sends the right code back
    response = patient_client.post(PHONE_VERIFY, {"code": sent_code(PHONE)})

    # then it is a conflict and the patient's number stays unverified
    assert_error(response, 409, "PHONE_NUMBER_TAKEN")
    patient.refresh_from_db()
    assert patient.phone_verified is False


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "", ["123456"]])
def test_malformed_code_is_a_validation_error(patient_client, code):
    # given a signed-in patient
    # when they send something that is not 6 digits
    response = patient_client.post(PHONE_VERIFY, {"code": code})

    # then it is a validation error
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "code" in error["details"]


def test_code_without_any_request_is_refused(patient_client):
    # given a patient who never asked for a code
    # when they send one
    response = patient_client.post(PHONE_VERIFY, {"code": "123456"})

    # then it is refused
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")


@pytest.mark.parametrize("path", [PHONE_SEND_CODE, PHONE_VERIFY])
def test_phone_endpoints_need_a_signed_in_user(anon_client, path):
    # given no credentials
    # when a phone endpoint is called
    response = anon_client.post(path, {"phone_number": PHONE, "code": "123456"})

    # then it is refused as unauthenticated
    assert_error(response, 401, "NOT_AUTHENTICATED")

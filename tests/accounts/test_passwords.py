"""Password change (other sessions end), forgot password, and reset with an emailed,
single-use, expiring link."""

import base64
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from tests.accounts.helpers import (
    LOGIN,
    ME,
    PASSWORD_CHANGE,
    PASSWORD_FORGOT,
    PASSWORD_RESET,
    REFRESH,
    STRONG_PASSWORD,
    error_messages,
    link_in,
)
from tests.assertions import assert_error
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db

WEAK_PASSWORDS = pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Ab1-xyz", "too short"),
        ("lantern-sturdy-42", "an upper-case letter"),
        ("LANTERN-STURDY-42", "a lower-case letter"),
        ("Lantern-Sturdy-Forty", "a digit"),
        ("Password1", "too common"),
        ("Patient-1", "too similar to the last name"),
    ],
    ids=["length", "upper", "lower", "digit", "common", "similar-to-user"],
)
FORGOT_ANSWER = {"detail": "If the address belongs to an account, a reset link is on its way."}


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _login(email: str, password: str = PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"email": email, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def _reset_link(client: APIClient, email: str, capture) -> dict:
    with capture(execute=True):
        assert client.post(PASSWORD_FORGOT, {"email": email}).status_code == 202
    return link_in(mail.outbox[-1])


# --- Change ---------------------------------------------------------------------------------


def test_change_password_returns_a_fresh_pair_and_ends_other_sessions(patient):
    # given a patient signed in on two devices
    this_device = _login(patient.email)
    other_device = _login(patient.email)

    # when they change their password on one
    response = _bearer(this_device["access"]).post(
        PASSWORD_CHANGE, {"current_password": PASSWORD, "new_password": STRONG_PASSWORD}
    )

    # then they get a fresh pair that works
    assert response.status_code == 200, response.content
    fresh = response.json()
    assert set(fresh) == {"access", "refresh", "token_type", "expires_in"}
    assert _bearer(fresh["access"]).get(ME).status_code == 200
    # and every older token, on both devices, stopped working
    assert_error(_bearer(this_device["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(_bearer(other_device["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(APIClient().post(REFRESH, {"refresh": other_device["refresh"]}), 401, "TOKEN_INVALID")
    # and only the new password signs in, hashed with the configured hasher
    patient.refresh_from_db()
    assert identify_hasher(patient.password).algorithm == get_hasher().algorithm
    assert patient.check_password(STRONG_PASSWORD)
    assert_error(APIClient().post(LOGIN, {"email": patient.email, "password": PASSWORD}), 401, "INVALID_CREDENTIALS")


def test_change_password_needs_the_current_one(patient_client, patient):
    # given a signed-in patient
    # when they give a wrong current password
    response = patient_client.post(
        PASSWORD_CHANGE, {"current_password": "Not-my-password-1", "new_password": STRONG_PASSWORD}
    )

    # then it is refused and the password is unchanged
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"current_password"}
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


@WEAK_PASSWORDS
def test_change_to_a_weak_password_is_refused(patient_client, patient, password, rule):
    # given a signed-in patient ("Alice Patient")
    # when they choose a password that breaks one rule
    response = patient_client.post(PASSWORD_CHANGE, {"current_password": PASSWORD, "new_password": password})

    # then it is refused, naming the rule, and the password is unchanged
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(rule in message for message in error_messages(error, "new_password")), error
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


@pytest.mark.parametrize(
    "body",
    [
        {"new_password": STRONG_PASSWORD},
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": ["x"]},
        {"current_password": PASSWORD, "new_password": "A1a" * 50},
    ],
    ids=["no-current", "no-new", "new-is-list", "new-too-long"],
)
def test_bad_change_input_is_a_validation_error(patient_client, body):
    # given a malformed change request
    # when it is sent
    response = patient_client.post(PASSWORD_CHANGE, body)

    # then it is a validation error
    assert_error(response, 400, "VALIDATION_ERROR")


def test_change_password_needs_a_signed_in_user(anon_client):
    # given no credentials
    # when changing a password
    response = anon_client.post(PASSWORD_CHANGE, {"current_password": PASSWORD, "new_password": STRONG_PASSWORD})

    # then it is refused as unauthenticated
    assert_error(response, 401, "NOT_AUTHENTICATED")


# --- Forgot ---------------------------------------------------------------------------------


def test_forgot_password_emails_a_reset_link(anon_client, patient, django_capture_on_commit_callbacks):
    # given a patient
    # when they ask for a reset link (typing the address in upper case)
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(PASSWORD_FORGOT, {"email": patient.email.upper()})

    # then the answer is 202 and a link went to their address
    assert response.status_code == 202
    assert response.json() == FORGOT_ANSWER
    (message,) = mail.outbox
    assert message.to == [patient.email]
    assert message.subject == "Reset your password"
    assert link_in(message)["path"] == "/reset-password"


def test_forgot_password_for_an_unknown_address_answers_the_same(anon_client, django_capture_on_commit_callbacks):
    # given no account with this address
    # when a reset link is asked for
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(PASSWORD_FORGOT, {"email": "nobody@example.test"})

    # then the answer is the one a registered address gets, and nothing is sent
    assert response.status_code == 202
    assert response.json() == FORGOT_ANSWER
    assert mail.outbox == []


def test_forgot_password_for_a_suspended_user_sends_nothing(anon_client, patient, django_capture_on_commit_callbacks):
    # given a suspended patient
    services.user_suspend(user=patient)

    # when a reset link is asked for
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(PASSWORD_FORGOT, {"email": patient.email})

    # then the answer is the usual one and nothing is sent
    assert response.status_code == 202
    assert mail.outbox == []


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"email": ["a@b.test"]}])
def test_bad_forgot_input_is_a_validation_error(anon_client, body):
    # given a malformed request
    # when it is sent
    response = anon_client.post(PASSWORD_FORGOT, body)

    # then it is a validation error
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "email" in error["details"]


# --- Reset ----------------------------------------------------------------------------------


def test_reset_with_the_emailed_link_sets_the_password_and_ends_sessions(
    anon_client, patient, django_capture_on_commit_callbacks
):
    # given a signed-in patient who asked for a reset link
    session = _login(patient.email)
    link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)

    # when they use the link's uid and token
    response = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )

    # then the answer is 204 and the new password signs in
    assert response.status_code == 204, response.content
    assert _login(patient.email, STRONG_PASSWORD)["user"]["id"] == str(patient.pk)
    # and the tokens issued before the reset stopped working
    assert_error(_bearer(session["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(anon_client.post(REFRESH, {"refresh": session["refresh"]}), 401, "TOKEN_INVALID")


def test_reset_link_works_once(anon_client, patient, django_capture_on_commit_callbacks):
    # given a reset link that has been used
    link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)
    body = {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    assert anon_client.post(PASSWORD_RESET, body).status_code == 204

    # when it is used again
    response = anon_client.post(PASSWORD_RESET, {**body, "new_password": "Another-Lantern-43"})

    # then it is refused and the first new password stays
    assert_error(response, 401, "TOKEN_INVALID")
    patient.refresh_from_db()
    assert patient.check_password(STRONG_PASSWORD)


def test_reset_link_expires(anon_client, patient, django_capture_on_commit_callbacks):
    # given a reset link sent just over PASSWORD_RESET_TIMEOUT ago
    sent_at = timezone.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5)
    with time_machine.travel(sent_at, tick=False):
        link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)

    # when it is used
    response = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )

    # then it is refused and the password is unchanged
    assert_error(response, 401, "TOKEN_INVALID")
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


def test_reset_link_still_works_just_before_it_expires(anon_client, patient, django_capture_on_commit_callbacks):
    # given a reset link sent a little less than PASSWORD_RESET_TIMEOUT ago
    sent_at = timezone.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT - 60)
    with time_machine.travel(sent_at, tick=False):
        link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)

    # when it is used
    response = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )

    # then the password is set
    assert response.status_code == 204


@WEAK_PASSWORDS
def test_reset_to_a_weak_password_is_refused_and_the_link_stays_usable(
    anon_client, patient, django_capture_on_commit_callbacks, password, rule
):
    # given a reset link for "Alice Patient"
    link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)

    # when a password breaking one rule is chosen
    response = anon_client.post(PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": password})

    # then it is refused, naming the rule
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(rule in message for message in error_messages(error, "new_password")), error
    # and the link still works with a strong password
    retry = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )
    assert retry.status_code == 204


def test_reset_token_of_another_user_is_refused(anon_client, patient, outsider, django_capture_on_commit_callbacks):
    # given the outsider's reset link
    link = _reset_link(anon_client, outsider.email, django_capture_on_commit_callbacks)
    patient_uid = base64.urlsafe_b64encode(str(patient.pk).encode()).decode().rstrip("=")

    # when its token is used with the patient's uid
    response = anon_client.post(
        PASSWORD_RESET, {"uid": patient_uid, "token": link["token"], "new_password": STRONG_PASSWORD}
    )

    # then it is refused and the patient's password is unchanged
    assert_error(response, 401, "TOKEN_INVALID")
    patient.refresh_from_db()
    assert patient.check_password(PASSWORD)


def test_reset_link_of_a_suspended_user_is_refused(anon_client, patient, django_capture_on_commit_callbacks):
    # given a reset link, and the user suspended after it was sent
    link = _reset_link(anon_client, patient.email, django_capture_on_commit_callbacks)
    services.user_suspend(user=patient)

    # when the link is used
    response = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "uid",
    [
        "not-base64!",
        _b64(b"not-a-uuid"),
        _b64(str(uuid.uuid4()).encode()),
        _b64(b"\xff\xfe\xfd"),
        _b64(b"\x00"),
        "A" * 64,
    ],
    ids=["not-base64", "not-a-uuid", "unknown-user", "not-utf8", "nul", "long"],
)
def test_reset_with_a_bad_uid_is_refused(anon_client, patient, uid):
    # given a uid that names no user
    # when it is used with some token
    response = anon_client.post(PASSWORD_RESET, {"uid": uid, "token": "abc-123", "new_password": STRONG_PASSWORD})

    # then it is refused as an invalid token, not a crash
    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize(
    "body",
    [
        {"token": "abc", "new_password": STRONG_PASSWORD},
        {"uid": "abc", "new_password": STRONG_PASSWORD},
        {"uid": "abc", "token": "abc"},
        {"uid": 12, "token": {"a": 1}, "new_password": STRONG_PASSWORD},
        {"uid": "a" * 65, "token": "abc", "new_password": STRONG_PASSWORD},
    ],
    ids=["no-uid", "no-token", "no-password", "wrong-types", "uid-too-long"],
)
def test_bad_reset_input_is_a_validation_error(anon_client, body):
    # given a malformed reset request
    # when it is sent
    response = anon_client.post(PASSWORD_RESET, body)

    # then it is a validation error
    assert_error(response, 400, "VALIDATION_ERROR")


def test_another_persons_reset_does_not_touch_other_accounts(anon_client, django_capture_on_commit_callbacks):
    # given two patients, one of whom resets their password
    first, second = PatientFactory(), PatientFactory()
    link = _reset_link(anon_client, first.email, django_capture_on_commit_callbacks)

    # when the reset completes
    anon_client.post(PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD})

    # then the other patient's password is unchanged
    second.refresh_from_db()
    assert second.check_password(PASSWORD)

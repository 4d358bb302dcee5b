"""Sign-in by email or verified phone, refresh-token rotation, logout everywhere, and the
refusals of revoked, expired and suspended users' tokens."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from tests.accounts.helpers import LOGIN, LOGOUT, MALFORMED_BEARER_HEADERS, ME, PHONE, REFRESH
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db


def _login(client: APIClient, **credentials) -> dict:
    response = client.post(LOGIN, {"password": PASSWORD, **credentials})
    assert response.status_code == 200, response.content
    return response.json()


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_login_by_email_returns_a_token_pair_and_the_user(anon_client, patient):
    # given a patient
    # when they sign in with email and password
    response = anon_client.post(LOGIN, {"email": patient.email, "password": PASSWORD})

    # then they get a bearer pair and their account
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"]["id"] == str(patient.pk)
    assert body["user"]["email"] == patient.email
    assert body["user"]["last_login"] is not None
    # and the access token works
    me = _bearer(body["access"]).get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == str(patient.pk)
    # and the sign-in time is recorded
    patient.refresh_from_db()
    assert patient.last_login is not None


def test_login_ignores_the_case_of_the_email(anon_client, patient):
    # given a patient whose email is stored in lower case
    # when they sign in typing it in upper case
    body = _login(anon_client, email=patient.email.upper())

    # then they are signed in
    assert body["user"]["id"] == str(patient.pk)


def test_login_by_verified_phone(anon_client):
    # given a patient with a verified phone number
    patient = PatientFactory(phone_number=PHONE, phone_verified=True)

    # when they sign in with the phone number
    body = _login(anon_client, phone_number=PHONE)

    # then they are signed in
    assert body["user"]["id"] == str(patient.pk)


def test_login_by_unverified_phone_is_refused(anon_client):
    # given a patient whose phone number is not verified
    PatientFactory(phone_number=PHONE, phone_verified=False)

    # when they try to sign in with it
    response = anon_client.post(LOGIN, {"phone_number": PHONE, "password": PASSWORD})

    # then the credentials are refused
    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_wrong_password_and_unknown_email_get_the_same_answer(anon_client, patient):
    # given a patient
    # when one attempt has the wrong password and another an unknown address
    wrong_password = anon_client.post(LOGIN, {"email": patient.email, "password": "Wrong-password-1"})
    unknown_email = anon_client.post(LOGIN, {"email": "nobody@example.test", "password": PASSWORD})

    # then both get the same refusal
    first = assert_error(wrong_password, 401, "INVALID_CREDENTIALS")
    second = assert_error(unknown_email, 401, "INVALID_CREDENTIALS")
    assert (first["message"], first["details"]) == (second["message"], second["details"])


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "nobody@example.test"},
        {"phone_number": PHONE},
    ],
    ids=["unknown-email", "unknown-phone"],
)
def test_unknown_login_costs_one_argon2_computation_like_a_wrong_password(
    anon_client, patient, argon2_hashes, credentials
):
    # given a patient whose password is an Argon2 hash, and a record of the Argon2 work done
    patient.set_password(PASSWORD)
    patient.save(update_fields=["password"])
    argon2_hashes.clear()
    # when an attempt names an account that does not exist
    unknown = anon_client.post(LOGIN, {**credentials, "password": PASSWORD})
    unknown_work = list(argon2_hashes)
    argon2_hashes.clear()
    # and another has a wrong password for the patient
    wrong = anon_client.post(LOGIN, {"email": patient.email, "password": "Wrong-password-1"})

    # then both are refused after one Argon2 computation each, so they take as long
    assert (unknown.status_code, wrong.status_code) == (401, 401)
    assert unknown_work == ["hash"]
    assert argon2_hashes == ["verify"]


def test_suspended_user_cannot_sign_in(anon_client, patient):
    # given a suspended patient
    services.user_suspend(user=patient)

    # when they sign in with the right password
    response = anon_client.post(LOGIN, {"email": patient.email, "password": PASSWORD})

    # then they get the same refusal as a wrong password (the suspension is not revealed)
    assert_error(response, 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    "body",
    [
        {"password": PASSWORD},
        {"email": "alice@example.test", "phone_number": PHONE, "password": PASSWORD},
        {"email": "alice@example.test"},
        {"email": "not-an-email", "password": PASSWORD},
        {"phone_number": "0044 20 7946 0000", "password": PASSWORD},
        {"email": ["alice@example.test"], "password": PASSWORD},
        {"email": "alice@example.test", "password": ["x"]},
        {"email": "alice@example.test", "password": "x" * 129},
    ],
    ids=[
        "no-login",
        "email-and-phone",
        "no-password",
        "invalid-email",
        "invalid-phone",
        "email-list",
        "password-list",
        "password-too-long",
    ],
)
def test_bad_login_input_is_a_validation_error(anon_client, body):
    # given a malformed sign-in
    # when it is sent
    response = anon_client.post(LOGIN, body)

    # then it is a validation error
    assert_error(response, 400, "VALIDATION_ERROR")


def test_non_json_and_malformed_login_bodies(anon_client):
    # given a form-encoded body and a broken JSON body
    # when they are sent
    form = anon_client.post(LOGIN, "email=a%40b.test", content_type="application/x-www-form-urlencoded")
    broken = anon_client.post(LOGIN, '{"email":', content_type="application/json")

    # then they are refused with their own codes
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(broken, 400, "MALFORMED_REQUEST")


def test_refresh_rotates_the_pair(anon_client, patient):
    # given a signed-in patient
    tokens = _login(anon_client, email=patient.email)

    # when they refresh
    response = anon_client.post(REFRESH, {"refresh": tokens["refresh"]})

    # then they get a new pair that works
    assert response.status_code == 200, response.content
    rotated = response.json()
    assert set(rotated) == {"access", "refresh", "token_type", "expires_in"}
    assert rotated["refresh"] != tokens["refresh"]
    assert _bearer(rotated["access"]).get(ME).status_code == 200
    # and the new refresh token can be rotated in turn
    assert anon_client.post(REFRESH, {"refresh": rotated["refresh"]}).status_code == 200


def test_reused_refresh_token_is_refused(anon_client, patient):
    # given a refresh token that has been rotated once
    tokens = _login(anon_client, email=patient.email)
    assert anon_client.post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 200

    # when it is presented again
    response = anon_client.post(REFRESH, {"refresh": tokens["refresh"]})

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize("refresh", ["not-a-token", "a.b.c", "x" * 2000], ids=["garbage", "dotted", "long"])
def test_garbage_refresh_token_is_refused(anon_client, refresh):
    # given something that is not a refresh token we issued
    # when it is presented
    response = anon_client.post(REFRESH, {"refresh": refresh})

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


def test_access_token_is_not_a_refresh_token(anon_client, patient):
    # given a signed-in patient
    tokens = _login(anon_client, email=patient.email)

    # when they present their access token to the refresh endpoint
    response = anon_client.post(REFRESH, {"refresh": tokens["access"]})

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": ["x"]}, {"refresh": "x" * 2049}])
def test_bad_refresh_input_is_a_validation_error(anon_client, body):
    # given a refresh request without a usable token field
    # when it is sent
    response = anon_client.post(REFRESH, body)

    # then it is a validation error
    assert_error(response, 400, "VALIDATION_ERROR")


def test_expired_refresh_token_is_refused(anon_client, patient):
    # given a refresh token issued eight days ago (they last seven)
    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        tokens = _login(anon_client, email=patient.email)

    # when it is presented
    response = anon_client.post(REFRESH, {"refresh": tokens["refresh"]})

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


def test_expired_access_token_is_refused(anon_client, patient):
    # given an access token issued sixteen minutes ago (they last fifteen)
    with time_machine.travel(timezone.now() - timedelta(minutes=16), tick=False):
        tokens = _login(anon_client, email=patient.email)

    # when it is used
    response = _bearer(tokens["access"]).get(ME)

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


def test_logout_revokes_every_token_on_every_device(anon_client, patient):
    # given a patient signed in on two devices
    phone = _login(anon_client, email=patient.email)
    laptop = _login(anon_client, email=patient.email)

    # when they sign out on the phone
    response = _bearer(phone["access"]).post(LOGOUT)

    # then the answer is 204
    assert response.status_code == 204
    # and no access or refresh token of either device works any more
    assert_error(_bearer(phone["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(_bearer(laptop["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(anon_client.post(REFRESH, {"refresh": phone["refresh"]}), 401, "TOKEN_INVALID")
    assert_error(anon_client.post(REFRESH, {"refresh": laptop["refresh"]}), 401, "TOKEN_INVALID")
    # and signing in again works
    assert _bearer(_login(anon_client, email=patient.email)["access"]).get(ME).status_code == 200


def test_logout_needs_a_signed_in_user(anon_client):
    # given no credentials
    # when logging out
    response = anon_client.post(LOGOUT)

    # then it is refused as unauthenticated
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_suspended_user_loses_access_and_refresh(anon_client, patient):
    # given a signed-in patient
    tokens = _login(anon_client, email=patient.email)

    # when staff suspend them
    services.user_suspend(user=patient)

    # then neither their access nor their refresh token works
    assert_error(_bearer(tokens["access"]).get(ME), 401, "TOKEN_INVALID")
    assert_error(anon_client.post(REFRESH, {"refresh": tokens["refresh"]}), 401, "TOKEN_INVALID")


def test_deactivated_user_token_is_refused_even_without_revocation(patient):
    # given a patient's token, and the account deactivated without raising the token generation
    client = client_for(patient)
    User.objects.filter(pk=patient.pk).update(is_active=False)

    # when the token is used
    response = client.get(ME)

    # then it is refused like any revoked token
    assert_error(response, 401, "TOKEN_INVALID")


def test_token_of_a_deleted_user_is_refused(patient):
    # given a patient's token, and the account deleted
    client = client_for(patient)
    User.objects.filter(pk=patient.pk).delete()

    # when the token is used
    response = client.get(ME)

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


@MALFORMED_BEARER_HEADERS
def test_malformed_bearer_token_is_refused(header, code):
    # given a malformed Authorization header
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    # when it is used
    response = client.get(ME)

    # then it is refused with the error shape, not a 500
    assert_error(response, 401, code)


def test_refresh_token_is_not_an_access_token(anon_client, patient):
    # given a signed-in patient
    tokens = _login(anon_client, email=patient.email)

    # when they use their refresh token as a bearer token
    response = _bearer(tokens["refresh"]).get(ME)

    # then it is refused
    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reuse_of_one_refresh_token_lets_exactly_one_through():
    # given a signed-in patient and four devices holding the same refresh token
    patient = PatientFactory()
    tokens = _login(APIClient(), email=patient.email)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def rotate(n: int) -> None:
        try:
            client = APIClient(REMOTE_ADDR=f"192.0.2.{n}")
            barrier.wait()
            statuses.append(client.post(REFRESH, {"refresh": tokens["refresh"]}).status_code)
        finally:
            connection.close()

    # when all four rotate it at once
    threads = [threading.Thread(target=rotate, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one gets a new pair and the others are refused
    assert sorted(statuses) == [200, 401, 401, 401]

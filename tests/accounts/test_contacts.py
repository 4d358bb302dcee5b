"""Registering with an email, a phone number or both; signing in needs one of them verified;
a phone-only account confirms its number (and signs in) without a session."""

import pytest
from django.core import mail

from accounts import sms
from accounts.models import PhoneVerification, User
from accounts.services import user_suspend
from tests.accounts.helpers import (
    EMAIL_VERIFY,
    LOGIN,
    OTHER_PHONE,
    PHONE,
    PHONE_CONFIRM,
    PHONE_RESEND,
    REGISTER,
    STRONG_PASSWORD,
    link_in,
    register_body,
    sent_code,
)
from tests.assertions import assert_error
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db

PHONE_ACCEPTED = {
    "detail": "Registration received. Confirm your phone number with the texted code (auth/phone/confirm/)."
}


def _phone_only(**overrides) -> dict:
    body = register_body(phone_number=PHONE)
    del body["email"]
    return {**body, **overrides}


def _without_request_id(response) -> dict:
    """The answer's body, less the request id of an error (which differs on every request)."""
    body = response.json()
    body.get("error", {}).pop("request_id", None)
    return body


def _another_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- Registration -----------------------------------------------------------------------------


def test_phone_only_registration_texts_a_code_and_sends_no_email(anon_client, django_capture_on_commit_callbacks):
    # when a visitor registers with a phone number and no email
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, _phone_only())

    # then an account without an email exists, its number unverified, a code texted, nothing emailed
    assert response.status_code == 202, response.content
    assert response.json() == PHONE_ACCEPTED
    user = User.objects.get(phone_number=PHONE)
    assert user.email is None
    assert (user.phone_verified, user.email_verified) == (False, False)
    assert sent_code(PHONE)
    assert mail.outbox == []


@pytest.mark.parametrize("no_email", [None, "", "null"])
def test_accounts_without_an_email_do_not_collide(anon_client, no_email):
    # given a phone-only account
    assert anon_client.post(REGISTER, _phone_only()).status_code == 202

    # when another registers with no email (absent, null or blank) and another number
    body = _phone_only(email=no_email, phone_number=OTHER_PHONE)
    if no_email is None:
        del body["email"]
    elif no_email == "null":
        body["email"] = None
    response = anon_client.post(REGISTER, body)

    # then both exist, neither with an address ("" is stored as NULL, which is never a duplicate)
    assert response.status_code == 202, response.content
    assert list(User.objects.values_list("email", flat=True)) == [None, None]


def test_email_and_phone_together(anon_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, register_body(phone_number=PHONE))

    assert response.status_code == 202, response.content
    user = User.objects.get(email="margaret.hamilton@example.test")
    assert user.phone_number == PHONE
    assert link_in(mail.outbox[-1])["uid"] and sent_code(PHONE)


@pytest.mark.parametrize("blank", [{}, {"email": ""}, {"email": None, "phone_number": ""}])
def test_neither_email_nor_phone_is_refused(anon_client, blank):
    body = {key: value for key, value in register_body().items() if key != "email"} | blank

    response = anon_client.post(REGISTER, body)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {
        "non_field_errors": [{"message": "Give an email address, a phone number, or both.", "code": "email_or_phone"}]
    }
    assert not User.objects.exists()


def test_confirm_password_must_match(anon_client):
    response = anon_client.post(REGISTER, register_body(confirm_password="Sturdy-Lantern-43"))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {
        "confirm_password": [{"message": "The passwords do not match.", "code": "password_mismatch"}]
    }
    assert not User.objects.exists()


def test_a_matching_confirm_password_registers(anon_client):
    response = anon_client.post(REGISTER, register_body(confirm_password=STRONG_PASSWORD))

    assert response.status_code == 202, response.content
    assert User.objects.filter(email="margaret.hamilton@example.test").exists()


def test_a_bad_phone_number_is_a_field_error(anon_client):
    response = anon_client.post(REGISTER, _phone_only(phone_number="0415 555 0123"))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"phone_number"}


def test_phone_only_with_a_number_verified_elsewhere_answers_the_same_and_creates_nothing(anon_client):
    # given a number verified on an account
    PatientFactory(phone_number=PHONE, phone_verified=True)

    # when someone registers with it alone
    response = anon_client.post(REGISTER, _phone_only(first_name="Other"))

    # then the answer is the usual one, nobody is texted and no second account exists
    assert response.status_code == 202
    assert response.json() == PHONE_ACCEPTED
    assert sms.outbox == []
    assert User.objects.filter(phone_number=PHONE).count() == 1


# --- Signing in needs a verified contact ------------------------------------------------------


def test_unverified_account_with_the_right_password_is_told_to_verify(anon_client):
    PatientFactory(email="ada@example.test", email_verified=False)

    response = anon_client.post(LOGIN, {"email": "ada@example.test", "password": PASSWORD})

    error = assert_error(response, 401, "ACCOUNT_NOT_VERIFIED")
    assert error["details"] == {"unverified": ["email"]}
    assert "access" not in response.json()


def test_unverified_account_with_a_wrong_password_answers_as_an_unknown_one(anon_client):
    # given an unverified account
    PatientFactory(email="ada@example.test", email_verified=False)

    # when a wrong password is tried on it, and any password on an address nobody has
    wrong = anon_client.post(LOGIN, {"email": "ada@example.test", "password": "Wrong-Password-1"})
    unknown = anon_client.post(LOGIN, {"email": "nobody@example.test", "password": "Wrong-Password-1"})

    # then the two answers are the same
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    assert _without_request_id(wrong) == _without_request_id(unknown)


def test_suspended_unverified_account_is_not_told_it_is_unverified(anon_client):
    user = PatientFactory(email="ada@example.test", email_verified=False)
    user_suspend(user=user)

    response = anon_client.post(LOGIN, {"email": "ada@example.test", "password": PASSWORD})

    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_a_verified_phone_is_enough_to_sign_in_with_the_email(anon_client):
    PatientFactory(email="ada@example.test", email_verified=False, phone_number=PHONE, phone_verified=True)

    response = anon_client.post(LOGIN, {"email": "ada@example.test", "password": PASSWORD})

    assert response.status_code == 200, response.content


def test_the_setting_turns_the_requirement_off(anon_client, settings):
    settings.LOGIN_REQUIRES_VERIFIED_CONTACT = False
    PatientFactory(email="ada@example.test", email_verified=False)

    response = anon_client.post(LOGIN, {"email": "ada@example.test", "password": PASSWORD})

    assert response.status_code == 200, response.content
    assert response.json()["user"]["email_verified"] is False


def test_confirmed_email_then_signs_in(anon_client, django_capture_on_commit_callbacks):
    # given a registrant refused before confirming
    with django_capture_on_commit_callbacks(execute=True):
        anon_client.post(REGISTER, register_body())
    credentials = {"email": "margaret.hamilton@example.test", "password": STRONG_PASSWORD}
    assert_error(anon_client.post(LOGIN, credentials), 401, "ACCOUNT_NOT_VERIFIED")

    # when they open the emailed link
    link = link_in(mail.outbox[-1])
    assert anon_client.post(EMAIL_VERIFY, {"uid": link["uid"], "token": link["token"]}).status_code == 200

    # then they sign in
    assert anon_client.post(LOGIN, credentials).status_code == 200


# --- A phone-only account ---------------------------------------------------------------------


def test_phone_only_account_confirms_its_number_and_signs_in(anon_client):
    # given a phone-only registrant, refused sign-in before confirming
    anon_client.post(REGISTER, _phone_only())
    credentials = {"phone_number": PHONE, "password": STRONG_PASSWORD}
    error = assert_error(anon_client.post(LOGIN, credentials), 401, "ACCOUNT_NOT_VERIFIED")
    assert error["details"] == {"unverified": ["phone_number"]}

    # when they confirm the number with the texted code
    response = anon_client.post(PHONE_CONFIRM, {**credentials, "code": sent_code(PHONE)})

    # then they are signed in, the number verified, and it signs them in from then on
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "user"}
    assert body["user"]["phone_verified"] is True and body["user"]["email"] is None
    assert anon_client.post(LOGIN, credentials).status_code == 200


def test_phone_only_wrong_password_at_sign_in_answers_as_unknown(anon_client):
    anon_client.post(REGISTER, _phone_only())

    wrong = anon_client.post(LOGIN, {"phone_number": PHONE, "password": "Wrong-Password-1"})
    unknown = anon_client.post(LOGIN, {"phone_number": OTHER_PHONE, "password": "Wrong-Password-1"})

    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    assert _without_request_id(wrong) == _without_request_id(unknown)


def test_an_unverified_number_does_not_sign_in_an_account_verified_by_email(anon_client):
    # The number is not the account's login until verified; only an account with nothing
    # verified is found by it (to be told to verify).
    PatientFactory(email="ada@example.test", phone_number=PHONE, phone_verified=False)

    response = anon_client.post(LOGIN, {"phone_number": PHONE, "password": PASSWORD})

    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_confirm_with_a_wrong_password_is_invalid_credentials_and_burns_no_try(anon_client, settings):
    anon_client.post(REGISTER, _phone_only())

    response = anon_client.post(
        PHONE_CONFIRM, {"phone_number": PHONE, "password": "Wrong-Password-1", "code": sent_code(PHONE)}
    )

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert User.objects.get(phone_number=PHONE).phone_verified is False


def test_confirm_with_a_wrong_code(anon_client):
    anon_client.post(REGISTER, _phone_only())
    wrong = _another_code(sent_code(PHONE))

    response = anon_client.post(PHONE_CONFIRM, {"phone_number": PHONE, "password": STRONG_PASSWORD, "code": wrong})

    assert_error(response, 400, "INVALID_VERIFICATION_CODE")
    assert User.objects.get(phone_number=PHONE).phone_verified is False


def test_confirm_a_number_verified_meanwhile_elsewhere(anon_client):
    # given a phone-only registrant with a code, and then the number verified on another account
    anon_client.post(REGISTER, _phone_only())
    code = sent_code(PHONE)
    PatientFactory(phone_number=PHONE, phone_verified=True)

    response = anon_client.post(PHONE_CONFIRM, {"phone_number": PHONE, "password": STRONG_PASSWORD, "code": code})

    assert_error(response, 409, "PHONE_NUMBER_TAKEN")


@pytest.mark.parametrize(
    "body",
    [
        {"phone_number": PHONE, "password": STRONG_PASSWORD, "code": "12345"},
        {"phone_number": "12345", "password": STRONG_PASSWORD, "code": "123456"},
        {"password": STRONG_PASSWORD, "code": "123456"},
    ],
)
def test_confirm_bad_input(anon_client, body):
    assert_error(anon_client.post(PHONE_CONFIRM, body), 400, "VALIDATION_ERROR")


def test_resend_texts_a_new_code_only_for_the_right_password(anon_client):
    # given a phone-only registrant whose first code is lost
    anon_client.post(REGISTER, _phone_only())
    sms.outbox.clear()

    # when a new code is asked for with a wrong password, then with the right one
    wrong = anon_client.post(PHONE_RESEND, {"phone_number": PHONE, "password": "Wrong-Password-1"})
    texts_after_wrong = len(sms.outbox)
    right = anon_client.post(PHONE_RESEND, {"phone_number": PHONE, "password": STRONG_PASSWORD})

    # then both answer alike; only the right one texts, the first code is retired, the new one works
    assert wrong.status_code == right.status_code == 202
    assert wrong.json() == right.json()
    assert texts_after_wrong == 0
    assert PhoneVerification.objects.filter(phone_number=PHONE, consumed_at__isnull=True).count() == 1
    code = sent_code(PHONE)
    confirmed = anon_client.post(PHONE_CONFIRM, {"phone_number": PHONE, "password": STRONG_PASSWORD, "code": code})
    assert confirmed.status_code == 200, confirmed.content


def test_resend_bad_input(anon_client):
    assert_error(anon_client.post(PHONE_RESEND, {"phone_number": PHONE}), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("endpoint", [LOGIN, PHONE_CONFIRM, PHONE_RESEND])
def test_an_unknown_number_costs_the_same_work_as_a_wrong_password(anon_client, argon2_hashes, endpoint):
    # given a phone-only account with an Argon2 hash, and a record of the Argon2 work done
    user = PatientFactory(email=None, email_verified=False, phone_number=PHONE)
    user.set_password(STRONG_PASSWORD)
    user.save(update_fields=["password"])
    body = {"code": "123456"} if endpoint == PHONE_CONFIRM else {}
    argon2_hashes.clear()

    # when a number nobody has is tried, and then the account's number with a wrong password
    unknown = anon_client.post(endpoint, {**body, "phone_number": OTHER_PHONE, "password": STRONG_PASSWORD})
    unknown_work = list(argon2_hashes)
    argon2_hashes.clear()
    wrong = anon_client.post(endpoint, {**body, "phone_number": PHONE, "password": "Wrong-Password-1"})

    # then both answer alike after one Argon2 computation each
    assert unknown.status_code == wrong.status_code
    assert _without_request_id(unknown) == _without_request_id(wrong)
    assert unknown_work == ["hash"]
    assert argon2_hashes == ["verify"]

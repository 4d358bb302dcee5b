"""Rate limits of the auth endpoints: 5 a minute per client IP and per account, each endpoint
counted on its own, answered 429 RATE_LIMITED with Retry-After and the X-RateLimit-* headers."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.throttles import AuthAccountThrottle
from tests.accounts.helpers import (
    EMAIL_RESEND,
    EMAIL_VERIFY,
    LOGIN,
    PASSWORD_CHANGE,
    PASSWORD_FORGOT,
    PASSWORD_RESET,
    PHONE,
    PHONE_SEND_CODE,
    PHONE_VERIFY,
    REFRESH,
    REGISTER,
    register_body,
)
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PUBLIC_ENDPOINTS = [
    (REGISTER, lambda n: register_body(email=f"person{n}@example.test")),
    (LOGIN, lambda n: {"email": f"person{n}@example.test", "password": "Wrong-password-1"}),
    (REFRESH, lambda n: {"refresh": f"not-a-token-{n}"}),
    (PASSWORD_FORGOT, lambda n: {"email": f"person{n}@example.test"}),
    (PASSWORD_RESET, lambda n: {"uid": f"uid{n}", "token": "abc", "new_password": "Sturdy-Lantern-42"}),
    (EMAIL_VERIFY, lambda n: {"uid": f"uid{n}", "token": "abc"}),
    (EMAIL_RESEND, lambda n: {"email": f"person{n}@example.test"}),
]
PUBLIC_IDS = ["register", "login", "refresh", "forgot", "reset", "verify-email", "resend"]


def _from(ip: str) -> APIClient:
    return APIClient(REMOTE_ADDR=ip)


@pytest.mark.parametrize(("path", "body_for"), PUBLIC_ENDPOINTS, ids=PUBLIC_IDS)
def test_sixth_request_a_minute_from_one_ip_is_rate_limited(path, body_for):
    # given five requests from one IP, each naming a different account
    client = _from("203.0.113.7")
    earlier = [client.post(path, body_for(n)).status_code for n in range(5)]

    # when a sixth comes from the same IP
    response = client.post(path, body_for(5))

    # then none of the five was limited and the sixth is, with Retry-After
    assert 429 not in earlier
    error = assert_error(response, 429, "RATE_LIMITED")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert error["details"] == {"retry_after": retry_after}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (LOGIN, {"email": "alice@example.test", "password": "Wrong-password-1"}),
        (LOGIN, {"phone_number": PHONE, "password": "Wrong-password-1"}),
        (PASSWORD_FORGOT, {"email": "alice@example.test"}),
        (EMAIL_RESEND, {"email": "alice@example.test"}),
        (PASSWORD_RESET, {"uid": "someuid", "token": "abc", "new_password": "Sturdy-Lantern-42"}),
    ],
    ids=["login-email", "login-phone", "forgot", "resend", "reset"],
)
def test_sixth_request_a_minute_for_one_account_is_rate_limited_across_ips(path, body):
    # given five requests naming one account, each from a different IP
    earlier = [_from(f"198.51.100.{n}").post(path, body).status_code for n in range(5)]

    # when a sixth comes from yet another IP
    response = _from("198.51.100.99").post(path, body)

    # then it is limited
    assert 429 not in earlier
    assert_error(response, 429, "RATE_LIMITED")


def test_account_key_ignores_case_and_spaces_of_the_email():
    # given five failed sign-ins for one address, typed differently each time
    spellings = [
        "alice@example.test",
        "ALICE@example.test",
        " Alice@Example.test ",
        "alice@EXAMPLE.TEST",
        "aLiCe@example.test",
    ]
    for n, email in enumerate(spellings):
        _from(f"198.51.100.{n}").post(LOGIN, {"email": email, "password": "Wrong-password-1"})

    # when a sixth comes, spelled another way
    response = _from("198.51.100.99").post(LOGIN, {"email": "Alice@example.TEST", "password": "Wrong-password-1"})

    # then it counts against the same account
    assert_error(response, 429, "RATE_LIMITED")


def test_forwarded_for_header_does_not_reset_the_ip_count():
    # given five requests from one IP claiming different X-Forwarded-For addresses
    for n in range(5):
        _from("203.0.113.7").post(
            PASSWORD_FORGOT, {"email": f"person{n}@example.test"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        )

    # when a sixth claims yet another
    response = _from("203.0.113.7").post(
        PASSWORD_FORGOT, {"email": "person5@example.test"}, HTTP_X_FORWARDED_FOR="10.0.0.99"
    )

    # then the spoofed header did not help
    assert_error(response, 429, "RATE_LIMITED")


def test_endpoints_are_counted_separately():
    # given one IP that used up its sign-in attempts
    client = _from("203.0.113.7")
    for n in range(6):
        client.post(LOGIN, {"email": f"person{n}@example.test", "password": "Wrong-password-1"})

    # when it asks for a reset link
    response = client.post(PASSWORD_FORGOT, {"email": "person0@example.test"})

    # then that endpoint still answers
    assert response.status_code == 202


def test_limit_lifts_after_a_minute(patient):
    # given an IP rate-limited on sign-in
    client = _from("203.0.113.7")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for n in range(5):
            client.post(LOGIN, {"email": f"person{n}@example.test", "password": "Wrong-password-1"})
        assert_error(client.post(LOGIN, {"email": patient.email, "password": PASSWORD}), 429, "RATE_LIMITED")

    # when a minute has passed
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        response = client.post(LOGIN, {"email": patient.email, "password": PASSWORD})

    # then the right credentials sign in
    assert response.status_code == 200, response.content


def test_rate_limited_login_is_refused_even_with_the_right_password(patient):
    # given five failed sign-ins for the patient's account
    for n in range(5):
        _from(f"198.51.100.{n}").post(LOGIN, {"email": patient.email, "password": "Wrong-password-1"})

    # when the right password is tried
    response = _from("198.51.100.99").post(LOGIN, {"email": patient.email, "password": PASSWORD})

    # then it is limited, no tokens are issued
    assert_error(response, 429, "RATE_LIMITED")
    assert "access" not in response.json()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (PASSWORD_CHANGE, {"current_password": "Wrong-password-1", "new_password": "Sturdy-Lantern-42"}),
        (PHONE_SEND_CODE, {"phone_number": PHONE}),
        (PHONE_VERIFY, {"code": "000000"}),
    ],
    ids=["password-change", "phone-send-code", "phone-verify"],
)
def test_signed_in_auth_endpoints_are_limited_per_account(patient, path, body):
    # given five requests by one signed-in patient, each from a different IP
    for n in range(5):
        client = client_for(patient)
        client.defaults["REMOTE_ADDR"] = f"198.51.100.{n}"
        client.post(path, body)

    # when a sixth comes from another IP
    client = client_for(patient)
    client.defaults["REMOTE_ADDR"] = "198.51.100.99"
    response = client.post(path, body)

    # then it is limited
    assert_error(response, 429, "RATE_LIMITED")


def test_one_patients_limit_does_not_affect_another(patient, outsider):
    # given a patient who used up their phone-code requests
    for n in range(6):
        client = client_for(patient)
        client.defaults["REMOTE_ADDR"] = f"198.51.100.{n}"
        client.post(PHONE_VERIFY, {"code": "000000"})

    # when another patient, from another IP, sends a code
    client = client_for(outsider)
    client.defaults["REMOTE_ADDR"] = "192.0.2.1"
    response = client.post(PHONE_VERIFY, {"code": "000000"})

    # then they are not limited
    assert_error(response, 400, "INVALID_VERIFICATION_CODE")


def test_account_key_is_hashed_in_the_cache():
    # given a sign-in attempt for an address
    _from("203.0.113.7").post(LOGIN, {"email": "alice@example.test", "password": "Wrong-password-1"})

    # when the throttle's key for that account is computed
    ident = AuthAccountThrottle().ident(
        type("Request", (), {"user": None, "data": {"email": "alice@example.test"}})(),
        type("View", (), {"throttle_name": "login"})(),
    )

    # then the attempt is recorded under it, and the key does not contain the address
    assert "alice" not in ident
    assert cache.has_key(f"ratelimit:auth_account:{ident}")


@pytest.mark.redis
def test_limits_hold_on_the_redis_cache():
    # given the Redis cache, and five sign-in attempts from one IP
    assert isinstance(caches["default"], RedisCache)  # the run is on Redis
    client = _from("203.0.113.7")
    for n in range(5):
        client.post(LOGIN, {"email": f"person{n}@example.test", "password": "Wrong-password-1"})

    # when a sixth comes
    response = client.post(LOGIN, {"email": "person5@example.test", "password": "Wrong-password-1"})

    # then it is limited
    assert_error(response, 429, "RATE_LIMITED")

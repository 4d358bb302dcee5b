"""Deeply nested JSON is a malformed request (400), never a crash, on every JSON endpoint and in
the WebSocket envelope parser (the socket itself: tests/realtime/test_deep_json.py)."""

import pytest

from core.parsers import json_depth, json_loads_limited
from realtime.protocol import MalformedMessage, parse_envelope
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_anonymous_login_with_very_deep_json_is_malformed_request(anon_client):
    response = anon_client.post("/api/v1/auth/login/", nested(100_000), content_type="application/json")

    assert_error(response, 400, "MALFORMED_REQUEST")


def test_signed_in_endpoint_with_very_deep_json_is_malformed_request(patient_client):
    body = '{"status": ' + nested(50_000) + "}"

    response = patient_client.put("/api/v1/presence/me/", body, content_type="application/json")

    assert_error(response, 400, "MALFORMED_REQUEST")


def test_json_just_past_the_depth_limit_is_malformed_request(anon_client, settings):
    settings.MAX_JSON_DEPTH = 8
    body = '{"email": ' + nested(8) + ', "password": "x"}'  # the object itself is the ninth level

    response = anon_client.post("/api/v1/auth/login/", body, content_type="application/json")

    error = assert_error(response, 400, "MALFORMED_REQUEST")
    assert "8" in error["message"]


def test_json_at_the_depth_limit_reaches_validation(anon_client, settings):
    settings.MAX_JSON_DEPTH = 8
    body = '{"email": ' + nested(7) + ', "password": "x"}'

    response = anon_client.post("/api/v1/auth/login/", body, content_type="application/json")

    assert_error(response, 400, "VALIDATION_ERROR")


def test_loads_limited_refuses_deep_documents_with_value_error(settings):
    settings.MAX_JSON_DEPTH = 3

    assert json_loads_limited('{"a": [[1]]}') == {"a": [[1]]}
    with pytest.raises(ValueError):
        json_loads_limited('{"a": [[[1]]]}')
    with pytest.raises(ValueError):
        json_loads_limited(nested(100_000))


def test_websocket_envelope_parser_refuses_deep_json_as_malformed_message():
    with pytest.raises(MalformedMessage):
        parse_envelope('{"type": "presence.heartbeat", "data": {"x": ' + nested(100_000) + "}}")


def test_signed_payment_webhook_with_very_deep_json_is_malformed_request(anon_client, settings):
    import time

    from sessions.services.payments import webhook_signature

    settings.PAYMENT_WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
    body = nested(100_000).encode()
    timestamp = int(time.time())
    signature = webhook_signature(secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=timestamp, raw_body=body)

    response = anon_client.post(
        "/api/v1/payments/webhook/",
        body,
        content_type="application/json",
        HTTP_X_PAYMENT_SIGNATURE=f"t={timestamp},v1={signature}",
    )

    assert_error(response, 400, "MALFORMED_REQUEST")


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),
        ('{"a": "[[[[[[[[[", "b": {}}', 2),
        ('["\\"]]]", [1, {"c": []}]]', 4),
        ('{"a": "\\\\", "b": [[]]}', 3),
        (nested(100), 100),
    ],
)
def test_depth_is_read_off_the_text_ignoring_brackets_in_strings(text, depth):
    assert json_depth(text) == depth


def test_brackets_inside_strings_do_not_count_against_the_limit(anon_client, settings):
    settings.MAX_JSON_DEPTH = 2
    body = '{"email": "a@example.test", "password": "' + "[" * 100 + '"}'

    response = anon_client.post("/api/v1/auth/login/", body, content_type="application/json")

    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_an_unknown_charset_is_read_as_utf8_not_a_crash(anon_client):
    response = anon_client.post("/api/v1/auth/login/", b"{}", content_type="application/json; charset=no-such-charset")

    assert_error(response, 400, "VALIDATION_ERROR")

"""Every error the API returns has the one documented shape, whatever raised it."""

import logging

import pytest

from tests.assertions import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_url_is_not_found(anon_client):
    response = anon_client.get("/api/v1/no-such-thing/")

    assert_error(response, 404, "NOT_FOUND")


def test_wrong_method_is_method_not_allowed(anon_client):
    response = anon_client.get("/api/v1/auth/login/")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_form_encoded_body_is_unsupported_media_type(anon_client):
    response = anon_client.post(
        "/api/v1/auth/login/", "email=a@b.test", content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_malformed_request(anon_client):
    response = anon_client.post("/api/v1/auth/login/", '{"email": ', content_type="application/json")

    assert_error(response, 400, "MALFORMED_REQUEST")


def test_oversized_body_is_payload_too_large(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = anon_client.post("/api/v1/auth/login/", {"password": "x" * 2048}, format="json")

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit": 1024}


def test_missing_token_is_not_authenticated(anon_client):
    response = anon_client.get("/api/v1/me/")

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_garbage_token_is_token_invalid(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    response = anon_client.get("/api/v1/me/")

    assert_error(response, 401, "TOKEN_INVALID")


def test_validation_errors_carry_field_details(anon_client):
    response = anon_client.post("/api/v1/auth/login/", {"email": "not-an-email"}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["email"][0]["code"] == "invalid"
    assert error["details"]["password"][0]["code"] == "required"


def test_unexpected_exception_is_logged_with_request_id_and_answered_without_trace(patient_client, monkeypatch, caplog):
    def crash(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("accounts.selectors.doctor_list_for_user", crash)

    with caplog.at_level(logging.ERROR, logger="core.exception_handlers"):
        response = patient_client.get("/api/v1/doctors/", HTTP_X_REQUEST_ID="support-ticket-1234")

    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["request_id"] == "support-ticket-1234"
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content
    [record] = [r for r in caplog.records if r.name == "core.exception_handlers"]
    assert record.request_id == "support-ticket-1234"
    assert record.exc_info is not None


def test_request_id_is_generated_when_the_header_is_malformed(anon_client):
    response = anon_client.get("/api/health/live", HTTP_X_REQUEST_ID="bad id with spaces")

    assert response["X-Request-ID"] != "bad id with spaces"
    assert len(response["X-Request-ID"]) == 32

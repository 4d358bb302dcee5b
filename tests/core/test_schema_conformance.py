"""The published OpenAPI schema agrees with what the API really answers.

The schema is generated in-process, exactly as ``/api/schema/`` serves it. The main flows are
then driven through the real API (accounts, directory, sessions and payments, session rooms,
ad-hoc and group calls, history, messaging and attachments, presence, realtime tickets, health) with a client that checks
every answer:

1. the path and method resolve to an operation of the schema;
2. the status code is declared for that operation;
3. the body validates against the declared ``application/json`` schema, strictly: every
   required field present, no field the schema does not name, enums, nullability, formats
   (uuid, date-time, date, uri) and patterns as declared;
4. an error answer (4xx/5xx) also has the one error shape of docs/errors.md;
5. a JSON request body the server accepted (2xx) validates against the declared request body,
   so a client built from the schema can send what the flows send.

The last test checks that the flows drove every operation of the schema to a success answer,
so a new endpoint needs a step here.

The schema's OpenAPI 3.0 dialect is turned into JSON Schema draft 4 (which shares its ``$ref``
and ``exclusiveMinimum`` semantics) by ``json_schema_of``: ``nullable`` becomes a ``null``
alternative, and objects that name their properties refuse unnamed ones.
"""

import json
import re
import socket
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import Resolver404, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from accounts import sms
from accounts.models import Role
from accounts.tokens import token_pair_for
from presence.models import PresenceStatus, UserPresence
from sessions.models import Session
from sessions.services.lifecycle import session_no_show_sweep
from sessions.services.payments import SIGNATURE_HEADER, webhook_signature
from tests.accounts.helpers import avatar_upload, image_bytes, link_in
from tests.factories import PASSWORD, UserFactory
from tests.sessions.factories import SessionFactory
from video_calls.services.adhoc import call_accept, call_initiate

pytestmark = pytest.mark.django_db

# --- OpenAPI 3.0 -> JSON Schema ------------------------------------------------------------------

_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def json_schema_of(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema draft 4.

    ``nullable: true`` admits null (added to ``type``, to ``enum``, or as an ``anyOf`` branch
    around a ``$ref``/``allOf``); an object schema that lists ``properties`` and says nothing
    about others admits no others, so a field the schema does not name is a disagreement.
    """
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "readOnly", "writeOnly", "example", "discriminator", "deprecated"):
            continue
        if key == "properties":
            converted[key] = {name: json_schema_of(schema) for name, schema in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            converted[key] = json_schema_of(value)
        elif key in _SCHEMA_LISTS:
            converted[key] = [json_schema_of(schema) for schema in value]
        else:
            converted[key] = value
    if "properties" in converted:
        converted.setdefault("additionalProperties", False)
    if node.get("nullable"):
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        elif "enum" not in converted:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_DATE_TIME.match(value)) and datetime.fromisoformat(value.replace("Z", "+00:00")) is not None


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or (bool(_DATE.match(value)) and date.fromisoformat(value) is not None)


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


# --- The conformance check -----------------------------------------------------------------------

ERROR_REFERENCE = {"$ref": "#/components/schemas/ErrorResponse"}


class SchemaDisagreement(AssertionError):
    pass


class Conformance:
    """Checks answers against the generated schema and remembers the operations it saw answer."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = {name: json_schema_of(schema) for name, schema in document["components"]["schemas"].items()}
        self.error_validator = self._validator(ERROR_REFERENCE)
        self.seen: set[tuple[str, str]] = set()  # (operationId, status)
        self._validators: dict[tuple[str, str, str], jsonschema.Draft4Validator] = {}

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
        root = {"components": {"schemas": self.components}, "allOf": [json_schema_of(schema)]}
        return jsonschema.Draft4Validator(root, format_checker=FORMATS)

    def operation_of(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """The schema path and operation a request went to, or None outside the schema."""
        try:
            match = resolve(path)
        except Resolver404:
            return None
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route)
        operation = self.document["paths"].get(template, {}).get(method.lower())
        return (template, operation) if operation else None

    def check(self, response) -> None:
        method, path = response.request["REQUEST_METHOD"], response.request["PATH_INFO"]
        label = f"{method} {path} -> {response.status_code}"
        status = str(response.status_code)
        found = self.operation_of(path, method)
        declared = found[1]["responses"].get(status) if found else None
        media_type = response.get("Content-Type", "").split(";")[0].strip()
        if response.streaming or (response.status_code < 300 and media_type.startswith("image/")):
            # A download, streamed (attachments) or whole (avatars).
            self._check_binary(response, found, declared, label)
            return
        if response.status_code < 300 and media_type == "text/plain":  # the metrics exposition
            self._check_text(response, found, declared, label)
            return
        body = self._body(response, label)
        declared_schema = ((declared or {}).get("content") or {}).get("application/json", {}).get("schema")
        if response.status_code >= 400 and declared_schema in (None, ERROR_REFERENCE):
            # Every error is in the one error shape, also where no operation exists (unknown
            # URL, method not allowed). Only a status that declares another body is exempt:
            # the readiness probe's 503 names its failing checks.
            self._validate(self.error_validator, body, f"{label} (error shape)")
        if found is None:
            if response.status_code < 400:
                raise SchemaDisagreement(f"{label}: no operation in the schema for this path and method")
            return
        template, operation = found
        if declared is None:
            raise SchemaDisagreement(
                f"{label}: status {status} is not declared for {method} {template} "
                f"(declared: {', '.join(sorted(operation['responses']))})"
            )
        self.seen.add((operation["operationId"], status))
        if response.status_code < 300:
            self._check_request(response, operation, template, label)
        if declared_schema is None:
            if body is not None:
                raise SchemaDisagreement(f"{label}: the schema declares no JSON body, the answer has one: {body!r}")
            return
        key = (template, method, status)
        if key not in self._validators:
            self._validators[key] = self._validator(declared_schema)
        self._validate(self._validators[key], body, label)

    def _check_binary(self, response, found, declared, label: str) -> None:
        """A file download (streamed, or an image answered whole) must be of a media type the
        schema declares as binary for its status; its bytes are the caller's to check."""
        media_type = response["Content-Type"].split(";")[0].strip()
        schema = ((declared or {}).get("content") or {}).get(media_type, {}).get("schema") or {}
        if found is None or schema.get("format") != "binary":
            raise SchemaDisagreement(f"{label}: answered {media_type}, which the schema does not declare as binary")
        self.seen.add((found[1]["operationId"], str(response.status_code)))

    def _check_text(self, response, found, declared, label: str) -> None:
        """A plain-text answer must be declared as a string of that media type for its status."""
        schema = ((declared or {}).get("content") or {}).get("text/plain", {}).get("schema") or {}
        if found is None or schema.get("type") != "string":
            raise SchemaDisagreement(f"{label}: answered text/plain, which the schema does not declare as a string")
        self.seen.add((found[1]["operationId"], str(response.status_code)))

    def _check_multipart(self, request, operation: dict[str, Any], template: str, label: str) -> None:
        """The fields of an accepted multipart upload, files as binary strings, must be the
        declared ones."""
        declared = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema")
        if declared is None:
            raise SchemaDisagreement(f"{label}: accepted a multipart body, but the schema declares none")
        key = (template, request.method, "multipart")
        if key not in self._validators:
            self._validators[key] = self._validator(declared)
        document = {**request.POST.dict(), **dict.fromkeys(request.FILES, "(file)")}
        self._validate(self._validators[key], document, f"{label} (multipart body)")

    def _check_request(self, response, operation: dict[str, Any], template: str, label: str) -> None:
        """A body the server accepted must be one the schema allows: a client built from the
        schema has to be able to send it."""
        request = response.wsgi_request
        if request.content_type == "multipart/form-data":
            self._check_multipart(request, operation, template, label)
            return
        if not request.body or request.content_type != "application/json":
            return
        declared = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if declared is None:
            raise SchemaDisagreement(f"{label}: accepted a JSON body, but the schema declares none")
        key = (template, request.method, "request")
        if key not in self._validators:
            self._validators[key] = self._validator(declared)
        self._validate(self._validators[key], json.loads(request.body), f"{label} (request body)")

    @staticmethod
    def _body(response, label: str) -> Any:
        if not response.content:
            return None
        if not response["Content-Type"].startswith("application/json"):
            raise SchemaDisagreement(f"{label}: answered {response['Content-Type']}, not JSON")
        return json.loads(response.content)

    @staticmethod
    def _validate(validator: jsonschema.Draft4Validator, body: Any, label: str) -> None:
        errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
        if errors:
            lines = [
                f"  at {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}" for error in errors[:10]
            ]
            raise SchemaDisagreement(f"{label}: the body disagrees with the schema\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def conformance(django_db_blocker) -> Conformance:
    with django_db_blocker.unblock():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    return Conformance(json.loads(OpenApiJsonRenderer().render(schema, renderer_context={})))


class CheckedClient(APIClient):
    """An APIClient whose every answer is checked against the schema."""

    conformance: Conformance

    def request(self, **kwargs: Any):
        response = super().request(**kwargs)
        self.conformance.check(response)
        return response


@pytest.fixture
def client_as(conformance):
    def make(user=None) -> CheckedClient:
        client = CheckedClient()
        client.conformance = conformance
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
        return client

    return make


@pytest.fixture
def people(patient, doctor, staff, outsider) -> dict[str, Any]:
    """The personas of tests/conftest.py by name."""
    return {"patient": patient, "doctor": doctor, "staff": staff, "outsider": outsider}


def status_of(response, expected: int) -> dict[str, Any]:
    assert response.status_code == expected, response.content
    return response.json() if response.content else {}


def error_code(response, expected: int) -> str:
    return status_of(response, expected)["error"]["code"]


# --- The checker itself --------------------------------------------------------------------------


def test_the_checked_schema_is_the_published_one(anon_client, conformance):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert json.loads(response.content) == conformance.document


def test_the_checker_refuses_a_body_or_status_the_schema_does_not_declare(client_as, people, conformance):
    response = client_as(people["patient"]).get("/api/v1/me/")
    assert response.status_code == 200

    tampered = {**response.json(), "role": "superhero", "undeclared": 1, "id": "42", "date_joined": "last Tuesday"}
    del tampered["email"]
    response.content = json.dumps(tampered).encode()
    with pytest.raises(SchemaDisagreement) as disagreement:
        conformance.check(response)
    message = str(disagreement.value)
    assert "'email' is a required property" in message
    assert "'superhero' is not one of" in message
    assert "'undeclared' was unexpected" in message
    assert "'42' is not a 'uuid'" in message
    assert "'last Tuesday' is not a 'date-time'" in message

    response.status_code = 202
    with pytest.raises(SchemaDisagreement, match="status 202 is not declared"):
        conformance.check(response)


def test_the_checker_refuses_an_error_answer_out_of_the_error_shape(client_as, conformance):
    response = client_as().get("/api/v1/me/")
    assert response.status_code == 401

    response.content = json.dumps({"detail": "Authentication credentials were not provided."}).encode()
    with pytest.raises(SchemaDisagreement, match=r"error shape"):
        conformance.check(response)


def test_the_checker_refuses_an_accepted_request_body_the_schema_does_not_allow(people, conformance):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(people['patient'])['access']}")
    response = client.patch("/api/v1/me/", {"first_name": "Alicia", "role": "staff"})  # role is ignored
    assert response.status_code == 200

    with pytest.raises(SchemaDisagreement, match=r"\(request body\)[^\n]*\n.*'role' was unexpected"):
        conformance.check(response)


# --- Accounts and directory ----------------------------------------------------------------------


def test_accounts_flow(client_as, people, django_capture_on_commit_callbacks):
    anon = client_as()
    patient = people["patient"]

    with django_capture_on_commit_callbacks(execute=True):
        status_of(
            anon.post(
                "/api/v1/auth/register/",
                {"email": "new@example.test", "password": "Sturdy-Lantern-42", "first_name": "N", "last_name": "U"},
            ),
            202,
        )
    assert error_code(anon.post("/api/v1/auth/register/", {"email": "not-an-email"}), 400) == "VALIDATION_ERROR"
    status_of(anon.post("/api/v1/auth/register/", "{", content_type="application/json"), 400)  # not JSON
    doctor_body = {
        "email": "dr.new@example.test",
        "password": "Sturdy-Lantern-42",
        "first_name": "Derek",
        "last_name": "Shepherd",
        "role": "doctor",
        "specialty": "Neurology",
        "license_number": "NEURO-0001",
        "consultation_fee": "120.00",
        "currency": "USD",
        "time_zone": "America/Chicago",
    }
    status_of(anon.post("/api/v1/auth/register/", doctor_body), 202)
    same_license = anon.post("/api/v1/auth/register/", {**doctor_body, "email": "dr.other@example.test"})
    assert error_code(same_license, 409) == "LICENSE_NUMBER_TAKEN"
    confirm = link_in(mail.outbox[-1])
    status_of(anon.post("/api/v1/auth/email/verify/", {"uid": confirm["uid"], "token": confirm["token"]}), 200)
    status_of(anon.post("/api/v1/auth/email/resend/", {"email": "new@example.test"}), 202)
    forged = anon.post("/api/v1/auth/email/verify/", {"uid": "x", "token": "y"})
    assert error_code(forged, 400) == "INVALID_VERIFICATION_TOKEN"

    login = status_of(anon.post("/api/v1/auth/login/", {"email": patient.email, "password": PASSWORD}), 200)
    wrong = anon.post("/api/v1/auth/login/", {"email": patient.email, "password": "wrong-Password-1"})
    assert error_code(wrong, 401) == "INVALID_CREDENTIALS"
    refreshed = status_of(anon.post("/api/v1/auth/token/refresh/", {"refresh": login["refresh"]}), 200)
    reused = anon.post("/api/v1/auth/token/refresh/", {"refresh": login["refresh"]})
    assert error_code(reused, 401) == "TOKEN_INVALID"

    me = client_as()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed['access']}")
    status_of(me.get("/api/v1/me/"), 200)
    status_of(me.patch("/api/v1/me/", {"first_name": "Alicia", "patient_profile": {"time_zone": "UTC"}}), 200)
    assert error_code(me.patch("/api/v1/me/", {"patient_profile": {"time_zone": "Mars/Base"}}), 400)

    status_of(me.post("/api/v1/auth/phone/send-code/", {"phone_number": "+14155550123"}), 202)
    assert error_code(me.post("/api/v1/auth/phone/verify/", {"code": "000000"}), 400)
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)
    status_of(me.post("/api/v1/auth/phone/verify/", {"code": code}), 200)

    with django_capture_on_commit_callbacks(execute=True):
        status_of(anon.post("/api/v1/auth/password/forgot/", {"email": "new@example.test"}), 202)
    reset_link = link_in(mail.outbox[-1])
    new_password = {"uid": reset_link["uid"], "token": reset_link["token"], "new_password": "Sturdy-Lantern-45"}
    status_of(anon.post("/api/v1/auth/password/reset/", new_password), 204)
    reset = anon.post("/api/v1/auth/password/reset/", {"uid": "x", "token": "y", "new_password": "Sturdy-Lantern-44"})
    assert error_code(reset, 401) == "TOKEN_INVALID"
    changed = me.post(
        "/api/v1/auth/password/change/", {"current_password": PASSWORD, "new_password": "Sturdy-Lantern-43"}
    )
    fresh = status_of(changed, 200)
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh['access']}")
    status_of(me.post("/api/v1/auth/logout/"), 204)
    assert error_code(me.get("/api/v1/me/"), 401) == "TOKEN_INVALID"
    profile = {"bio": "Neurologist.", "consultation_fee": "130.00", "consultation_minutes": 45}
    updated = status_of(client_as(people["doctor"]).patch("/api/v1/me/", {"doctor_profile": profile}), 200)
    assert updated["doctor_profile"]["consultation_fee"] == "130.00"
    assert error_code(client_as().get("/api/v1/me/"), 401) == "NOT_AUTHENTICATED"


def test_phone_only_account_and_avatar_flow(client_as, people, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "avatars": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    anon, phone = client_as(), "+14155550199"
    body = {"phone_number": phone, "password": "Sturdy-Lantern-42", "first_name": "P", "last_name": "O"}
    status_of(anon.post("/api/v1/auth/register/", {**body, "confirm_password": "Sturdy-Lantern-42"}), 202)
    mismatch = anon.post("/api/v1/auth/register/", {**body, "confirm_password": "Other-Lantern-42"})
    assert error_code(mismatch, 400) == "VALIDATION_ERROR"
    credentials = {"phone_number": phone, "password": "Sturdy-Lantern-42"}
    assert error_code(anon.post("/api/v1/auth/login/", credentials), 401) == "ACCOUNT_NOT_VERIFIED"
    status_of(anon.post("/api/v1/auth/phone/resend/", credentials), 202)
    assert error_code(anon.post("/api/v1/auth/phone/resend/", {"phone_number": phone}), 400) == "VALIDATION_ERROR"
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    bad_code = anon.post("/api/v1/auth/phone/confirm/", {**credentials, "code": wrong})
    assert error_code(bad_code, 400) == "INVALID_VERIFICATION_CODE"
    confirmed = status_of(anon.post("/api/v1/auth/phone/confirm/", {**credentials, "code": code}), 200)
    assert confirmed["user"]["email"] is None

    patient = people["patient"]
    SessionFactory(doctor=people["doctor"], patient=patient)  # the doctor may see the patient
    me = client_as(patient)
    jpeg = image_bytes()
    with_avatar = status_of(me.put("/api/v1/me/avatar/", avatar_upload(jpeg), format="multipart"), 200)
    fetched = client_as(people["doctor"]).get(with_avatar["avatar_url"])
    assert error_code(client_as(people["outsider"]).get(with_avatar["avatar_url"]), 404) == "NOT_FOUND"
    assert fetched.status_code == 200
    pdf = avatar_upload(b"%PDF-1.7\n" + b"0" * 100)
    assert error_code(me.put("/api/v1/me/avatar/", pdf, format="multipart"), 415) == "UNSUPPORTED_MEDIA_TYPE"
    assert error_code(me.patch("/api/v1/me/", {"preferred_language": "xx"}), 400) == "VALIDATION_ERROR"
    status_of(
        me.patch("/api/v1/me/", {"display_name": "Ali", "preferred_language": "de", "auto_join_audio": False}), 200
    )
    status_of(me.delete("/api/v1/me/avatar/"), 204)


def test_rate_limited_sign_in_answers_429(client_as, people):
    anon = client_as()
    body = {"email": people["patient"].email, "password": "wrong-Password-1"}
    codes = [anon.post("/api/v1/auth/login/", body).status_code for _ in range(6)]

    assert codes[-1] == 429
    assert error_code(anon.post("/api/v1/auth/login/", body), 429) == "RATE_LIMITED"


def test_directory_flow(client_as, people):
    doctor, patient, outsider = people["doctor"], people["patient"], people["outsider"]
    SessionFactory(doctor=doctor, patient=patient)
    as_patient, as_doctor, as_staff = client_as(patient), client_as(doctor), client_as(people["staff"])

    page = status_of(as_patient.get("/api/v1/doctors/", {"search": "House", "page_size": 1}), 200)
    assert page["count"] == 1
    status_of(as_patient.get("/api/v1/doctors/", {"specialty": "family medicine"}), 200)
    status_of(as_patient.get(f"/api/v1/doctors/{doctor.pk}/"), 200)
    assert error_code(as_patient.get(f"/api/v1/doctors/{patient.pk}/"), 404) == "NOT_FOUND"
    assert error_code(as_patient.get("/api/v1/doctors/", {"page": 99}), 404) == "NOT_FOUND"
    assert error_code(as_patient.get("/api/v1/doctors/", {"search": "x" * 101}), 400) == "VALIDATION_ERROR"

    assert status_of(as_doctor.get("/api/v1/patients/"), 200)["count"] == 1
    status_of(as_doctor.get(f"/api/v1/patients/{patient.pk}/"), 200)
    assert error_code(as_doctor.get(f"/api/v1/patients/{outsider.pk}/"), 404) == "NOT_FOUND"
    assert error_code(as_patient.get("/api/v1/patients/"), 403) == "PERMISSION_DENIED"
    status_of(as_staff.get("/api/v1/patients/", {"search": "Oscar"}), 200)

    # An account made in the admin without its profile inline has no profile.
    bare = UserFactory(role=Role.PATIENT)
    SessionFactory(doctor=doctor, patient=bare, scheduled_start=timezone.now() + timedelta(days=5))
    assert status_of(as_doctor.get(f"/api/v1/patients/{bare.pk}/"), 200)["profile"] is None
    status_of(client_as(bare).get("/api/v1/me/"), 200)
    bare_doctor = UserFactory(role=Role.DOCTOR)
    assert status_of(as_staff.get(f"/api/v1/doctors/{bare_doctor.pk}/"), 200)["profile"] is None
    status_of(as_staff.get("/api/v1/doctors/"), 200)


# --- Sessions, payments and the session room -----------------------------------------------------

WEBHOOK_SECRET = "whsec-conformance-0123456789abcdef"


def _paid_by_webhook(
    client: CheckedClient, session_id: str, *, amount: str = "75.00", event_type: str = "payment.succeeded"
) -> Any:
    now = int(timezone.now().timestamp())
    body = json.dumps(
        {
            "id": f"evt_{event_type}_{session_id}",
            "type": event_type,
            "created": now,
            "data": {"session_id": session_id, "amount": amount, "currency": "USD", "payment_id": "pi_1"},
        }
    ).encode()
    signature = webhook_signature(secret=WEBHOOK_SECRET, timestamp=now, raw_body=body)
    header = {f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}": f"t={now},v1={signature}"}
    return client.post("/api/v1/payments/webhook/", body, content_type="application/json", **header)


def test_session_booking_payment_and_room_flow(client_as, people, settings):
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478"]
    settings.CALL_TURN_SECRET = "turn-secret"
    settings.AGORA_APP_ID = "0123456789abcdef0123456789abcdef"
    settings.AGORA_APP_CERTIFICATE = "fedcba9876543210fedcba9876543210"
    doctor, patient, staff, outsider = people["doctor"], people["patient"], people["staff"], people["outsider"]
    as_patient, as_doctor, as_staff = client_as(patient), client_as(doctor), client_as(staff)
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    booking = {"doctor_id": str(doctor.pk), "scheduled_start": start.isoformat(), "reason": "Check-up"}
    session = status_of(as_patient.post("/api/v1/sessions/", booking), 201)
    assert session["no_show_party"] is None
    clash = as_patient.post("/api/v1/sessions/", booking)
    assert error_code(clash, 409) == "SCHEDULE_CONFLICT"
    past = {**booking, "scheduled_start": (timezone.now() - timedelta(hours=1)).isoformat()}
    assert error_code(as_patient.post("/api/v1/sessions/", past), 400) == "START_IN_PAST"
    assert error_code(as_patient.post("/api/v1/sessions/", {"doctor_id": "nope"}), 400) == "VALIDATION_ERROR"

    listed = as_patient.get("/api/v1/sessions/", {"status": ["requested", "confirmed"], "ordering": "-scheduled_start"})
    assert status_of(listed, 200)["count"] == 1
    status_of(as_doctor.get("/api/v1/sessions/", {"local_date": start.date().isoformat(), "refund_due": "false"}), 200)
    assert error_code(as_patient.get("/api/v1/sessions/", {"status": "sleeping"}), 400) == "VALIDATION_ERROR"
    session_url = f"/api/v1/sessions/{session['id']}"
    status_of(as_patient.get(f"{session_url}/"), 200)
    assert error_code(client_as(outsider).get(f"{session_url}/"), 404) == "NOT_FOUND"
    assert status_of(as_patient.get(f"{session_url}/can-join/"), 200)["reason"] == "NOT_CONFIRMED"

    assert error_code(as_patient.post(f"{session_url}/confirm/"), 403) == "PERMISSION_DENIED"
    status_of(as_doctor.post(f"{session_url}/confirm/"), 200)
    assert error_code(as_doctor.post(f"{session_url}/confirm/"), 409) == "INVALID_SESSION_STATE"
    assert status_of(as_patient.get(f"{session_url}/can-join/"), 200)["reason"] == "PAYMENT_PENDING"
    status_of(as_staff.post(f"{session_url}/mark-paid/", {"provider_payment_id": "cash-1"}), 200)
    assert error_code(as_staff.post(f"{session_url}/mark-paid/", {}), 409) == "INVALID_PAYMENT_STATE"
    assert len(status_of(as_patient.get(f"{session_url}/payments/"), 200)) == 1
    assert status_of(as_patient.get(f"{session_url}/can-join/"), 200)["reason"] == "TOO_EARLY"

    # A second session, paid through the provider's webhook, then cancelled and refunded.
    later = {**booking, "scheduled_start": (start + timedelta(days=1)).isoformat(), "session_type": "follow_up"}
    other = status_of(as_doctor.post("/api/v1/sessions/", {**later, "patient_id": str(patient.pk)}), 201)
    other_url = f"/api/v1/sessions/{other['id']}"
    assert status_of(_paid_by_webhook(client_as(), other["id"]), 200)["result"] == "processed"
    assert status_of(_paid_by_webhook(client_as(), other["id"]), 200)["result"] == "duplicate"
    assert error_code(_paid_by_webhook(client_as(), str(uuid.uuid4())), 404)
    assert (
        status_of(_paid_by_webhook(client_as(), other["id"], event_type="charge.disputed"), 200)["result"] == "ignored"
    )
    moved = {"scheduled_start": (start + timedelta(days=1, hours=3)).isoformat()}
    status_of(as_doctor.post(f"{other_url}/reschedule/", moved), 200)
    status_of(as_doctor.post(f"{other_url}/cancel/", {"reason": "Conference"}), 200)
    assert error_code(as_doctor.post(f"{other_url}/cancel/", {}), 409) == "INVALID_SESSION_STATE"
    status_of(as_staff.get("/api/v1/sessions/", {"refund_due": "true", "payment_status": "paid"}), 200)
    status_of(as_staff.post(f"{other_url}/mark-refunded/", {"note": "Cancelled by the doctor"}), 200)
    assert error_code(as_patient.post(f"{other_url}/mark-refunded/", {}), 403) == "PERMISSION_DENIED"
    assert error_code(as_patient.get(f"{other_url}/room/"), 404)
    assert error_code(as_patient.post(f"{other_url}/room/"), 409)

    with time_machine.travel(start - timedelta(minutes=5), tick=False):
        as_patient, as_doctor = client_as(patient), client_as(doctor)
        assert status_of(as_patient.get(f"{session_url}/can-join/"), 200)["can_join"] is True
        assert error_code(as_patient.get(f"{session_url}/room/"), 404) == "ROOM_NOT_FOUND"
        room = status_of(as_patient.post(f"{session_url}/room/"), 201)
        assert room["end_reason"] is None
        status_of(as_doctor.post(f"{session_url}/room/"), 200)
        status_of(as_doctor.get(f"{session_url}/room/"), 200)
        call_url = f"/api/v1/calls/{room['id']}"

        status_of(as_doctor.post(f"{call_url}/join/", {}), 200)
        assert status_of(as_patient.post(f"{call_url}/join/", {}), 202)["waiting"] is True  # the waiting room
        status_of(as_patient.get(f"{call_url}/waiting-room/"), 200)
        status_of(as_doctor.get("/api/v1/calls/waiting-room/"), 200)
        status_of(as_doctor.post(f"{call_url}/participants/{patient.pk}/admit/"), 200)
        joined = status_of(as_patient.post(f"{call_url}/join/", {}), 200)
        assert joined["agora"] is not None
        assert [server for server in joined["ice_servers"] if "credential" in server]
        assert error_code(client_as(outsider).post(f"{call_url}/join/", {}), 404) == "CALL_NOT_FOUND"
        status_of(as_patient.get(f"{call_url}/participants/"), 200)
        status_of(as_patient.patch(f"{call_url}/media/", {"audio_enabled": False}), 200)
        assert error_code(as_patient.patch(f"{call_url}/media/", {}), 400) == "VALIDATION_ERROR"
        status_of(as_doctor.patch(f"{call_url}/settings/", {"chat_enabled": False}), 200)
        assert error_code(as_patient.patch(f"{call_url}/settings/", {"chat_enabled": True}), 403)
        sample = {"rtt_ms": 80, "packet_loss_percent": 0.5, "resolution_width": 640, "resolution_height": 480}
        status_of(as_patient.post(f"{call_url}/quality/", {**sample, "audio_quality": "good"}), 201)
        assert error_code(as_patient.post(f"{call_url}/quality/", {"rtt_ms": 90}), 429) == "RATE_LIMITED"
        status_of(as_doctor.get(f"{call_url}/quality/", {"participant": str(patient.pk)}), 200)
        status_of(client_as(doctor).get("/api/v1/calls/ice-servers/"), 200)

    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        as_patient, as_doctor = client_as(patient), client_as(doctor)
        status_of(as_patient.post(f"{call_url}/leave/"), 200)
        ended = status_of(as_doctor.post(f"{call_url}/end/"), 200)
        assert ended["end_reason"] == "host_ended"
        assert error_code(as_doctor.post(f"{call_url}/end/"), 409) == "INVALID_CALL_STATE"
        status_of(as_patient.get(f"{call_url}/"), 200)
        status_of(as_patient.get(f"{session_url}/"), 200)
        status_of(as_patient.get("/api/v1/calls/history/", {"kind": "session", "ordering": "-duration_seconds"}), 200)
        assert error_code(as_patient.get("/api/v1/calls/history/", {"status": "lost"}), 400) == "VALIDATION_ERROR"
        status_of(as_patient.get("/api/v1/calls/statistics/", {"period": "7d", "scope": "mine"}), 200)
        status_of(as_doctor.get("/api/v1/calls/statistics/", {"date_from": start.date().isoformat()}), 200)
        assert error_code(as_patient.get("/api/v1/calls/statistics/", {"period": "1y"}), 400) == "VALIDATION_ERROR"
        assert error_code(as_patient.get(f"/api/v1/calls/{uuid.uuid4()}/"), 404)


def test_a_no_show_session_and_every_role_of_me(client_as, people):
    doctor, patient = people["doctor"], people["patient"]
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    missed = SessionFactory(doctor=doctor, patient=patient, scheduled_start=start, status="confirmed")
    Session.objects.filter(pk=missed.pk).update(payment_status="paid")

    with time_machine.travel(start + timedelta(hours=6), tick=False):
        assert session_no_show_sweep() == 1
        body = status_of(client_as(patient).get(f"/api/v1/sessions/{missed.pk}/"), 200)
        assert (body["status"], body["no_show_party"]) == ("no_show", "both")
        assert status_of(client_as(doctor).get(f"/api/v1/sessions/{missed.pk}/can-join/"), 200)["can_join"] is False

    assert status_of(client_as(doctor).get("/api/v1/me/"), 200)["doctor_profile"]["is_verified"] is True
    assert status_of(client_as(people["staff"]).get("/api/v1/me/"), 200)["patient_profile"] is None


# --- Ad-hoc and group calls ----------------------------------------------------------------------


def test_adhoc_call_flow(client_as, people):
    doctor, patient, outsider = people["doctor"], people["patient"], people["outsider"]
    SessionFactory(doctor=doctor, patient=patient)  # a care relationship: they may ring each other
    as_doctor, as_patient = client_as(doctor), client_as(patient)
    ring = {"callee_id": str(patient.pk), "media": "voice"}

    ringing = status_of(as_doctor.post("/api/v1/calls/initiate/", ring), 201)
    assert ringing["end_reason"] is None
    assert error_code(as_doctor.post("/api/v1/calls/initiate/", ring), 409) == "CALLEE_BUSY"
    self_call = as_doctor.post("/api/v1/calls/initiate/", {"callee_id": str(doctor.pk)})
    assert error_code(self_call, 400) == "CANNOT_CALL_SELF"
    stranger = as_doctor.post("/api/v1/calls/initiate/", {"callee_id": str(outsider.pk)})
    assert error_code(stranger, 404) == "USER_NOT_FOUND"
    call_url = f"/api/v1/calls/{ringing['id']}"
    assert error_code(as_doctor.post(f"{call_url}/accept/"), 403) == "NOT_CALLEE"
    status_of(as_patient.post(f"{call_url}/accept/"), 200)
    assert error_code(as_patient.post(f"{call_url}/accept/"), 409) == "INVALID_CALL_STATE"
    status_of(as_patient.post(f"{call_url}/join/", {}), 200)  # a reconnect to the ongoing call
    assert status_of(as_doctor.post(f"{call_url}/hangup/"), 200)["end_reason"] == "hangup"

    declined = status_of(as_doctor.post("/api/v1/calls/initiate/", ring), 201)
    assert status_of(as_patient.post(f"/api/v1/calls/{declined['id']}/decline/", {"reason": "busy"}), 200)
    assert error_code(as_patient.post(f"/api/v1/calls/{declined['id']}/decline/", {"reason": "bored"}), 400)
    cancelled = status_of(as_patient.post("/api/v1/calls/initiate/", {"callee_id": str(doctor.pk)}), 201)
    status_of(as_patient.post(f"/api/v1/calls/{cancelled['id']}/cancel/"), 200)
    left = status_of(as_doctor.post("/api/v1/calls/initiate/", ring), 201)
    status_of(as_patient.post(f"/api/v1/calls/{left['id']}/accept/"), 200)
    status_of(as_patient.post(f"/api/v1/calls/{left['id']}/leave/"), 200)

    status_of(as_doctor.get("/api/v1/calls/history/", {"kind": "ad_hoc", "status": ["completed", "declined"]}), 200)
    status_of(as_patient.get(f"/api/v1/calls/{left['id']}/"), 200)
    status_of(as_patient.get("/api/v1/calls/statistics/"), 200)
    assert error_code(client_as(outsider).get(f"/api/v1/calls/{left['id']}/"), 404)
    supervised = call_initiate(caller=doctor, callee_id=patient.pk)  # rung by the services: no ring limit
    call_accept(call=supervised, user=patient)
    ended = status_of(client_as(people["staff"]).post(f"/api/v1/calls/{supervised.pk}/end/"), 200)
    assert ended["end_reason"] == "staff_ended"


def test_group_consultation_flow(client_as, people):
    doctor, patient, staff, outsider = people["doctor"], people["patient"], people["staff"], people["outsider"]
    as_staff, as_patient, as_outsider = client_as(staff), client_as(patient), client_as(outsider)
    group = {"title": "Case review", "invitee_ids": [str(doctor.pk), str(patient.pk)], "passcode": "1234"}

    assert error_code(as_patient.post("/api/v1/calls/group/", group), 403) == "CLINICIANS_ONLY"
    call = status_of(as_staff.post("/api/v1/calls/group/", group), 201)
    call_url = f"/api/v1/calls/{call['id']}"
    status_of(as_staff.post(f"{call_url}/join/", {}), 200)
    assert error_code(as_patient.post(f"{call_url}/join/", {"passcode": "0000"}), 403) == "INVALID_PASSCODE"
    status_of(as_patient.post(f"{call_url}/join/", {"passcode": "1234"}), 202)
    status_of(as_patient.get(f"{call_url}/waiting-room/"), 200)
    status_of(as_staff.get("/api/v1/calls/waiting-room/", {"page_size": 5}), 200)
    assert error_code(as_patient.get("/api/v1/calls/waiting-room/"), 403) == "CLINICIANS_ONLY"
    status_of(as_staff.post(f"{call_url}/participants/{patient.pk}/admit/"), 200)
    status_of(as_patient.post(f"{call_url}/join/", {"passcode": "1234"}), 200)
    status_of(as_staff.post(f"{call_url}/participants/{patient.pk}/send-back/"), 200)
    status_of(as_staff.post(f"{call_url}/participants/{patient.pk}/remove/"), 200)
    assert error_code(as_staff.post(f"{call_url}/participants/{staff.pk}/remove/"), 409) == "CANNOT_REMOVE_SELF"
    status_of(as_staff.post(f"{call_url}/invitations/", {"user_id": str(outsider.pk)}), 201)
    assert error_code(as_staff.post(f"{call_url}/invitations/", {"user_id": str(outsider.pk)}), 409)
    status_of(as_outsider.post(f"{call_url}/invitation/decline/"), 200)
    status_of(client_as(doctor).post(f"{call_url}/invitation/decline/"), 200)
    status_of(as_staff.get(f"{call_url}/participants/"), 200)
    status_of(as_staff.post(f"{call_url}/end/"), 200)
    status_of(as_staff.get(f"{call_url}/"), 200)
    status_of(as_staff.get("/api/v1/calls/history/", {"kind": "group"}), 200)
    status_of(as_staff.get("/api/v1/calls/statistics/", {"scope": "all", "period": "90d"}), 200)

    # A doctor's meeting: planned times, recording and its consent, the host's changes.
    as_doctor = client_as(doctor)
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    planned = {"scheduled_start": start.isoformat(), "scheduled_end": (start + timedelta(hours=1)).isoformat()}
    meeting = {"invitee_ids": [str(staff.pk)], "description": "Review", **planned, "recording_enabled": True}
    created = status_of(as_doctor.post("/api/v1/calls/group/", meeting), 201)
    assert created["settings"]["recording_enabled"] is True
    meeting_url = f"/api/v1/calls/{created['id']}"
    moved = {"title": "Moved", "scheduled_start": None, "auto_recording": True}
    assert status_of(as_doctor.patch(f"{meeting_url}/settings/", moved), 200)["scheduled_start"] is None
    assert error_code(as_staff.post(f"{meeting_url}/join/", {}), 409) == "RECORDING_CONSENT_REQUIRED"
    consenting = {"recording_consent": True, "display_name": "Clinic", "audio_enabled": False}
    status_of(as_staff.post(f"{meeting_url}/join/", consenting), 200)
    started = as_doctor.patch(f"{meeting_url}/settings/", {"auto_recording": False})
    assert error_code(started, 409) == "INVALID_CALL_STATE"
    past_end = {"scheduled_end": "2000-01-01T00:00:00Z"}
    assert error_code(as_doctor.patch(f"{meeting_url}/settings/", past_end), 400) == "VALIDATION_ERROR"
    status_of(as_staff.get(f"{meeting_url}/participants/"), 200)
    status_of(as_staff.post(f"{meeting_url}/end/"), 200)


# --- Messaging -----------------------------------------------------------------------------------


def test_messaging_flow(client_as, people, settings):
    doctor, patient, staff, outsider = people["doctor"], people["patient"], people["staff"], people["outsider"]
    SessionFactory(doctor=doctor, patient=patient)
    as_patient, as_doctor = client_as(patient), client_as(doctor)

    conversation = status_of(as_patient.post("/api/v1/conversations/", {"user_id": str(doctor.pk)}), 201)
    status_of(as_doctor.post("/api/v1/conversations/", {"user_id": str(patient.pk)}), 200)
    assert error_code(as_patient.post("/api/v1/conversations/", {"user_id": str(outsider.pk)}), 404) == "USER_NOT_FOUND"
    assert error_code(as_patient.post("/api/v1/conversations/", {}), 400) == "VALIDATION_ERROR"
    url = f"/api/v1/conversations/{conversation['id']}"
    first = {"conversation_id": conversation["id"], "body": "How are you feeling?", "client_message_id": "c-1"}
    sent = status_of(as_doctor.post("/api/v1/messages/", first), 201)
    assert status_of(as_doctor.post("/api/v1/messages/", first), 200)["id"] == sent["id"]
    reply = status_of(as_patient.post("/api/v1/messages/", {"user_id": str(doctor.pk), "body": "Better"}), 201)
    assert reply["client_message_id"] is None
    reused = {**first, "conversation_id": None}
    assert error_code(as_doctor.post("/api/v1/messages/", reused), 400) == "VALIDATION_ERROR"

    listed = status_of(as_patient.get("/api/v1/conversations/", {"page_size": 5}), 200)
    assert listed["results"][0]["last_message"]["body"] == "Better"
    status_of(as_patient.get(f"{url}/"), 200)
    status_of(as_patient.get(f"{url}/messages/", {"page_size": 1}), 200)
    status_of(as_patient.get(f"{url}/messages/", {"after": sent["id"]}), 200)
    status_of(as_patient.get(f"{url}/messages/", {"since": sent["created_at"]}), 200)
    assert error_code(client_as(outsider).get(f"{url}/"), 404) == "CONVERSATION_NOT_FOUND"
    status_of(as_patient.post(f"{url}/delivered/", {"message_id": sent["id"]}), 200)
    status_of(as_patient.post(f"{url}/read/", {"message_id": sent["id"]}), 200)
    status_of(as_doctor.post(f"/api/v1/messages/{reply['id']}/read/"), 200)
    assert error_code(as_doctor.delete(f"/api/v1/messages/{reply['id']}/"), 403) == "NOT_MESSAGE_SENDER"
    status_of(as_doctor.delete(f"/api/v1/messages/{sent['id']}/"), 204)
    settings.MESSAGE_DELETE_WINDOW_SECONDS = 0
    assert error_code(as_patient.delete(f"/api/v1/messages/{reply['id']}/"), 409) == "DELETE_WINDOW_PASSED"
    cache.clear()  # the doctor's sends so far are forgotten: one more is allowed
    settings.MESSAGE_THROTTLE_RATE = "1/min"
    limited = {"conversation_id": conversation["id"], "body": "again"}
    status_of(as_doctor.post("/api/v1/messages/", limited), 201)
    assert error_code(as_doctor.post("/api/v1/messages/", limited), 429) == "RATE_LIMITED"

    status_of(as_patient.get("/api/v1/contacts/"), 200)
    other_doctor = UserFactory(role=Role.DOCTOR)
    assert error_code(as_patient.post("/api/v1/contacts/", {"user_id": str(other_doctor.pk)}), 404)  # no profile
    status_of(as_doctor.post("/api/v1/contacts/", {"user_id": str(other_doctor.pk)}), 201)
    status_of(as_doctor.post("/api/v1/contacts/", {"user_id": str(other_doctor.pk)}), 200)
    status_of(as_doctor.delete(f"/api/v1/contacts/{other_doctor.pk}/"), 204)
    assert error_code(as_doctor.delete(f"/api/v1/contacts/{other_doctor.pk}/"), 404) == "CONTACT_NOT_FOUND"
    status_of(client_as(staff).post("/api/v1/contacts/", {"user_id": str(outsider.pk)}), 201)


def test_call_chat_flow(client_as, people):
    doctor, patient, staff = people["doctor"], people["patient"], people["staff"]
    as_staff = client_as(staff)
    group = {"title": "Case review", "invitee_ids": [str(doctor.pk), str(patient.pk)]}
    call = status_of(as_staff.post("/api/v1/calls/group/", group), 201)
    status_of(as_staff.post(f"/api/v1/calls/{call['id']}/join/", {}), 200)
    assert error_code(client_as(patient).post("/api/v1/conversations/", {"call_id": call["id"]}), 403)

    chat = status_of(as_staff.post("/api/v1/conversations/", {"call_id": call["id"]}), 201)
    assert (chat["kind"], chat["call_id"]) == ("call", call["id"])
    status_of(as_staff.post("/api/v1/conversations/", {"call_id": call["id"]}), 200)
    said = status_of(as_staff.post("/api/v1/messages/", {"call_id": call["id"], "body": "Welcome"}), 201)
    assert said["call_id"] == call["id"]
    aside = {"conversation_id": chat["id"], "body": "x", "recipient_id": str(patient.pk)}
    assert error_code(as_staff.post("/api/v1/messages/", aside), 400) == "INVALID_RECIPIENT"  # not in the chat


def test_attachment_flow(client_as, people, settings, tmp_path):
    doctor, patient, outsider = people["doctor"], people["patient"], people["outsider"]
    SessionFactory(doctor=doctor, patient=patient)
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    as_patient, as_doctor = client_as(patient), client_as(doctor)
    pdf = b"%PDF-1.7\n" + b"0" * 1000

    def upload(content: bytes, name: str = "scan.pdf", **fields):
        body = {"file": SimpleUploadedFile(name, content, content_type="application/pdf"), **fields}
        return as_patient.post("/api/v1/attachments/", body, format="multipart")

    attachment = status_of(upload(pdf, access="private"), 201)
    url = f"/api/v1/attachments/{attachment['id']}"
    status_of(as_patient.get(f"{url}/"), 200)
    downloaded = as_patient.get(f"{url}/download/")
    assert downloaded.status_code == 200 and b"".join(downloaded.streaming_content) == pdf
    assert error_code(client_as(outsider).get(f"{url}/download/"), 404) == "ATTACHMENT_NOT_FOUND"
    assert error_code(upload(b"\x7fELF\x02\x01\x01" + b"0" * 64), 415) == "UNSUPPORTED_MEDIA_TYPE"
    message = {"user_id": str(doctor.pk), "type": "file", "attachment_id": attachment["id"]}
    sent = status_of(as_patient.post("/api/v1/messages/", message), 201)
    assert sent["attachment_id"] == attachment["id"]
    assert status_of(as_doctor.get(f"{url}/"), 200)["message_id"] == sent["id"]
    assert error_code(as_patient.post("/api/v1/messages/", message), 409) == "ATTACHMENT_ALREADY_SENT"
    shared = status_of(upload(pdf, access="shared_conversation", conversation_id=sent["conversation_id"]), 201)
    status_of(as_doctor.get(f"/api/v1/attachments/{shared['id']}/"), 200)
    assert error_code(as_doctor.delete(f"/api/v1/attachments/{shared['id']}/"), 403) == "NOT_ATTACHMENT_OWNER"
    assert error_code(as_patient.delete(f"{url}/"), 409) == "ATTACHMENT_ALREADY_SENT"
    assert as_patient.delete(f"/api/v1/attachments/{shared['id']}/").status_code == 204
    settings.ATTACHMENT_MAX_BYTES = 100
    assert error_code(upload(pdf), 413) == "PAYLOAD_TOO_LARGE"
    cache.clear()
    settings.ATTACHMENT_UPLOAD_THROTTLE_RATE = "1/hour"
    settings.ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    status_of(upload(pdf), 201)
    assert error_code(upload(pdf), 429) == "RATE_LIMITED"


# --- Presence, realtime tickets, health ----------------------------------------------------------


def _redis_down():
    """Redis (cache and readiness) on a loopback port nothing listens on: a real outage."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    cache = {"BACKEND": "core.redis_pool.SharedRedisCache", "LOCATION": url}
    return override_settings(CACHES={"default": cache}, REDIS_URL=url)


def test_presence_realtime_and_health_flow(client_as, people, settings):
    doctor, patient, outsider = people["doctor"], people["patient"], people["outsider"]
    SessionFactory(doctor=doctor, patient=patient)
    UserPresence.objects.create(user=doctor, status=PresenceStatus.ONLINE, last_seen_at=timezone.now())
    as_patient, as_doctor = client_as(patient), client_as(doctor)

    status_of(as_patient.get("/api/v1/presence/me/"), 200)
    status_of(as_patient.put("/api/v1/presence/me/", {"status": "away"}), 200)
    assert error_code(as_patient.put("/api/v1/presence/me/", {"status": "busy"}), 400) == "VALIDATION_ERROR"
    status_of(as_patient.get(f"/api/v1/presence/{doctor.pk}/"), 200)
    status_of(as_doctor.get(f"/api/v1/presence/{patient.pk}/"), 200)
    assert error_code(client_as(outsider).get(f"/api/v1/presence/{patient.pk}/"), 404) == "USER_NOT_FOUND"
    online = status_of(as_patient.get("/api/v1/presence/doctors/", {"page_size": 10}), 200)
    assert [row["user_id"] for row in online["results"]] == [str(doctor.pk)]
    assert error_code(client_as().get("/api/v1/presence/doctors/"), 401) == "NOT_AUTHENTICATED"
    by_role = status_of(as_patient.get("/api/v1/presence/online/", {"role": "doctor", "page_size": 10}), 200)
    assert [(row["user_id"], row["role"]) for row in by_role["results"]] == [(str(doctor.pk), "doctor")]
    status_of(as_doctor.get("/api/v1/presence/online/", {"role": "patient"}), 200)
    assert error_code(as_patient.get("/api/v1/presence/online/", {"role": "staff"}), 403) == "PERMISSION_DENIED"
    assert error_code(as_patient.get("/api/v1/presence/online/", {"role": "nurse"}), 400) == "VALIDATION_ERROR"

    status_of(as_patient.post("/api/v1/realtime/tickets/"), 201)
    status_of(client_as().get("/api/health/live"), 200)
    status_of(client_as().get("/api/health/ready"), 200)
    status_of(client_as(people["staff"]).get("/api/health/info"), 200)
    assert error_code(client_as().get("/api/health/info"), 401) == "NOT_AUTHENTICATED"
    assert error_code(as_patient.get("/api/health/info"), 403) == "PERMISSION_DENIED"
    assert client_as(people["staff"]).get("/api/health/metrics").status_code == 200  # text, checked by the client
    assert error_code(as_patient.get("/api/health/metrics"), 403) == "PERMISSION_DENIED"
    assert error_code(as_patient.get("/api/v1/no-such-endpoint/"), 404) == "NOT_FOUND"
    assert error_code(as_patient.delete("/api/v1/me/"), 405) == "METHOD_NOT_ALLOWED"
    assert error_code(as_patient.post("/api/v1/calls/initiate/", "callee", content_type="text/plain"), 415)
    with _redis_down():
        assert error_code(client_as().post("/api/v1/auth/login/", {"email": patient.email, "password": "x"}), 503)
        assert status_of(client_as().get("/api/health/ready"), 503)["checks"]["cache"]["status"] == "unavailable"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    too_large = as_patient.post("/api/v1/calls/initiate/", {"callee_id": "x" * 2048}, format="json")
    assert error_code(too_large, 413) == "PAYLOAD_TOO_LARGE"


def test_audit_trail_flow(client_as, people):
    as_staff, as_patient = client_as(people["staff"]), client_as(people["patient"])
    status_of(as_patient.get("/api/v1/me/"), 200)

    page = status_of(as_staff.get("/api/v1/audit/entries/", {"actor": str(people["patient"].pk), "page_size": 5}), 200)
    assert [row["route"] for row in page["results"]] == ["me"]
    export = as_staff.get("/api/v1/audit/entries/export/", {"outcome": "allowed"})
    assert export.status_code == 200 and b"".join(export.streaming_content).startswith(b"id,occurred_at")
    assert error_code(as_patient.get("/api/v1/audit/entries/"), 403) == "PERMISSION_DENIED"
    assert error_code(as_staff.get("/api/v1/audit/entries/", {"outcome": "maybe"}), 400) == "VALIDATION_ERROR"


def test_staff_console_flow(client_as, people):
    from tests.video_calls.factories import CallFactory, CallParticipantFactory
    from video_calls.models import CallKind, CallStatus, ParticipantStatus

    as_staff, as_doctor = client_as(people["staff"]), client_as(people["doctor"])
    staff_path, patient_id = "/api/v1/staff", people["patient"].pk
    status_of(as_staff.get(f"{staff_path}/dashboard/"), 200)
    status_of(
        as_staff.get(f"{staff_path}/analytics/", {"start": "2026-01-01", "end": "2026-03-31", "granularity": "month"}),
        200,
    )
    status_of(as_staff.get(f"{staff_path}/users/", {"search": "a", "role": "patient", "status": "active"}), 200)
    status_of(as_staff.get(f"{staff_path}/users/{patient_id}/"), 200)
    status_of(as_staff.patch(f"{staff_path}/users/{patient_id}/", {"display_name": "Ali"}, format="json"), 200)
    status_of(as_staff.post(f"{staff_path}/users/{patient_id}/suspend/"), 200)
    status_of(as_staff.post(f"{staff_path}/users/{patient_id}/reactivate/"), 200)
    room = CallFactory(kind=CallKind.GROUP, status=CallStatus.ONGOING, initiated_by=people["doctor"])
    CallParticipantFactory(call=room, user=people["outsider"], status=ParticipantStatus.INVITED)
    status_of(as_staff.get(f"{staff_path}/calls/", {"status": "active"}), 200)
    status_of(as_staff.get(f"{staff_path}/calls/{room.pk}/"), 200)
    status_of(as_staff.get(f"{staff_path}/calls/{room.pk}/participants/"), 200)
    status_of(as_staff.post(f"{staff_path}/calls/{room.pk}/participants/{people['outsider'].pk}/remove/"), 200)
    status_of(as_staff.post(f"{staff_path}/calls/{room.pk}/end/"), 200)
    status_of(as_staff.delete(f"{staff_path}/users/{people['outsider'].pk}/"), 204)
    assert error_code(as_doctor.get(f"{staff_path}/dashboard/"), 403) == "PERMISSION_DENIED"
    assert error_code(as_staff.get(f"{staff_path}/analytics/", {"start": "2026-02-01", "end": "2026-01-01"}), 400) == (
        "VALIDATION_ERROR"
    )
    assert error_code(as_staff.post(f"{staff_path}/users/{people['staff'].pk}/suspend/"), 409) == "CANNOT_ACT_ON_SELF"


# --- Coverage ------------------------------------------------------------------------------------


def test_every_operation_of_the_schema_was_driven(request, conformance):
    """Last in the module, so it sees what the flows above drove (pytest runs a module's tests
    in the order they are written). A new endpoint needs a step in one of the flows."""
    flows = [name for name, value in globals().items() if name.startswith("test_") and name.endswith("_flow")]
    selected = {item.name for item in request.session.items if item.module is request.module}
    if not set(flows) <= selected:
        pytest.skip("needs every flow of this module to have run")

    operations = {op["operationId"] for item in conformance.document["paths"].values() for op in item.values()}
    succeeded = {operation for operation, status in conformance.seen if int(status) < 400}
    assert sorted(operations - succeeded) == []

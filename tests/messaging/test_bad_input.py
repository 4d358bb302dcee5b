"""Bad input to the messaging endpoints gets 400 ``VALIDATION_ERROR`` naming the field, and
nothing is written; without a token every endpoint answers 401."""

import uuid

import pytest

from messaging.models import Contact, Conversation, Message, MessageReceipt
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.messaging.conftest import send

pytestmark = pytest.mark.django_db

NOT_A_UUID = "not-a-uuid"


def _rows() -> tuple[int, int, int, int]:
    return (
        Conversation.objects.count(),
        Message.objects.count(),
        MessageReceipt.objects.count(),
        Contact.objects.count(),
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"user_id": NOT_A_UUID}, "user_id"),
        ({"call_id": NOT_A_UUID}, "call_id"),
        ({"user_id": str(uuid.uuid4()), "call_id": str(uuid.uuid4())}, "non_field_errors"),
    ],
)
def test_opening_a_conversation_needs_exactly_one_well_formed_target(patient_client, direct, body, field):
    before = _rows()

    response = patient_client.post("/api/v1/conversations/", body, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert field in response.json()["error"]["details"]
    assert _rows() == before


@pytest.mark.parametrize("mark", ["read", "delivered"])
@pytest.mark.parametrize(("body", "field"), [({}, "message_id"), ({"message_id": NOT_A_UUID}, "message_id")])
def test_a_mark_needs_a_well_formed_message_id(patient_client, direct, doctor, mark, body, field):
    send(doctor, direct, "Results are in")
    before = list(MessageReceipt.objects.values_list("status", "read_at", "delivered_at"))

    response = patient_client.post(f"/api/v1/conversations/{direct.pk}/{mark}/", body, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert field in response.json()["error"]["details"]
    assert list(MessageReceipt.objects.values_list("status", "read_at", "delivered_at")) == before


@pytest.mark.parametrize(("query", "field"), [({"after": NOT_A_UUID}, "after"), ({"since": "yesterday"}, "since")])
def test_catching_up_needs_a_well_formed_message_or_time(patient_client, direct, query, field):
    response = patient_client.get(f"/api/v1/conversations/{direct.pk}/messages/", query)

    assert_error(response, 400, "VALIDATION_ERROR")
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize("body", [{}, {"user_id": NOT_A_UUID}])
def test_adding_a_contact_needs_a_well_formed_user_id(patient_client, body):
    response = patient_client.post("/api/v1/contacts/", body, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert "user_id" in response.json()["error"]["details"]
    assert Contact.objects.count() == 0


def test_every_messaging_endpoint_needs_a_signed_in_user(anon_client, direct, doctor, patient):
    message = send(doctor, direct, "Results are in")
    some_id = uuid.uuid4()
    requests = [
        ("get", "/api/v1/conversations/"),
        ("post", "/api/v1/conversations/"),
        ("get", f"/api/v1/conversations/{direct.pk}/"),
        ("get", f"/api/v1/conversations/{direct.pk}/messages/"),
        ("post", f"/api/v1/conversations/{direct.pk}/read/"),
        ("post", f"/api/v1/conversations/{direct.pk}/delivered/"),
        ("post", "/api/v1/messages/"),
        ("delete", f"/api/v1/messages/{message.pk}/"),
        ("post", f"/api/v1/messages/{message.pk}/read/"),
        ("post", "/api/v1/attachments/"),
        ("get", f"/api/v1/attachments/{some_id}/"),
        ("get", f"/api/v1/attachments/{some_id}/download/"),
        ("get", "/api/v1/contacts/"),
        ("post", "/api/v1/contacts/"),
        ("delete", f"/api/v1/contacts/{patient.pk}/"),
    ]

    for method, path in requests:
        assert_error(getattr(anon_client, method)(path), 401, "NOT_AUTHENTICATED")
    assert Message.objects.get(pk=message.pk).deleted_at is None
    # and a signed-in member is let through the same door
    assert client_for(patient).get(f"/api/v1/conversations/{direct.pk}/").status_code == 200

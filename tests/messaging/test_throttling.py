"""Messages are limited per user, REST and socket counted together: over the rate the answer
is 429 RATE_LIMITED with Retry-After (an error event with retry_after on the socket)."""

import pytest

from messaging.models import Message
from tests.assertions import assert_error
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_message_over_the_rate_is_refused_with_retry_after(direct, patient, settings):
    settings.MESSAGE_THROTTLE_RATE = "3/min"
    client = client_for(patient)
    target = {"conversation_id": str(direct.pk), "body": "again"}

    statuses = [client.post("/api/v1/messages/", target).status_code for _ in range(3)]
    refused = client.post("/api/v1/messages/", target)

    assert statuses == [201, 201, 201]
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(refused["Retry-After"])
    assert Message.objects.count() == 3


def test_each_user_has_their_own_budget(direct, patient, doctor, settings):
    settings.MESSAGE_THROTTLE_RATE = "1/min"
    target = {"conversation_id": str(direct.pk), "body": "hi"}

    assert client_for(patient).post("/api/v1/messages/", target).status_code == 201
    assert client_for(doctor).post("/api/v1/messages/", target).status_code == 201
    assert client_for(patient).post("/api/v1/messages/", target).status_code == 429


def test_the_default_rate_is_thirty_a_minute(direct, patient):
    client = client_for(patient)
    target = {"conversation_id": str(direct.pk), "body": "hi"}

    statuses = [client.post("/api/v1/messages/", target).status_code for _ in range(31)]

    assert statuses == [201] * 30 + [429]


def test_a_rate_lowered_below_what_was_sent_still_says_when_to_retry(direct, patient, settings):
    client = client_for(patient)
    target = {"conversation_id": str(direct.pk), "body": "hi"}
    for _ in range(5):
        client.post("/api/v1/messages/", target)

    settings.MESSAGE_THROTTLE_RATE = "2/min"
    refused = client.post("/api/v1/messages/", target)

    error = assert_error(refused, 429, "RATE_LIMITED")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(refused["Retry-After"])

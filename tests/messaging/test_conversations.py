"""Conversations: who may open one, one direct conversation per pair, the list (order, preview,
unread counts, other members) at a fixed query count, and 404 for everyone else's."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from messaging.models import Conversation, ConversationKind
from messaging.services.conversations import ordered_pair
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.messaging.conftest import send
from tests.video_calls.factories import SessionFactory

pytestmark = pytest.mark.django_db


def test_a_patient_opens_a_direct_conversation_with_their_doctor_once(care, patient, doctor, patient_client):
    first = patient_client.post("/api/v1/conversations/", {"user_id": str(doctor.pk)})
    again = patient_client.post("/api/v1/conversations/", {"user_id": str(doctor.pk)})
    from_the_doctor = client_for(doctor).post("/api/v1/conversations/", {"user_id": str(patient.pk)})

    assert (first.status_code, again.status_code, from_the_doctor.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == from_the_doctor.json()["id"]
    assert first.json()["kind"] == "direct"
    assert [member["id"] for member in first.json()["members"]] == [str(doctor.pk)]
    assert Conversation.objects.count() == 1


def test_the_database_refuses_a_second_direct_conversation_for_a_pair(direct, patient, doctor):
    low, high = ordered_pair(patient.pk, doctor.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(kind=ConversationKind.DIRECT, user_low_id=low, user_high_id=high)
    with pytest.raises(IntegrityError), transaction.atomic():  # nor the pair the other way round
        Conversation.objects.create(kind=ConversationKind.DIRECT, user_low_id=high, user_high_id=low)


def test_someone_without_a_care_relationship_or_contact_is_not_found(patient_client, outsider, doctor):
    to_a_stranger_doctor = patient_client.post("/api/v1/conversations/", {"user_id": str(doctor.pk)})
    to_another_patient = patient_client.post("/api/v1/conversations/", {"user_id": str(outsider.pk)})
    to_nobody = patient_client.post("/api/v1/conversations/", {"user_id": str(uuid.uuid4())})

    for response in (to_a_stranger_doctor, to_another_patient, to_nobody):
        assert_error(response, 404, "USER_NOT_FOUND")
    assert Conversation.objects.count() == 0


def test_staff_may_open_a_conversation_with_anyone(staff_client, outsider):
    response = staff_client.post("/api/v1/conversations/", {"user_id": str(outsider.pk)})

    assert response.status_code == 201


def test_a_conversation_with_oneself_is_refused(patient_client, patient):
    assert_error(
        patient_client.post("/api/v1/conversations/", {"user_id": str(patient.pk)}), 400, "CANNOT_MESSAGE_SELF"
    )


def test_another_users_conversation_is_not_found(direct, outsider_client, staff_client):
    for client in (outsider_client, staff_client):  # staff too: it is not theirs
        assert_error(client.get(f"/api/v1/conversations/{direct.pk}/"), 404, "CONVERSATION_NOT_FOUND")
        assert_error(client.get(f"/api/v1/conversations/{direct.pk}/messages/"), 404, "CONVERSATION_NOT_FOUND")


def test_the_list_orders_by_last_activity_with_my_preview_unread_count_and_the_other_members(
    care, patient, doctor, patient_client
):
    # given two conversations of the patient: with their doctor, and with a second doctor
    second_doctor = DoctorFactory()
    SessionFactory(doctor=second_doctor, patient=patient)
    with_doctor = client_for(doctor).post("/api/v1/messages/", {"user_id": str(patient.pk), "body": "How are you?"})
    client_for(second_doctor).post("/api/v1/messages/", {"user_id": str(patient.pk), "body": "Results are in"})
    client_for(second_doctor).post("/api/v1/messages/", {"user_id": str(patient.pk), "body": "All normal"})
    # and the doctor's conversation is the most recent
    client_for(doctor).post("/api/v1/messages/", {"user_id": str(patient.pk), "body": "Call me back"})

    # when the patient lists their conversations
    body = patient_client.get("/api/v1/conversations/").json()

    # then the most recent first, each with its last message, the patient's unread count, the other member
    assert body["count"] == 2
    first, second = body["results"]
    assert first["id"] == with_doctor.json()["conversation_id"]
    assert (first["last_message"]["body"], first["unread_count"]) == ("Call me back", 2)
    assert [member["id"] for member in first["members"]] == [str(doctor.pk)]
    assert (second["last_message"]["body"], second["unread_count"]) == ("All normal", 2)
    assert [member["id"] for member in second["members"]] == [str(second_doctor.pk)]


@pytest.mark.parametrize("page_size", [1, 5, 20])
def test_the_list_costs_the_same_queries_whatever_the_page_size(patient, page_size, django_assert_num_queries):
    # given twenty conversations, each with messages both ways
    for _ in range(20):
        doctor = DoctorFactory()
        SessionFactory(doctor=doctor, patient=patient)
        conversation = client_for(patient).post("/api/v1/conversations/", {"user_id": str(doctor.pk)}).json()
        conversation = Conversation.objects.get(pk=conversation["id"])
        send(doctor, conversation, "Hi")
        send(patient, conversation, "Hello")
    client = client_for(patient)

    # when a page is listed: authentication, the count, the page, its members, its last messages,
    # the audit entry
    with django_assert_num_queries(6):
        response = client.get("/api/v1/conversations/", {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


def test_a_call_conversation_is_opened_by_a_participant_and_refused_to_others(group_call, patient, outsider):
    opened = client_for(patient).post("/api/v1/conversations/", {"call_id": str(group_call.pk)})
    outsider_asks = client_for(outsider).post("/api/v1/conversations/", {"call_id": str(group_call.pk)})

    assert opened.status_code == 201
    assert opened.json()["kind"] == "call"
    assert len(opened.json()["members"]) == 2  # the doctor and staff
    assert_error(outsider_asks, 404, "CALL_NOT_FOUND")


def test_a_call_with_chat_disabled_refuses_its_chat(group_call, patient_client):
    group_call.chat_enabled = False
    group_call.save(update_fields=["chat_enabled"])

    response = patient_client.post("/api/v1/conversations/", {"call_id": str(group_call.pk)})
    sent = patient_client.post("/api/v1/messages/", {"call_id": str(group_call.pk), "body": "Hello"})

    assert_error(response, 403, "CHAT_DISABLED")
    assert_error(sent, 403, "CHAT_DISABLED")


def test_a_chat_turned_off_after_it_started_refuses_further_messages(call_chat, group_call, patient_client):
    group_call.chat_enabled = False
    group_call.save(update_fields=["chat_enabled"])

    sent = patient_client.post("/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "Hello"})

    assert_error(sent, 403, "CHAT_DISABLED")


def test_a_patient_unrelated_to_a_doctor_cannot_reach_them_by_message(patient_client):
    stranger = PatientFactory()
    response = patient_client.post("/api/v1/messages/", {"user_id": str(stranger.pk), "body": "Hi"})

    assert_error(response, 404, "USER_NOT_FOUND")


def test_someone_removed_from_a_call_loses_its_chat_at_once(call_chat, group_call, staff, patient):
    """Before the next send brings the chat's members up to date, as well as after it."""
    message = send(staff, call_chat, "Before you were removed")
    client = client_for(patient)
    conversation_url = f"/api/v1/conversations/{call_chat.pk}/"
    assert client.get(conversation_url).status_code == 200

    group_call.participants.filter(user=patient).update(status="removed")

    assert call_chat.members.filter(user=patient).exists()  # no send since: still a member row
    assert_error(client.get(conversation_url), 404, "CONVERSATION_NOT_FOUND")
    assert_error(client.get(f"{conversation_url}messages/"), 404, "CONVERSATION_NOT_FOUND")
    assert_error(client.post(f"/api/v1/messages/{message.pk}/read/"), 404, "MESSAGE_NOT_FOUND")
    listed = [item["id"] for item in client.get("/api/v1/conversations/").json()["results"]]
    assert str(call_chat.pk) not in listed

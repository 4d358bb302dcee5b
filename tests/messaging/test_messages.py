"""Messages: sending (stored, then told), retries with a client key, private messages seen by
their two people only, receipts and read marks, catching up with ``after`` and ``since``, and
deleting one's own message within the window."""

import uuid
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import events as core_events
from messaging.models import Message, MessageReceipt, ReceiptStatus
from messaging.services.messages import message_send
from messaging.services.receipts import messages_mark_read
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.messaging.conftest import send
from tests.video_calls.call_helpers import EventRecorder
from tests.video_calls.factories import CallParticipantFactory
from video_calls.models import ParticipantRole

pytestmark = pytest.mark.django_db


def test_the_first_message_opens_the_conversation_and_is_stored_before_anyone_is_told(
    care, patient, doctor, patient_client, django_capture_on_commit_callbacks
):
    events = EventRecorder()
    events.listen_user(doctor)

    with mock.patch.object(core_events, "send_now", wraps=core_events.send_now) as told:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = patient_client.post("/api/v1/messages/", {"user_id": str(doctor.pk), "body": "Hello doctor"})
        # nobody is told while the transaction is open, and the message is stored when they are
        assert told.call_count == 0
        for callback in callbacks:
            callback()
        assert told.call_count == 1

    assert response.status_code == 201
    body = response.json()
    assert (body["body"], body["sender_id"], body["type"]) == ("Hello doctor", str(patient.pk), "text")
    assert body["receipts"] == [{"user_id": str(doctor.pk), "status": "sent", "delivered_at": None, "read_at": None}]
    assert Message.objects.filter(pk=body["id"]).exists()
    (event,) = events.for_user(doctor)
    assert event["type"] == "chat.message"
    assert event["data"] == body


def test_a_retry_with_the_same_client_key_stores_one_message(direct, patient, patient_client):
    message = {"conversation_id": str(direct.pk), "body": "Taking 20mg now", "client_message_id": "phone-1-0042"}

    first = patient_client.post("/api/v1/messages/", message)
    retry = patient_client.post("/api/v1/messages/", message)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    assert Message.objects.count() == 1


def test_a_send_is_a_fixed_handful_of_statements(direct, call_chat, patient, staff, django_assert_num_queries):
    # Each count also holds the send's SAVEPOINT and RELEASE (its transaction, inside the test's).
    # A direct conversation: the lock (which also reads the care relationship or contact and the
    # client key), the message, its receipt, the conversation's last activity; a client key costs
    # nothing more
    with django_assert_num_queries(4 + 2):
        message_send(sender=patient, conversation_id=direct.pk, body="x")
    with django_assert_num_queries(4 + 2):
        message_send(sender=patient, conversation_id=direct.pk, body="x", client_message_id="k")
    # a retry reads the stored message and its receipts, and writes nothing
    with django_assert_num_queries(3 + 2):
        message_send(sender=patient, conversation_id=direct.pk, body="x", client_message_id="k")
    # a call's chat also reads its participants next to its members; nothing more when nobody
    # joined or left
    with django_assert_num_queries(5 + 2):
        message_send(sender=staff, conversation_id=call_chat.pk, body="x", client_message_id="c")


def test_a_send_is_one_fan_out_to_its_audience(
    direct, call_chat, group_call, patient, doctor, staff, django_capture_on_commit_callbacks
):
    """One channel-layer operation per send (``group_send_many``), whatever the audience's size."""
    with mock.patch.object(core_events, "group_send_many", wraps=core_events.group_send_many) as fan_out:
        with django_capture_on_commit_callbacks(execute=True):
            message_send(sender=patient, conversation_id=direct.pk, body="x")
        with django_capture_on_commit_callbacks(execute=True):
            message_send(sender=staff, conversation_id=call_chat.pk, body="to everyone")

    direct_groups, call_groups = (call.args[1] for call in fan_out.call_args_list)
    assert fan_out.call_count == 2
    assert sorted(direct_groups) == sorted([f"user.{patient.pk}", f"user.{doctor.pk}"])
    members = group_call.participants.values_list("user_id", flat=True)
    assert sorted(call_groups) == sorted(f"user.{pk}" for pk in {staff.pk, *members})


def test_a_send_to_a_calls_chat_writes_the_members_only_when_someone_joined_or_left(
    call_chat, group_call, staff, outsider, patient, django_assert_num_queries
):
    # when someone joins the call: one more statement, adding them
    CallParticipantFactory(call=group_call, user=outsider, role=ParticipantRole.PATIENT, status="joined")
    with django_assert_num_queries(6 + 2):
        welcome = message_send(sender=staff, conversation_id=call_chat.pk, body="welcome").message
    assert call_chat.members.filter(user=outsider).exists()
    assert welcome.receipts.filter(recipient=outsider).exists()
    # when someone is removed: one more statement, removing them
    group_call.participants.filter(user=patient).update(status="removed")
    with django_assert_num_queries(6 + 2):
        bye = message_send(sender=staff, conversation_id=call_chat.pk, body="bye").message
    assert not call_chat.members.filter(user=patient).exists()
    assert not bye.receipts.filter(recipient=patient).exists()


def test_a_client_key_reused_in_another_conversation_is_a_conflict(direct, call_chat, patient_client):
    patient_client.post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "a", "client_message_id": "k"})

    reused = patient_client.post(
        "/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "b", "client_message_id": "k"}
    )

    assert_error(reused, 409, "CLIENT_MESSAGE_ID_REUSED")


def test_two_senders_may_use_the_same_client_key(direct, patient, doctor):
    send(patient, direct, "from the patient", client_message_id="1")
    send(doctor, direct, "from the doctor", client_message_id="1")

    assert Message.objects.count() == 2


def test_an_outsider_cannot_send_to_or_read_someone_elses_conversation(direct, patient, outsider_client):
    message = send(patient, direct, "private health matter")

    sent = outsider_client.post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "hi"})
    read = outsider_client.post(f"/api/v1/messages/{message.pk}/read/")
    deleted = outsider_client.delete(f"/api/v1/messages/{message.pk}/")

    assert_error(sent, 404, "CONVERSATION_NOT_FOUND")
    assert_error(read, 404, "MESSAGE_NOT_FOUND")
    assert_error(deleted, 404, "MESSAGE_NOT_FOUND")


def test_an_empty_or_too_long_body_and_an_attachment_type_are_refused(direct, patient_client, settings):
    settings.MESSAGE_MAX_CHARS = 10
    target = {"conversation_id": str(direct.pk)}

    assert_error(patient_client.post("/api/v1/messages/", {**target, "body": "   "}), 400, "VALIDATION_ERROR")
    assert_error(patient_client.post("/api/v1/messages/", {**target, "body": "x" * 11}), 400, "VALIDATION_ERROR")
    image = patient_client.post("/api/v1/messages/", {**target, "body": "x", "type": "image"})
    assert_error(image, 400, "VALIDATION_ERROR")
    both = patient_client.post("/api/v1/messages/", {**target, "user_id": str(uuid.uuid4()), "body": "x"})
    assert_error(both, 400, "VALIDATION_ERROR")


# --- Private messages in a call's chat -----------------------------------------------------------


def test_a_private_message_is_seen_by_its_two_people_only(
    call_chat, staff, doctor, patient, django_capture_on_commit_callbacks
):
    # given the staff member, the doctor and the patient in a call's chat, each listening
    events = EventRecorder()
    for user in (staff, doctor, patient):
        events.listen_user(user)

    # when staff sends the doctor a private message, then everyone a public one
    with django_capture_on_commit_callbacks(execute=True):
        private = client_for(staff).post(
            "/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "Aside", "recipient_id": str(doctor.pk)}
        )
        public = client_for(staff).post("/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "All"})
    assert private.status_code == public.status_code == 201
    assert (private.json()["is_private"], private.json()["recipient_id"]) == (True, str(doctor.pk))

    # then the patient never sees it: not in the list, the preview, the unread count or the events
    def listing(user):
        return [
            m["body"] for m in client_for(user).get(f"/api/v1/conversations/{call_chat.pk}/messages/").json()["results"]
        ]

    assert listing(patient) == ["All"]
    assert listing(doctor) == ["All", "Aside"]
    assert listing(staff) == ["All", "Aside"]
    patient_view = client_for(patient).get(f"/api/v1/conversations/{call_chat.pk}/").json()
    doctor_view = client_for(doctor).get(f"/api/v1/conversations/{call_chat.pk}/").json()
    assert (patient_view["unread_count"], doctor_view["unread_count"]) == (1, 2)
    assert [e["data"]["body"] for e in events.for_user(patient)] == ["All"]
    assert [e["data"]["body"] for e in events.for_user(doctor)] == ["Aside", "All"]
    # and asked for by id, it does not exist for the patient
    assert_error(client_for(patient).post(f"/api/v1/messages/{private.json()['id']}/read/"), 404, "MESSAGE_NOT_FOUND")


def test_a_private_message_must_go_to_another_member_of_a_calls_chat(call_chat, direct, staff, patient, outsider):
    to_outsider = client_for(staff).post(
        "/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "x", "recipient_id": str(outsider.pk)}
    )
    to_self = client_for(staff).post(
        "/api/v1/messages/", {"conversation_id": str(call_chat.pk), "body": "x", "recipient_id": str(staff.pk)}
    )
    in_direct = client_for(patient).post(
        "/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "x", "recipient_id": str(patient.pk)}
    )

    for response in (to_outsider, to_self, in_direct):
        assert_error(response, 400, "INVALID_RECIPIENT")


def test_a_participant_removed_from_the_call_leaves_its_chat(call_chat, group_call, patient, staff):
    group_call.participants.filter(user=patient).update(status="removed")

    send(staff, call_chat, "after the removal")  # a send brings the members up to date
    response = client_for(patient).get(f"/api/v1/conversations/{call_chat.pk}/messages/")

    assert_error(response, 404, "CONVERSATION_NOT_FOUND")
    assert not MessageReceipt.objects.filter(recipient=patient).exists()


# --- Receipts ------------------------------------------------------------------------------------


def test_marking_everything_up_to_a_message_read_changes_only_those_receipts_and_tells_the_sender(
    direct, patient, doctor, django_capture_on_commit_callbacks
):
    # given three messages from the doctor
    messages = [send(doctor, direct, f"note {n}") for n in range(3)]
    events = EventRecorder()
    events.listen_user(doctor)

    # when the patient reads up to the second
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(patient).post(
            f"/api/v1/conversations/{direct.pk}/read/", {"message_id": str(messages[1].pk)}
        )

    # then the first two are read, the third is not, and the doctor hears which ones
    assert response.status_code == 200
    assert response.json()["unread_count"] == 1
    assert sorted(response.json()["message_ids"]) == sorted(str(m.pk) for m in messages[:2])
    statuses = dict(MessageReceipt.objects.values_list("message_id", "status"))
    assert [statuses[m.pk] for m in messages] == [ReceiptStatus.READ, ReceiptStatus.READ, ReceiptStatus.SENT]
    assert all(r.delivered_at == r.read_at for r in MessageReceipt.objects.filter(status=ReceiptStatus.READ))
    (event,) = events.for_user(doctor)
    assert event["type"] == "chat.read"
    assert sorted(event["data"]["message_ids"]) == sorted(str(m.pk) for m in messages[:2])


def test_the_range_read_mark_is_one_statement_on_the_receipts(direct, patient, doctor):
    messages = [send(doctor, direct, f"note {n}") for n in range(30)]

    with CaptureQueriesContext(connection) as captured:
        result = messages_mark_read(user=patient, conversation_id=direct.pk, message_id=messages[-1].pk)

    # membership, the message, the changed receipts, one UPDATE of them all, the member's pointer, the count
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 6
    assert len(result.message_ids) == 30
    assert len([sql for sql in statements if sql.startswith('UPDATE "messaging_messagereceipt"')]) == 1


def test_delivered_then_read_gives_each_step_its_time(direct, patient, doctor):
    message = send(doctor, direct, "results")
    base = message.created_at

    with time_machine.travel(base + timedelta(seconds=5), tick=False):
        client_for(patient).post(f"/api/v1/conversations/{direct.pk}/delivered/", {"message_id": str(message.pk)})
    with time_machine.travel(base + timedelta(seconds=60), tick=False):
        client_for(patient).post(f"/api/v1/messages/{message.pk}/read/")

    receipt = MessageReceipt.objects.get(message=message)
    assert receipt.status == ReceiptStatus.READ
    assert (receipt.delivered_at - base, receipt.read_at - base) == (timedelta(seconds=5), timedelta(seconds=60))


def test_my_own_messages_are_never_unread_for_me(direct, patient):
    send(patient, direct, "mine")

    assert client_for(patient).get(f"/api/v1/conversations/{direct.pk}/").json()["unread_count"] == 0


# --- Listing and catching up ---------------------------------------------------------------------


def test_messages_list_newest_first_and_catch_up_oldest_first_after_a_message(direct, patient, doctor):
    messages = [send(doctor if n % 2 else patient, direct, f"m{n}") for n in range(6)]
    client = client_for(patient)
    url = f"/api/v1/conversations/{direct.pk}/messages/"

    history = client.get(url, {"page_size": 4}).json()
    caught_up = client.get(url, {"after": str(messages[2].pk), "page_size": 2}).json()
    rest = client.get(caught_up["next"]).json()

    assert [m["body"] for m in history["results"]] == ["m5", "m4", "m3", "m2"]
    assert history["count"] == 6
    assert [m["body"] for m in caught_up["results"] + rest["results"]] == ["m3", "m4", "m5"]


def test_since_gives_the_messages_sent_after_a_time(direct, patient, doctor):
    early = send(doctor, direct, "early")
    with time_machine.travel(early.created_at + timedelta(minutes=5), tick=False):
        send(doctor, direct, "late")

    response = client_for(patient).get(
        f"/api/v1/conversations/{direct.pk}/messages/",
        {"since": (early.created_at + timedelta(minutes=1)).isoformat()},
    )

    assert [m["body"] for m in response.json()["results"]] == ["late"]


def test_the_message_list_costs_the_same_queries_whatever_the_page_size(
    direct, patient, doctor, django_assert_num_queries
):
    for n in range(25):
        send(doctor, direct, f"m{n}")
    client = client_for(patient)

    for page_size in (1, 25):
        # authentication, the conversation, the count, the page, its receipts, the audit entry
        with django_assert_num_queries(6):
            client.get(f"/api/v1/conversations/{direct.pk}/messages/", {"page_size": page_size})


# --- Deleting ------------------------------------------------------------------------------------


def test_the_sender_deletes_their_message_within_the_window_and_a_tombstone_stays(
    direct, patient, doctor, settings, django_capture_on_commit_callbacks
):
    settings.MESSAGE_DELETE_WINDOW_SECONDS = 60
    message = send(patient, direct, "wrong chat, sorry")
    events = EventRecorder()
    events.listen_user(doctor)

    just_in_time = time_machine.travel(message.created_at + timedelta(seconds=59), tick=False)
    with just_in_time, django_capture_on_commit_callbacks(execute=True):
        response = client_for(patient).delete(f"/api/v1/messages/{message.pk}/")

    assert response.status_code == 204
    stored = Message.objects.get(pk=message.pk)
    assert (stored.body_encrypted, stored.key_id) == ("", "")
    listed = client_for(doctor).get(f"/api/v1/conversations/{direct.pk}/messages/").json()["results"]
    assert [(m["id"], m["body"], m["deleted_at"] is not None) for m in listed] == [(str(message.pk), None, True)]
    (event,) = events.for_user(doctor)
    assert (event["type"], event["data"]["message_id"]) == ("chat.deleted", str(message.pk))
    # and a deleted message no longer counts as unread
    assert client_for(doctor).get(f"/api/v1/conversations/{direct.pk}/").json()["unread_count"] == 0


def test_a_message_past_the_delete_window_stays(direct, patient, settings):
    settings.MESSAGE_DELETE_WINDOW_SECONDS = 60
    message = send(patient, direct, "too late to take back")

    with time_machine.travel(message.created_at + timedelta(seconds=61), tick=False):
        response = client_for(patient).delete(f"/api/v1/messages/{message.pk}/")

    assert_error(response, 409, "DELETE_WINDOW_PASSED")
    assert Message.objects.get(pk=message.pk).body_encrypted != ""


def test_only_the_sender_deletes_a_message(direct, patient, doctor):
    message = send(patient, direct, "mine")

    assert_error(client_for(doctor).delete(f"/api/v1/messages/{message.pk}/"), 403, "NOT_MESSAGE_SENDER")

"""Chat over the realtime socket: the same services, rules and limits as REST. A message is
stored before anyone hears of it and the sender's ack carries it; events reach the members only
(a private message its two people only); outsiders get the same not-found codes as over REST."""

import json

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message, MessageReceipt, ReceiptStatus
from messaging.services.conversations import conversation_call_open, conversation_direct_open
from tests.messaging.conftest import send
from tests.realtime.conftest import next_event, open_socket, receive, request

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def _direct(patient, doctor):
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    return conversation


@database_sync_to_async
def _call_chat(call, user):
    conversation, _ = conversation_call_open(user=user, call_id=call.pk)
    return conversation


async def _quiet(socket) -> bool:
    """Nothing but presence updates arrives for a moment."""
    while not await socket.receive_nothing(timeout=0.3):
        if (await receive(socket))["type"] != "presence.updated":
            return False
    return True


async def test_a_sent_message_is_acked_with_the_stored_message_and_reaches_the_other_member(
    care, patient, doctor, transport
):
    conversation = await _direct(patient, doctor)
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor)

    ack = await request(
        patient_socket,
        {
            "type": "chat.send",
            "id": "m1",
            "data": {"conversation_id": str(conversation.pk), "body": "Feeling better", "client_message_id": "c-1"},
        },
    )
    event = await next_event(doctor_socket)

    assert (ack["type"], ack["id"], ack["data"]["type"], ack["data"]["created"]) == ("ack", "m1", "chat.send", True)
    stored = await database_sync_to_async(Message.objects.get)(pk=ack["data"]["message"]["id"])
    assert ack["data"]["message"]["body"] == "Feeling better"
    assert event == {"type": "chat.message", "data": ack["data"]["message"]}
    assert stored.client_message_id == "c-1"
    # and the sender's other devices hear it too (this one, after its ack)
    assert (await next_event(patient_socket))["type"] == "chat.message"

    # when the same message is sent again (a reconnect), the stored one comes back, nothing new is sent
    again = await request(
        patient_socket,
        {
            "type": "chat.send",
            "data": {"conversation_id": str(conversation.pk), "body": "Feeling better", "client_message_id": "c-1"},
        },
    )
    assert (again["data"]["created"], again["data"]["message"]["id"]) == (False, str(stored.pk))
    assert await _quiet(doctor_socket)
    assert await database_sync_to_async(Message.objects.count)() == 1
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_the_first_message_to_someone_opens_the_conversation(care, patient, doctor):
    socket = await open_socket(patient)

    ack = await request(socket, {"type": "chat.send", "data": {"user_id": str(doctor.pk), "body": "Hi"}})

    assert ack["type"] == "ack"
    assert ack["data"]["message"]["conversation_id"]
    await socket.disconnect()


async def test_outsiders_get_the_same_not_found_codes_as_over_rest(care, patient, doctor, outsider):
    conversation = await _direct(patient, doctor)
    message = await database_sync_to_async(send)(doctor, conversation, "for the patient only")
    socket = await open_socket(outsider)

    sent = await request(socket, {"type": "chat.send", "data": {"conversation_id": str(conversation.pk), "body": "x"}})
    read = await request(
        socket, {"type": "chat.read", "data": {"conversation_id": str(conversation.pk), "message_id": str(message.pk)}}
    )
    typing = await request(socket, {"type": "chat.typing", "data": {"conversation_id": str(conversation.pk)}})
    to_a_stranger = await request(socket, {"type": "chat.send", "data": {"user_id": str(doctor.pk), "body": "x"}})

    assert [m["type"] for m in (sent, read, typing, to_a_stranger)] == ["error"] * 4
    assert [m["data"]["code"] for m in (sent, read, typing)] == ["CONVERSATION_NOT_FOUND"] * 3
    assert to_a_stranger["data"]["code"] == "USER_NOT_FOUND"
    await socket.disconnect()


async def test_a_private_message_reaches_its_two_people_only(group_call, staff, doctor, patient, transport):
    conversation = await _call_chat(group_call, staff)
    staff_socket, doctor_socket, patient_socket = [await open_socket(user) for user in (staff, doctor, patient)]

    ack = await request(
        staff_socket,
        {
            "type": "chat.send",
            "data": {"conversation_id": str(conversation.pk), "body": "Aside", "recipient_id": str(doctor.pk)},
        },
    )

    assert ack["type"] == "ack"
    assert (await next_event(doctor_socket))["data"]["body"] == "Aside"
    assert await _quiet(patient_socket)
    for socket in (staff_socket, doctor_socket, patient_socket):
        await socket.disconnect()


async def test_read_marks_reach_the_sender(care, patient, doctor):
    conversation = await _direct(patient, doctor)
    message = await database_sync_to_async(send)(doctor, conversation, "results attached")
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor)
    mark = {"conversation_id": str(conversation.pk), "message_id": str(message.pk)}

    delivered = await request(patient_socket, {"type": "chat.delivered", "data": mark})
    heard_delivered = await next_event(doctor_socket)
    own_devices_delivered = await next_event(patient_socket)  # the reader's devices hear it as well
    read = await request(patient_socket, {"type": "chat.read", "data": mark})
    heard_read = await next_event(doctor_socket)

    assert (delivered["data"]["message_ids"], read["data"]["unread_count"]) == ([str(message.pk)], 0)
    assert (heard_delivered["type"], heard_read["type"]) == ("chat.delivered", "chat.read")
    assert own_devices_delivered["type"] == "chat.delivered"
    assert heard_read["data"]["message_ids"] == [str(message.pk)]
    receipt = await database_sync_to_async(MessageReceipt.objects.get)(message=message)
    assert receipt.status == ReceiptStatus.READ
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_typing_reaches_the_other_members_and_is_rate_limited(care, patient, doctor, settings):
    settings.CHAT_TYPING_THROTTLE_RATE = "2/min"
    conversation = await _direct(patient, doctor)
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor)
    typing = {"type": "chat.typing", "id": "t", "data": {"conversation_id": str(conversation.pk)}}

    first = await request(patient_socket, typing)
    heard = await next_event(doctor_socket)
    await request(patient_socket, typing)
    refused = await request(patient_socket, typing)

    assert first["type"] == "ack"
    assert heard == {
        "type": "chat.typing",
        "data": {"conversation_id": str(conversation.pk), "user_id": str(patient.pk)},
    }
    assert (refused["type"], refused["data"]["code"]) == ("error", "RATE_LIMITED")
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_rest_and_socket_share_one_message_budget(care, patient, doctor, settings):
    from tests.conftest import client_for

    settings.MESSAGE_THROTTLE_RATE = "2/min"
    conversation = await _direct(patient, doctor)
    client = await database_sync_to_async(client_for)(patient)
    body = {"conversation_id": str(conversation.pk), "body": "hi"}
    for _ in range(2):
        response = await database_sync_to_async(client.post)("/api/v1/messages/", body, format="json")
        assert response.status_code == 201
    socket = await open_socket(patient)

    refused = await request(socket, {"type": "chat.send", "data": body})

    assert (refused["type"], refused["data"]["code"]) == ("error", "RATE_LIMITED")
    assert refused["data"]["details"]["retry_after"] > 0
    assert await database_sync_to_async(Message.objects.count)() == 2
    await socket.disconnect()


async def test_a_call_with_chat_disabled_refuses_chat_on_the_socket(group_call, staff):
    conversation = await _call_chat(group_call, staff)
    group_call.chat_enabled = False
    await database_sync_to_async(group_call.save)(update_fields=["chat_enabled"])
    socket = await open_socket(staff)

    sent = await request(socket, {"type": "chat.send", "data": {"conversation_id": str(conversation.pk), "body": "x"}})
    by_call = await request(socket, {"type": "chat.send", "data": {"call_id": str(group_call.pk), "body": "x"}})

    assert [sent["data"]["code"], by_call["data"]["code"]] == ["CHAT_DISABLED", "CHAT_DISABLED"]
    await socket.disconnect()


async def test_an_invalid_chat_message_is_a_validation_error(patient):
    socket = await open_socket(patient)

    refused = await request(socket, {"type": "chat.send", "data": {"body": "no target"}})

    assert (refused["type"], refused["data"]["code"]) == ("error", "VALIDATION_ERROR")
    assert json.dumps(refused)  # an ordinary error event; the connection stays open
    await socket.disconnect()

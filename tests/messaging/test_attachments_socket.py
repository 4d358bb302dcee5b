"""Attachments over the realtime socket: ``chat.send`` carries an upload as REST does, and
someone else's attachment is not found, as over REST."""

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message
from messaging.services.conversations import conversation_direct_open
from tests.messaging.attachment_support import PNG, upload
from tests.realtime.conftest import next_event, open_socket, request

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("attachment_root")]


@database_sync_to_async
def _direct_and_uploads(patient, doctor):
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    return conversation, upload(patient, PNG, "rash.png"), upload(doctor, PNG, "chart.png")


async def test_an_image_sent_over_the_socket_carries_its_attachment(care, patient, doctor):
    conversation, own, _ = await _direct_and_uploads(patient, doctor)
    patient_socket, doctor_socket = await open_socket(patient), await open_socket(doctor)

    ack = await request(
        patient_socket,
        {
            "type": "chat.send",
            "data": {"conversation_id": str(conversation.pk), "type": "image", "attachment_id": str(own.pk)},
        },
    )
    event = await next_event(doctor_socket)

    assert ack["type"] == "ack" and ack["data"]["message"]["attachment_id"] == str(own.pk)
    assert event == {"type": "chat.message", "data": ack["data"]["message"]}
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


async def test_someone_elses_attachment_is_not_found_over_the_socket(care, patient, doctor):
    conversation, _, others = await _direct_and_uploads(patient, doctor)
    socket = await open_socket(patient)

    refused = await request(
        socket,
        {
            "type": "chat.send",
            "data": {"conversation_id": str(conversation.pk), "type": "image", "attachment_id": str(others.pk)},
        },
    )

    assert (refused["type"], refused["data"]["code"]) == ("error", "ATTACHMENT_NOT_FOUND")
    assert await database_sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()

"""Fixtures of the messaging tests: a care relationship between the persona doctor and patient,
their direct conversation, and a group call's chat with the patient, the doctor and staff in it."""

import pytest
from django.db import connection

from messaging.models import Message
from messaging.services.conversations import conversation_call_open, conversation_direct_open
from messaging.services.messages import message_send
from tests.video_calls.factories import CallFactory, CallParticipantFactory, SessionFactory
from video_calls.models import CallKind, ParticipantRole, ParticipantStatus


@pytest.fixture
def care(doctor, patient):
    """A booked session: the doctor and the patient are in a care relationship."""
    return SessionFactory(doctor=doctor, patient=patient)


@pytest.fixture
def direct(care, doctor, patient):
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    return conversation


@pytest.fixture
def group_call(doctor, patient, staff):
    call = CallFactory(kind=CallKind.GROUP, initiated_by=staff, max_participants=8)
    for user, role in (
        (staff, ParticipantRole.STAFF),
        (doctor, ParticipantRole.DOCTOR),
        (patient, ParticipantRole.PATIENT),
    ):
        CallParticipantFactory(call=call, user=user, role=role, status=ParticipantStatus.JOINED)
    return call


@pytest.fixture
def call_chat(group_call, staff):
    conversation, _ = conversation_call_open(user=staff, call_id=group_call.pk)
    return conversation


@pytest.fixture
def attachment_root(settings, tmp_path):
    """Attachments of this test go to a directory of its own."""
    root = tmp_path / "attachments"
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


def send(sender, conversation, body: str = "Hello", **extra) -> Message:
    return message_send(sender=sender, conversation_id=conversation.pk, body=body, **extra).message


def raw_message_rows() -> list[tuple]:
    """Every stored message row as the database holds it, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM messaging_message")
        return [tuple(str(value) for value in row) for row in cursor.fetchall()]


# Socket tests here run consumers' database work in threads, as the realtime tests do: the same
# clean-up of those threads' connections at the end of the session.
# The ``transport`` fixture runs a socket test through Channels' communicator and again through
# uvicorn with the production protocol (``served``).
from tests.realtime.conftest import _database_threads_give_back_connections, served, transport  # noqa: E402, F401

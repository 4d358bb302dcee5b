"""Races on PostgreSQL, each side on its own thread and connection: one attachment sent twice at
once goes in one message; a message deleted while its file is being re-encrypted leaves no file."""

import pytest
from cryptography.fernet import Fernet

from messaging.models import Attachment, Message
from messaging.services import attachments as attachment_services
from messaging.services.conversations import conversation_direct_open
from messaging.services.messages import message_delete, message_send
from tests.factories import DoctorFactory, PatientFactory
from tests.messaging.attachment_support import PDF, stored_files, upload
from tests.messaging.test_concurrency import _run_together
from tests.video_calls.factories import SessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("attachment_root")]


def test_one_attachment_sent_twice_at_once_goes_in_one_message():
    doctor, patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=doctor, patient=patient)
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    attachment = upload(patient, PDF)

    def sending(n):
        return lambda: message_send(
            sender=patient, conversation_id=conversation.pk, body=f"copy {n}", type="file", attachment_id=attachment.pk
        )

    outcomes = _run_together([sending(n) for n in range(4)])

    assert Message.objects.filter(attachment=attachment).count() == 1
    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(refused) == 3
    assert {getattr(error, "code", None) for error in refused} == {"ATTACHMENT_ALREADY_SENT"}


def test_a_delete_racing_a_reencryption_leaves_no_file(settings, attachment_root):
    # given a sent file under the old key, and a new key put first
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MESSAGE_ENCRYPTION_KEYS = [old_key]
    doctor, patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=doctor, patient=patient)
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    attachment = upload(patient, PDF)
    message = message_send(
        sender=patient, conversation_id=conversation.pk, body="", type="file", attachment_id=attachment.pk
    ).message
    settings.MESSAGE_ENCRYPTION_KEYS = [new_key, old_key]

    # when the rotation and the message's delete run at once
    outcomes = _run_together(
        [
            lambda: attachment_services.attachments_reencrypt_batch(),
            lambda: message_delete(user=patient, message_id=message.pk),
        ]
    )

    # then whichever came first, the attachment is erased and no file is left, old or new
    assert [outcome for outcome in outcomes if isinstance(outcome, Exception)] == []
    assert Attachment.objects.get(pk=attachment.pk).is_deleted
    assert stored_files(attachment_root) == []

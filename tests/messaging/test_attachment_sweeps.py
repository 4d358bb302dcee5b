"""Withdrawing an unsent upload, and the sweeps of storage (messaging/services/sweeps.py):
private uploads never sent are erased after their retention, files no row points at after their
grace; nothing anyone may still read is touched."""

import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from messaging.models import Attachment, AttachmentAccess
from messaging.services import sweeps
from messaging.tasks import attachments_sweep
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.messaging.attachment_support import PNG, stored_files, upload
from tests.messaging.conftest import send

pytestmark = pytest.mark.django_db

UPLOADED_AT = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


def _url(attachment) -> str:
    return f"/api/v1/attachments/{attachment.pk}/"


def _uploaded(owner, **target) -> Attachment:
    with time_machine.travel(UPLOADED_AT, tick=False):
        return upload(owner, **target)


# --- Withdrawing an upload ----------------------------------------------------------------------


def test_the_uploader_withdraws_an_unsent_upload(patient, attachment_root, django_capture_on_commit_callbacks):
    attachment = upload(patient)
    client = client_for(patient)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(_url(attachment))

    assert response.status_code == 204
    assert stored_files(attachment_root) == []
    attachment.refresh_from_db()
    assert attachment.is_deleted and attachment.storage_name == "" and attachment.name_encrypted == ""
    assert_error(client.get(_url(attachment)), 404, "ATTACHMENT_NOT_FOUND")
    assert_error(client.delete(_url(attachment)), 404, "ATTACHMENT_NOT_FOUND")


def test_a_sent_attachment_goes_with_its_message_not_on_its_own(direct, patient, attachment_root):
    attachment = upload(patient, content=PNG, name="rash.png")
    send(patient, direct, type="image", attachment_id=attachment.pk)

    assert_error(client_for(patient).delete(_url(attachment)), 409, "ATTACHMENT_ALREADY_SENT")
    assert len(stored_files(attachment_root)) == 1


def test_a_reader_who_did_not_upload_it_may_not_delete_it(direct, patient, doctor, outsider, attachment_root):
    shared = upload(patient, access=AttachmentAccess.SHARED_CONVERSATION, conversation_id=direct.pk)

    assert_error(client_for(doctor).delete(_url(shared)), 403, "NOT_ATTACHMENT_OWNER")
    assert_error(client_for(outsider).delete(_url(shared)), 404, "ATTACHMENT_NOT_FOUND")
    assert not Attachment.objects.get(pk=shared.pk).is_deleted
    assert len(stored_files(attachment_root)) == 1


# --- Unsent uploads -----------------------------------------------------------------------------


def test_a_private_upload_never_sent_is_erased_after_its_retention(
    patient, attachment_root, settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENT_UNSENT_RETENTION_HOURS = 24
    attachment = _uploaded(patient)

    just_before = UPLOADED_AT + timedelta(hours=24) - timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.attachments_sweep_unsent(now=just_before) == 0
    assert len(stored_files(attachment_root)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.attachments_sweep_unsent(now=UPLOADED_AT + timedelta(hours=24, seconds=1)) == 1
    attachment.refresh_from_db()
    assert attachment.is_deleted
    assert stored_files(attachment_root) == []


def test_sent_and_shared_uploads_are_kept(direct, patient, attachment_root, django_capture_on_commit_callbacks):
    sent = _uploaded(patient, content=PNG, name="rash.png")
    send(patient, direct, type="image", attachment_id=sent.pk)
    shared = _uploaded(patient, access=AttachmentAccess.SHARED_CONVERSATION, conversation_id=direct.pk)

    with django_capture_on_commit_callbacks(execute=True):
        erased = sweeps.attachments_sweep_unsent(now=UPLOADED_AT + timedelta(days=30))

    assert erased == 0
    assert not Attachment.objects.filter(pk__in=[sent.pk, shared.pk], deleted_at__isnull=False).exists()
    assert len(stored_files(attachment_root)) == 2


def test_the_unsent_sweep_goes_in_batches(patient, attachment_root, django_capture_on_commit_callbacks):
    uploads = [_uploaded(patient) for _ in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        erased = sweeps.attachments_sweep_unsent(now=UPLOADED_AT + timedelta(days=2), batch_size=2)

    assert erased == 5
    assert Attachment.objects.filter(pk__in=[item.pk for item in uploads], deleted_at__isnull=True).count() == 0
    assert stored_files(attachment_root) == []


# --- Files no row points at ---------------------------------------------------------------------


def _age(path, at: datetime) -> None:
    os.utime(path, (at.timestamp(), at.timestamp()))


def test_a_file_without_its_row_is_deleted_after_the_grace(
    patient, attachment_root, settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENT_ORPHAN_GRACE_MINUTES = 60
    kept = upload(patient)
    orphan = upload(patient)
    orphan_path = attachment_root / orphan.storage_name
    Attachment.objects.filter(pk=orphan.pk).delete()  # as if the process died before the row committed
    written_at = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
    _age(orphan_path, written_at)
    _age(attachment_root / kept.storage_name, written_at)

    assert sweeps.attachment_files_sweep_orphans(now=written_at + timedelta(minutes=59)) == 0
    assert orphan_path.exists()

    assert sweeps.attachment_files_sweep_orphans(now=written_at + timedelta(minutes=61)) == 1
    assert not orphan_path.exists()
    assert stored_files(attachment_root) == [attachment_root / kept.storage_name]


def test_files_that_are_not_attachments_are_left_alone(patient, attachment_root):
    upload(patient)
    stranger = attachment_root / "ab" / "not-an-id" / "x.bin"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"x")
    _age(stranger, datetime(2000, 1, 1, tzinfo=UTC))

    assert sweeps.attachment_files_sweep_orphans(now=datetime(2031, 1, 1, tzinfo=UTC)) == 0
    assert stranger.exists()


@pytest.mark.django_db(transaction=True)  # each sweep's deletes run as its transactions commit
def test_the_periodic_task_runs_both_sweeps_and_is_scheduled(patient, attachment_root, settings):
    _uploaded(patient)
    left_behind = upload(patient)
    Attachment.objects.filter(pk=left_behind.pk).delete()

    with time_machine.travel(UPLOADED_AT + timedelta(days=2), tick=False):
        assert attachments_sweep() == {"unsent_erased": 1, "orphan_files_deleted": 1}
    assert stored_files(attachment_root) == []

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "messaging.tasks.attachments_sweep" in scheduled

"""Attachment files move to the newest key with the bodies (``manage.py reencrypt_messages``):
old and new files still read after the old key is removed; a run that stops resumes; a file
erased meanwhile stays erased; one under a removed key is refused clearly and left as it is."""

import io
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from messaging.encryption import key_id_of
from messaging.models import Attachment
from messaging.services import attachments as attachment_services
from messaging.services.attachments import attachment_erase, attachments_pending_reencryption
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.messaging.attachment_support import (
    PDF,
    PNG,
    downloaded,
    stored_files,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("attachment_root")]

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def download(user, attachment) -> bytes:
    response = client_for(user).get(f"/api/v1/attachments/{attachment.pk}/download/")
    assert response.status_code == 200, response.json()
    return downloaded(response)


def rotate(*args: str) -> str:
    report = io.StringIO()
    call_command("reencrypt_messages", *args, stdout=report)
    return report.getvalue()


def test_after_adding_a_key_and_rotating_old_and_new_files_still_download(
    settings, patient, attachment_root, django_capture_on_commit_callbacks
):
    # given files written under the old key
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    old = [upload(patient, PDF, f"old-{n}.pdf") for n in range(3)]
    old_files = {path: path.read_bytes() for path in stored_files(attachment_root)}

    # when a new key is put first, a file is written under it, and the command runs
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    new = upload(patient, PNG, "new.png")
    assert attachments_pending_reencryption().count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        report = rotate("--file-batch-size", "2")

    # then every file is under the new key, in new files (the old ones deleted), names too
    assert "3 re-encrypted" in report
    assert set(Attachment.objects.values_list("key_id", flat=True)) == {key_id_of(NEW_KEY)}
    files = stored_files(attachment_root)
    assert len(files) == 4 and not set(files) & set(old_files)
    # and with the old key removed, old and new files and names read
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY]
    assert [download(patient, attachment) for attachment in old] == [PDF] * 3
    assert download(patient, new) == PNG
    names = [client_for(patient).get(f"/api/v1/attachments/{a.pk}/").json()["name"] for a in old]
    assert names == ["old-0.pdf", "old-1.pdf", "old-2.pdf"]


def test_an_interrupted_rotation_resumes_and_loses_no_file(settings, patient, attachment_root):
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    attachments = [upload(patient, PDF, f"{n}.pdf") for n in range(3)]
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    # when a run is stopped (Ctrl-C) while it writes the second file
    real_rewrite = attachment_services.rewrite_under_newest_key
    calls = []

    def stopped_on_the_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rewrite(**kwargs)

    with mock.patch.object(attachment_services, "rewrite_under_newest_key", stopped_on_the_second):
        report = rotate("--file-batch-size", "1")

    # then one file moved, the rest still read under the old key, and nothing was lost
    assert "Interrupted" in report
    assert attachments_pending_reencryption().count() == 2
    assert [download(patient, attachment) for attachment in attachments] == [PDF] * 3

    # and the next run finishes the rest
    rotate("--file-batch-size", "1")
    assert attachments_pending_reencryption().count() == 0
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY]
    assert [download(patient, attachment) for attachment in attachments] == [PDF] * 3


def test_a_file_erased_while_it_is_rewritten_stays_erased(
    settings, patient, attachment_root, django_capture_on_commit_callbacks
):
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    attachment = upload(patient, PDF)
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    real_rewrite = attachment_services.rewrite_under_newest_key

    def erased_meanwhile(**kwargs):
        rewritten = real_rewrite(**kwargs)
        attachment_erase(attachment_id=attachment.pk)
        return rewritten

    erasing = mock.patch.object(attachment_services, "rewrite_under_newest_key", erased_meanwhile)
    with django_capture_on_commit_callbacks(execute=True), erasing:
        rotate()

    assert Attachment.objects.get(pk=attachment.pk).is_deleted
    assert stored_files(attachment_root) == []  # neither the old file nor its new copy


def test_a_file_under_a_removed_key_is_refused_clearly_and_left_as_it_is(settings, patient, attachment_root):
    # given a file written under the old key alone, which is then removed (no rotation)
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    attachment = upload(patient, PDF)
    [stored] = stored_files(attachment_root)
    before = stored.read_bytes()
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY]

    # then its download is refused with the one clear error, its metadata has no name
    assert_error(
        client_for(patient).get(f"/api/v1/attachments/{attachment.pk}/download/"), 500, "ATTACHMENT_UNREADABLE"
    )
    assert client_for(patient).get(f"/api/v1/attachments/{attachment.pk}/").json()["name"] is None

    # and the rotation reports it and leaves the file as it is
    assert "1 unreadable" in rotate()
    assert stored_files(attachment_root) == [stored] and stored.read_bytes() == before


def test_a_file_erased_after_the_batch_was_listed_is_skipped_not_reported(
    settings, patient, attachment_root, django_capture_on_commit_callbacks
):
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    attachment = upload(patient, PDF)
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    real_rewrite = attachment_services.rewrite_under_newest_key

    def erased_first(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            attachment_erase(attachment_id=attachment.pk)  # its file deleted before it is read
        return real_rewrite(**kwargs)

    with mock.patch.object(attachment_services, "rewrite_under_newest_key", erased_first):
        result = attachment_services.attachments_reencrypt_batch()

    assert (result.reencrypted, result.unreadable) == (0, 0)
    assert stored_files(attachment_root) == []

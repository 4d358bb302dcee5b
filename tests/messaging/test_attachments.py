"""Attachments: stored encrypted, typed from their bytes, named safely, readable by those the
access rules allow and 404 to everyone else, sent in messages and erased with them; an upload
that fails half-way leaves nothing behind."""

import uuid
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from messaging.attachment_files import MAGIC
from messaging.encryption import encrypt_body
from messaging.models import Attachment, AttachmentAccess, Message
from messaging.services.attachments import sanitized_name
from messaging.services.messages import message_delete
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.messaging.attachment_support import (
    ELF,
    GIF,
    HEIC,
    JPEG,
    M4A,
    MP3,
    OGG,
    PDF,
    PLAIN_MARKER,
    PNG,
    WAV,
    WEBM,
    WEBP,
    WINDOWS_EXE,
    downloaded,
    multipart,
    stored_files,
    upload,
)
from tests.messaging.conftest import send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("attachment_root")]

UPLOAD = "/api/v1/attachments/"


def metadata_url(attachment_id) -> str:
    return f"/api/v1/attachments/{attachment_id}/"


def download_url(attachment_id) -> str:
    return f"/api/v1/attachments/{attachment_id}/download/"


def raw_attachment_rows() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM messaging_attachment")
        return [" ".join(str(value) for value in row) for row in cursor.fetchall()]


# --- Stored encrypted -----------------------------------------------------------------------------


def test_an_upload_is_stored_encrypted_and_downloads_intact(patient, attachment_root, settings):
    settings.SECURE_CONTENT_TYPE_NOSNIFF = False  # the download says nosniff itself
    client = client_for(patient)

    created = client.post(UPLOAD, multipart(PDF, name="blood-pressure.pdf"), format="multipart")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["content_type"], body["size"], body["access"]) == (
        "blood-pressure.pdf",
        "application/pdf",
        len(PDF),
        "private",
    )
    # storage holds one file, with neither the content nor the name in it
    [stored] = stored_files(attachment_root)
    raw = stored.read_bytes()
    assert PLAIN_MARKER not in raw and b"%PDF" not in raw and b"blood-pressure" not in raw
    assert "blood-pressure" not in str(stored)
    # nor does the database row
    assert not [row for row in raw_attachment_rows() if "blood-pressure" in row]

    response = client.get(download_url(body["id"]))
    assert response.status_code == 200
    assert downloaded(response) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="blood-pressure.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Length"] == str(len(PDF))
    assert "no-store" in response["Cache-Control"]


def test_a_stored_file_that_was_altered_is_refused_not_served(patient, attachment_root):
    attachment = upload(patient)
    [stored] = stored_files(attachment_root)
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0x01
    stored.write_bytes(bytes(data))

    response = client_for(patient).get(download_url(attachment.pk))

    # the first chunk still opens: the damage is found when the stream reaches it, and it stops
    with pytest.raises(Exception) as refused:
        downloaded(response)
    assert getattr(refused.value, "code", None) == "ATTACHMENT_UNREADABLE"


def test_frames_of_another_attachment_are_refused(patient, attachment_root):
    first, second = upload(patient, PNG, "a.png"), upload(patient, PNG, "b.png")
    first_file, second_file = (attachment_root / first.storage_name), (attachment_root / second.storage_name)
    second_file.write_bytes(first_file.read_bytes())  # same key, other attachment's frames

    assert_error(client_for(patient).get(download_url(second.pk)), 500, "ATTACHMENT_UNREADABLE")


def test_a_message_token_put_in_a_file_does_not_pass_for_one_of_its_frames(patient, attachment_root):
    # given an attachment whose id happens to be all ASCII bytes, so text can spell it
    ascii_id = uuid.UUID(bytes=b"ASCII-ONLY-BYTES")
    with mock.patch("messaging.services.attachments.uuid.uuid4", return_value=ascii_id):
        attachment = upload(patient, PNG)
    # and a message body a user chose, under the same key, spelling that id, frame 0, the last one
    forged = encrypt_body(ascii_id.bytes.decode() + "\x00" * 8 + "\x01" + "forged content")[0].encode()
    (attachment_root / attachment.storage_name).write_bytes(MAGIC + len(forged).to_bytes(4, "big") + forged)

    # then it is not served as the file: a frame starts with a tag no text has
    assert_error(client_for(patient).get(download_url(attachment.pk)), 500, "ATTACHMENT_UNREADABLE")


def test_no_media_url_serves_the_stored_files(patient, attachment_root):
    attachment = upload(patient)
    client = client_for(patient)

    for path in (f"/media/{attachment.storage_name}", f"/attachments/{attachment.storage_name}"):
        assert client.get(path).status_code == 404
    assert attachment.storage_name not in client.get(metadata_url(attachment.pk)).content.decode()


# --- Type from the bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "declared"),
    [
        (ELF, "lab-results.pdf", "application/pdf"),
        (WINDOWS_EXE, "scan.pdf", "application/pdf"),
        (WINDOWS_EXE, "photo.jpg", "image/jpeg"),
        (b"#!/bin/sh\nrm -rf /\n", "note.pdf", "application/pdf"),
        (b"<html><script>alert(1)</script></html>", "image.png", "image/png"),
    ],
)
def test_a_file_not_of_an_allowed_type_is_refused_whatever_its_name_says(
    patient, attachment_root, content, name, declared
):
    response = client_for(patient).post(UPLOAD, multipart(content, name, declared), format="multipart")

    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/pdf" in error["details"]["allowed"]
    assert Attachment.objects.count() == 0
    assert stored_files(attachment_root) == []


@pytest.mark.parametrize(
    ("content", "detected", "extension"),
    [
        (JPEG, "image/jpeg", "jpg"),
        (PNG, "image/png", "png"),
        (GIF, "image/gif", "gif"),
        (WEBP, "image/webp", "webp"),
        (HEIC, "image/heic", "heic"),
        (PDF, "application/pdf", "pdf"),
        (OGG, "audio/ogg", "ogg"),
        (MP3, "audio/mpeg", "mp3"),
        (M4A, "audio/mp4", "m4a"),
        (WAV, "audio/wav", "wav"),
        (WEBM, "audio/webm", "webm"),
    ],
)
def test_allowed_types_are_detected_from_the_bytes(patient, content, detected, extension):
    # a name that says nothing, and a declared type that lies
    response = client_for(patient).post(
        UPLOAD, multipart(content, "upload", "application/octet-stream"), format="multipart"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == detected
    assert response.json()["name"] == f"upload.{extension}"


# --- Names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\windows\\system32\\report.pdf", "report.pdf"),
        ("/absolute/path/report.pdf", "report.pdf"),
        ("..", "attachment.pdf"),
        ("report\x00.exe.pdf", "report.exe.pdf"),
        ("bad\r\nX-Injected: yes\x07.pdf", "badX-Injected: yes.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe.pdf"),  # a right-to-left override dropped
        ("invoice.exe", "invoice.exe.pdf"),  # the name cannot promise another kind of file
        (".hidden.pdf", "hidden.pdf"),
        ("   spaced    out   .pdf", "spaced out.pdf"),
        ("", "attachment.pdf"),
        ("résumé ü.PDF", "résumé ü.PDF"),
    ],
)
def test_names_are_stored_safely(raw, stored):
    assert sanitized_name(raw, "pdf") == stored


def test_an_overlong_name_is_cut_keeping_its_extension():
    name = sanitized_name("x" * 5000 + ".pdf", "pdf")

    assert len(name) == 255 and name.endswith("x.pdf")


def test_a_hostile_name_is_stored_and_handed_back_safely(patient, attachment_root):
    attachment = upload(patient, PDF, "../../../etc/cron.d/\x00evil\x1b[31m\r\n.pdf")
    client = client_for(patient)

    assert client.get(metadata_url(attachment.pk)).json()["name"] == "evil[31m.pdf"
    disposition = client.get(download_url(attachment.pk))["Content-Disposition"]
    assert disposition == 'attachment; filename="evil[31m.pdf"'
    # the file went where storage put it, inside its root, under a name that is not the client's
    [stored] = stored_files(attachment_root)
    assert stored.resolve().is_relative_to(attachment_root.resolve())
    assert "evil" not in str(stored)


def test_a_name_with_quotes_and_non_ascii_is_encoded_in_the_header(patient):
    attachment = upload(patient, PDF, 'résultat "final".pdf')

    disposition = client_for(patient).get(download_url(attachment.pk))["Content-Disposition"]

    assert disposition == "attachment; filename*=utf-8''r%C3%A9sultat%20%22final%22.pdf"


# --- Who may read --------------------------------------------------------------------------------


def test_an_outsider_gets_404_for_metadata_and_download(patient, outsider):
    attachment = upload(patient)
    client = client_for(outsider)

    assert_error(client.get(metadata_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")
    assert_error(client.get(download_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")
    # the same answer as for an attachment that does not exist
    assert_error(client.get(download_url(uuid.uuid4())), 404, "ATTACHMENT_NOT_FOUND")


def test_a_call_participant_cannot_read_another_participants_private_attachment(call_chat, staff, doctor, patient):
    # given the doctor's private attachment, unsent, and another sent privately to the staff member
    unsent = upload(doctor, PNG, "unsent.png")
    aside = upload(doctor, PNG, "aside.png")
    send(doctor, call_chat, "", type="image", attachment_id=aside.pk, recipient_id=staff.pk)

    # then the patient, in the same call, reads neither
    for attachment in (unsent, aside):
        assert_error(client_for(patient).get(metadata_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")
        assert_error(client_for(patient).get(download_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")
    # and the staff member reads the one sent to them only
    assert client_for(staff).get(download_url(aside.pk)).status_code == 200
    assert_error(client_for(staff).get(download_url(unsent.pk)), 404, "ATTACHMENT_NOT_FOUND")


def test_a_shared_call_attachment_is_read_by_the_calls_participants_only(group_call, doctor, patient, outsider):
    attachment = upload(doctor, PDF, access=AttachmentAccess.SHARED_CALL, call_id=group_call.pk)

    assert downloaded(client_for(patient).get(download_url(attachment.pk))) == PDF
    assert_error(client_for(outsider).get(download_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")


def test_sharing_with_a_call_or_conversation_one_is_not_in_is_not_found(group_call, direct, outsider):
    client = client_for(outsider)

    in_call = client.post(UPLOAD, multipart(PDF, access="shared_call", call_id=str(group_call.pk)), format="multipart")
    in_conversation = client.post(
        UPLOAD, multipart(PDF, access="shared_conversation", conversation_id=str(direct.pk)), format="multipart"
    )

    assert_error(in_call, 404, "CALL_NOT_FOUND")
    assert_error(in_conversation, 404, "CONVERSATION_NOT_FOUND")
    assert Attachment.objects.count() == 0


def test_a_shared_conversation_attachment_is_read_by_its_members(direct, patient, doctor, outsider):
    attachment = upload(patient, PDF, access=AttachmentAccess.SHARED_CONVERSATION, conversation_id=direct.pk)

    assert client_for(doctor).get(metadata_url(attachment.pk)).json()["conversation_id"] == str(direct.pk)
    assert_error(client_for(outsider).get(metadata_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")


# --- In messages ------------------------------------------------------------------------------------


def test_an_image_message_carries_its_attachment_to_the_recipient(direct, patient, doctor):
    attachment = upload(patient, PNG, "rash.png")

    sent = client_for(patient).post(
        "/api/v1/messages/",
        {"conversation_id": str(direct.pk), "type": "image", "attachment_id": str(attachment.pk)},
    )

    assert sent.status_code == 201, sent.json()
    assert (sent.json()["attachment_id"], sent.json()["body"]) == (str(attachment.pk), "")
    shown = {"id": str(attachment.pk), "name": "rash.png", "content_type": "image/png", "size": len(PNG)}
    assert sent.json()["attachment"] == shown
    [listed] = client_for(doctor).get(f"/api/v1/conversations/{direct.pk}/messages/").json()["results"]
    assert listed["attachment"] == shown
    assert client_for(doctor).get(metadata_url(attachment.pk)).json()["message_id"] == sent.json()["id"]
    assert downloaded(client_for(doctor).get(download_url(attachment.pk))) == PNG


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        ({"type": "image"}, 400, "VALIDATION_ERROR"),  # no attachment_id
        ({"type": "text", "body": "x", "attachment_id": "own"}, 400, "VALIDATION_ERROR"),
        ({"type": "image", "attachment_id": "own"}, 400, "ATTACHMENT_MISMATCH"),  # a PDF is no image
        ({"type": "voice_note", "attachment_id": "own"}, 400, "ATTACHMENT_MISMATCH"),
        ({"type": "file", "attachment_id": "others"}, 404, "ATTACHMENT_NOT_FOUND"),
        ({"type": "file", "attachment_id": str(uuid.uuid4())}, 404, "ATTACHMENT_NOT_FOUND"),
    ],
)
def test_a_message_refuses_an_attachment_it_cannot_carry(direct, patient, doctor, message, status, code):
    ids = {"own": str(upload(patient, PDF).pk), "others": str(upload(doctor, PDF).pk)}
    message = {key: ids.get(value, value) for key, value in message.items()}

    response = client_for(patient).post("/api/v1/messages/", {"conversation_id": str(direct.pk), **message})

    assert_error(response, status, code)
    assert Message.objects.count() == 0


def test_an_attachment_goes_in_one_message_only(direct, patient):
    attachment = upload(patient, PDF)
    client = client_for(patient)
    message = {"conversation_id": str(direct.pk), "type": "file", "attachment_id": str(attachment.pk)}

    assert client.post("/api/v1/messages/", message).status_code == 201
    assert_error(client.post("/api/v1/messages/", message), 409, "ATTACHMENT_ALREADY_SENT")


def test_an_attachment_shared_with_one_conversation_is_not_sent_in_another(group_call, direct, call_chat, patient):
    attachment = upload(patient, PDF, access=AttachmentAccess.SHARED_CALL, call_id=group_call.pk)

    response = client_for(patient).post(
        "/api/v1/messages/", {"conversation_id": str(direct.pk), "type": "file", "attachment_id": str(attachment.pk)}
    )

    assert_error(response, 400, "ATTACHMENT_MISMATCH")


def test_deleting_a_message_erases_its_attachment(
    direct, patient, doctor, attachment_root, django_capture_on_commit_callbacks
):
    attachment = upload(patient, PDF, "scan.pdf")
    message = send(patient, direct, "", type="file", attachment_id=attachment.pk)

    with django_capture_on_commit_callbacks(execute=True):
        message_delete(user=patient, message_id=message.pk)

    # the file is gone, the row is a tombstone with nothing that says what the file was
    assert stored_files(attachment_root) == []
    tombstone = Attachment.objects.get(pk=attachment.pk)
    assert tombstone.deleted_at is not None
    assert (tombstone.name_encrypted, tombstone.storage_name, tombstone.key_id) == ("", "", "")
    for user in (patient, doctor):
        assert_error(client_for(user).get(download_url(attachment.pk)), 404, "ATTACHMENT_NOT_FOUND")


# --- Failures half-way -----------------------------------------------------------------------------


def test_an_upload_whose_row_cannot_be_written_leaves_no_file(patient, attachment_root):
    failing = mock.patch.object(Attachment.objects, "create", side_effect=RuntimeError("database went away"))
    with failing, pytest.raises(RuntimeError):
        upload(patient)

    assert Attachment.objects.count() == 0
    assert stored_files(attachment_root) == []


def test_an_upload_whose_file_write_stops_half_way_leaves_no_file_and_no_row(patient, attachment_root):
    real_save = FileSystemStorage._save

    def write_half_then_fail(storage, name, content):
        real_save(storage, name, type(content)(_Half(content), name=name))  # a partial file on disk
        raise OSError("No space left on device")

    with mock.patch.object(FileSystemStorage, "_save", write_half_then_fail):
        response = client_for(patient).post(UPLOAD, multipart(PDF), format="multipart")

    assert response.status_code == 500
    assert Attachment.objects.count() == 0
    assert stored_files(attachment_root) == []


class _Half:
    """The first half of a file."""

    def __init__(self, file) -> None:
        file.seek(0)
        data = file.read()
        self.data = data[: len(data) // 2]
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        out, self.offset = self.data[self.offset : end], min(end, len(self.data))
        return out


def test_the_admin_shows_metadata_and_never_the_name_the_storage_name_or_the_bytes(patient):
    attachment = upload(patient, PDF, "hiv-test-result.pdf")
    browser = Client()
    browser.force_login(StaffFactory(is_superuser=True))

    pages = [
        browser.get("/admin/messaging/attachment/"),
        browser.get(f"/admin/messaging/attachment/{attachment.pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "hiv-test-result" not in html
        assert attachment.storage_name not in html
        assert attachment.name_encrypted[:40] not in html
    assert "application/pdf" in pages[1].content.decode()
    refused = browser.post(f"/admin/messaging/attachment/{attachment.pk}/delete/", {"post": "yes"})
    assert refused.status_code == 403


def test_an_s3_bucket_setting_selects_the_django_storages_backend(monkeypatch):
    import importlib
    import importlib.util

    import config.settings.messaging as messaging_settings

    monkeypatch.setenv("ATTACHMENT_S3_BUCKET", "clinic-attachments")
    monkeypatch.setenv("ATTACHMENT_S3_ENDPOINT_URL", "https://s3.example.test")
    try:
        configured = importlib.reload(messaging_settings).ATTACHMENT_STORAGE_CONFIG
    finally:
        monkeypatch.delenv("ATTACHMENT_S3_BUCKET")
        importlib.reload(messaging_settings)

    backend_module, _, backend_class = configured["BACKEND"].rpartition(".")
    assert importlib.util.find_spec(backend_module) is not None  # the path is real (boto3 aside)
    assert backend_class == "S3Storage"
    assert configured["OPTIONS"]["bucket_name"] == "clinic-attachments"
    assert configured["OPTIONS"]["endpoint_url"] == "https://s3.example.test"
    assert (configured["OPTIONS"]["default_acl"], configured["OPTIONS"]["file_overwrite"]) == ("private", False)


def test_a_call_with_chat_turned_off_refuses_shared_files(group_call, doctor):
    group_call.chat_enabled = False
    group_call.save(update_fields=["chat_enabled"])

    response = client_for(doctor).post(
        UPLOAD, multipart(PDF, access="shared_call", call_id=str(group_call.pk)), format="multipart"
    )

    assert_error(response, 403, "CHAT_DISABLED")
    assert Attachment.objects.count() == 0


def test_a_page_of_attachment_messages_costs_the_same_queries_whatever_its_length(direct, patient, doctor):
    client = client_for(doctor)
    url = f"/api/v1/conversations/{direct.pk}/messages/"

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    send(patient, direct, type="image", attachment_id=upload(patient, PNG, "one.png").pk)
    one = queries_for_page()
    for index in range(3):
        send(patient, direct, type="image", attachment_id=upload(patient, PNG, f"{index}.png").pk)

    assert queries_for_page() == one


def test_a_deleted_message_shows_no_attachment(direct, patient, doctor, django_capture_on_commit_callbacks):
    attachment = upload(patient, PNG, "rash.png")
    message = send(patient, direct, type="image", attachment_id=attachment.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(patient).delete(f"/api/v1/messages/{message.pk}/").status_code in (200, 204)

    [listed] = client_for(doctor).get(f"/api/v1/conversations/{direct.pk}/messages/").json()["results"]
    assert (listed["attachment_id"], listed["attachment"]) == (str(attachment.pk), None)

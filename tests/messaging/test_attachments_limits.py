"""Attachment limits: a body over the upload route's own limit is refused with 413 before it is
read (declared length) or once past it (chunked), at the ASGI layer, while other routes keep
the global limit; a file over ATTACHMENT_MAX_BYTES is refused whatever the framing; uploads are
rate-limited per user."""

import tempfile
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from accounts.tokens import token_pair_for
from messaging.models import Attachment
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.core.test_body_limit import call, http_scope, status_and_body
from tests.messaging.attachment_support import (
    PDF,
    PNG,
    multipart,
    stored_files,
)

UPLOAD = "/api/v1/attachments/"
MB = 1024 * 1024
BOUNDARY = b"attachment-test-boundary"


def multipart_body(content: bytes, name: str = "scan.pdf") -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + content + b"\r\n--" + BOUNDARY + b"--\r\n"
    )


@pytest.fixture
def token(patient) -> bytes:
    """The patient's access token, made outside the event loop (it is written to the database)."""
    return token_pair_for(patient)["access"].encode()


def upload_scope(token: bytes, path: str = UPLOAD, headers: tuple = ()) -> dict:
    return http_scope(
        path,
        [(b"authorization", b"Bearer " + token), *headers],
        content_type=b"multipart/form-data; boundary=" + BOUNDARY,
    )


def pieces(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


# --- At the ASGI layer, before Django -------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("attachment_root")
async def test_a_declared_length_over_the_upload_limit_is_refused_unread(token):
    declared = str(11 * MB).encode()

    sent, read = await call(upload_scope(token, headers=((b"content-length", declared),)), [b"x" * MB] * 11)

    status, body = status_and_body(sent)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"]["limit"] == 10 * MB + 64 * 1024
    assert read == 0  # not one byte of the body was read


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("attachment_root")
async def test_a_chunked_upload_is_refused_once_past_the_upload_limit(token, settings):
    settings.ATTACHMENT_MAX_BYTES = 1 * MB
    settings.ATTACHMENT_MULTIPART_OVERHEAD_BYTES = 0

    sent, read = await call(upload_scope(token), [b"x" * 64 * 1024] * 176)  # 11 MB on offer

    status, body = status_and_body(sent)
    assert (status, body["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert read == 17  # the piece that crossed 1 MB is the last one read


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_other_routes_keep_the_global_limit(token):
    declared = str(2 * MB).encode()  # within the upload limit, over MAX_REQUEST_BYTES (1 MB)

    sent, read = await call(upload_scope(token, path="/api/v1/messages/", headers=((b"content-length", declared),)), [])

    status, body = status_and_body(sent)
    assert (status, body["error"]["details"]["limit"], read) == (413, MB, 0)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_chunked_upload_within_the_limit_is_stored_and_streams_back(token, attachment_root):
    content = PDF + b"1" * (3 * MB)  # past Django's default memory size of 2.5 MB
    chunks = pieces(multipart_body(content))

    spooled_to_disk = mock.patch.object(tempfile.SpooledTemporaryFile, "rollover")
    uploaded_to_disk = mock.patch.object(TemporaryFileUploadHandler, "new_file")
    with spooled_to_disk as to_disk, uploaded_to_disk as temporary_upload:
        sent, read = await call(upload_scope(token), chunks)
    # the plaintext never went to a temporary file on disk
    assert (to_disk.call_count, temporary_upload.call_count) == (0, 0)

    status, body = status_and_body(sent)
    assert status == 201, body
    assert (body["size"], read) == (len(content), len(chunks))
    assert len(stored_files(attachment_root)) == 1

    # the download, served by ASGI, streams the decrypted chunks
    scope = {**upload_scope(token, path=f"/api/v1/attachments/{body['id']}/download/"), "method": "GET"}
    sent, _ = await call(scope, [b""])
    start = next(message for message in sent if message["type"] == "http.response.start")
    parts = [message["body"] for message in sent if message["type"] == "http.response.body" and message.get("body")]
    assert start["status"] == 200
    assert b"".join(parts) == content
    assert len(parts) > 1  # streamed, not sent in one piece


# --- Through Django ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("attachment_root")
def test_an_11_mb_file_is_refused(patient, attachment_root):
    response = client_for(patient).post(UPLOAD, multipart(PDF + b"0" * (11 * MB)), format="multipart")

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit"] == 10 * MB + 64 * 1024
    assert Attachment.objects.count() == 0
    assert stored_files(attachment_root) == []


@pytest.mark.django_db
@pytest.mark.usefixtures("attachment_root")
def test_a_file_over_the_limit_within_the_framing_allowance_is_refused(patient, settings, attachment_root):
    settings.ATTACHMENT_MAX_BYTES = len(PNG) + 10

    response = client_for(patient).post(UPLOAD, multipart(PNG + b"0" * 20, "x.png", "image/png"), format="multipart")

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit"] == len(PNG) + 10
    assert stored_files(attachment_root) == []


@pytest.mark.django_db
@pytest.mark.usefixtures("attachment_root")
def test_a_file_of_exactly_the_limit_is_accepted(patient, settings):
    settings.ATTACHMENT_MAX_BYTES = len(PNG)

    response = client_for(patient).post(UPLOAD, multipart(PNG, "x.png", "image/png"), format="multipart")

    assert response.status_code == 201


@pytest.mark.django_db
@pytest.mark.usefixtures("attachment_root")
def test_a_json_body_is_not_an_upload(patient):
    response = client_for(patient).post(UPLOAD, {"file": "x"}, format="json")

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


# --- Rate limit --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("attachment_root")
def test_the_eleventh_upload_in_an_hour_is_refused_with_retry_after(patient, doctor):
    start = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)

    with time_machine.travel(start, tick=False) as clock:
        client = client_for(patient)  # its token issued at the travelled time
        statuses = []
        for _ in range(10):
            statuses.append(client.post(UPLOAD, multipart(PNG, "p.png", "image/png"), format="multipart").status_code)
            clock.shift(timedelta(minutes=1))
        refused = client.post(UPLOAD, multipart(PNG, "p.png", "image/png"), format="multipart")
        # another user has a budget of their own
        other = client_for(doctor).post(UPLOAD, multipart(PNG, "p.png", "image/png"), format="multipart")
        # an hour after the first upload, one more is allowed
        clock.move_to(start + timedelta(hours=1, seconds=1))
        again = client_for(patient).post(UPLOAD, multipart(PNG, "p.png", "image/png"), format="multipart")

    assert statuses == [201] * 10
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert int(refused["Retry-After"]) == error["details"]["retry_after"] == 50 * 60  # when the first leaves
    assert other.status_code == 201
    assert again.status_code == 201
    assert Attachment.objects.filter(owner=patient).count() == 11

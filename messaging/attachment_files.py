"""Attachment bytes at rest: encrypted in chunks with the message keys (messaging/encryption.py),
written and read through Django's storage API (``STORAGES["attachments"]``), never as plaintext.

A stored file is ``MAGIC`` followed by frames, each a 4-byte big-endian length and a Fernet token.
A token's plaintext is a 30-byte header (a tag no text has, the attachment's id, the frame's
index, a last-frame flag) and up to ``CHUNK_BYTES`` of the file. Fernet authenticates each token;
the header binds it to its attachment and its place, so frames swapped between files, reordered,
dropped or cut off at the end, and other tokens under the same keys, are refused
(``AttachmentUnreadable``) rather than served. Chunks let a download stream: one chunk is
decrypted at a time, never the whole file. Fernet's base64 makes a stored file about a third
larger than the original.
"""

import logging
import struct
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from typing import IO

from cryptography.fernet import InvalidToken
from django.core.files.base import File
from django.core.files.storage import Storage, storages

from core.exceptions import ApplicationError
from messaging.encryption import keyring

logger = logging.getLogger(__name__)

MAGIC = b"TLHATT1\n"
CHUNK_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")
# A frame's plaintext starts with a tag no UTF-8 text has (0xFF), so no other token under the
# same keys (a message body, a name) can pass for a frame; then the attachment id, the frame's
# index and the last-frame flag.
_FRAME_TAG = b"\xffTLHA"
_HEADER = struct.Struct(">5s16sQ?")


class AttachmentUnreadable(ApplicationError):
    """No configured key opens the file, or it was altered: it cannot be served."""

    code = "ATTACHMENT_UNREADABLE"
    status = 500
    default_message = "This attachment cannot be read: its key is gone or the stored file is damaged."


def attachment_storage() -> Storage:
    """The storage attachments go to: ``STORAGES["attachments"]`` (config/settings/messaging.py)."""
    return storages["attachments"]


def _plain_chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(CHUNK_BYTES):
        yield chunk


def _frames(attachment_id: uuid.UUID, chunks: Iterable[bytes], seal) -> Iterator[bytes]:
    """``MAGIC``, then one frame per chunk (an empty file has one empty last frame)."""
    yield MAGIC
    iterator = iter(chunks)
    current = next(iterator, b"")
    index = 0
    while True:
        following = next(iterator, None)
        token = seal(_HEADER.pack(_FRAME_TAG, attachment_id.bytes, index, following is None) + current)
        yield _LENGTH.pack(len(token)) + token
        if following is None:
            return
        current, index = following, index + 1


def _save(name: str, parts: Iterator[bytes]) -> str:
    """Write the (already encrypted) ``parts`` to storage at ``name``, through a spooled
    temporary file: every part is produced, and any error raised, before storage sees a byte,
    so a failure leaves nothing there; and every backend gets an ordinary seekable file."""
    from django.conf import settings

    with tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as spool:
        for part in parts:
            spool.write(part)
        spool.seek(0)
        storage = attachment_storage()
        try:
            return storage.save(name, File(spool, name=name))
        except BaseException:  # a write cut short (disk full, network, Ctrl-C) leaves no part
            try:
                storage.delete(name)
            except Exception:
                logger.exception("Could not delete the partly written file %s", name)
            raise


def write_encrypted(*, attachment_id: uuid.UUID, source: IO[bytes], name: str) -> tuple[str, str, int]:
    """Encrypt ``source`` under the newest key into storage at (about) ``name``; ``(storage name,
    key id, bytes of plaintext written)``. The plaintext is never written anywhere."""
    ring = keyring()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in _plain_chunks(source):
            size += len(chunk)
            yield chunk

    stored = _save(name, _frames(attachment_id, counted(), ring.fernet.encrypt))
    return stored, ring.current_key_id, size


def _tokens(stored: IO[bytes]) -> Iterator[bytes]:
    if stored.read(len(MAGIC)) != MAGIC:
        raise AttachmentUnreadable()
    while head := stored.read(_LENGTH.size):
        if len(head) != _LENGTH.size:
            raise AttachmentUnreadable()
        (length,) = _LENGTH.unpack(head)
        token = stored.read(length)
        if len(token) != length:
            raise AttachmentUnreadable()
        yield token


def _opened(attachment_id: uuid.UUID, tokens: Iterator[bytes], open_token) -> Iterator[tuple[bytes, bytes]]:
    """``(token, chunk)`` per frame, each checked to be this attachment's next one; the last must
    say it is the last."""
    last = False
    for expected, token in enumerate(tokens):
        if last:
            raise AttachmentUnreadable()
        try:
            plain = open_token(token)
        except InvalidToken:
            raise AttachmentUnreadable() from None
        if len(plain) < _HEADER.size:
            raise AttachmentUnreadable()
        tag, owner, index, last = _HEADER.unpack(plain[: _HEADER.size])
        if tag != _FRAME_TAG or owner != attachment_id.bytes or index != expected:
            raise AttachmentUnreadable()
        yield token, plain[_HEADER.size :]
    if not last:
        raise AttachmentUnreadable()


def read_decrypted(*, attachment_id: uuid.UUID, storage_name: str) -> Iterator[bytes]:
    """The file's plaintext, a chunk at a time. The stored file is opened on the first chunk
    asked for and closed when the iterator ends or is closed."""
    ring = keyring()
    with attachment_storage().open(storage_name, "rb") as stored:
        for _, chunk in _opened(attachment_id, _tokens(stored), ring.fernet.decrypt):
            if chunk:
                yield chunk


def rewrite_under_newest_key(*, attachment_id: uuid.UUID, storage_name: str, name: str) -> tuple[str, str]:
    """A new stored file holding the same frames re-encrypted under the newest key (Fernet
    ``rotate``: no plaintext leaves this function); ``(new storage name, key id)``. The old file
    is left for the caller to delete once the row points at the new one."""
    ring = keyring()

    def rotated() -> Iterator[bytes]:
        with attachment_storage().open(storage_name, "rb") as stored:
            yield MAGIC
            for token, _ in _opened(attachment_id, _tokens(stored), ring.fernet.decrypt):
                new_token = ring.fernet.rotate(token)
                yield _LENGTH.pack(len(new_token)) + new_token

    return _save(name, rotated()), ring.current_key_id


def delete_stored(storage_name: str) -> None:
    if storage_name:
        attachment_storage().delete(storage_name)

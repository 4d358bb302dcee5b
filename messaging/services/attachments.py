"""Attachments: uploading one, sending it in a message, erasing it with its message, and moving
files to the newest key.

An upload is checked before anything is written (size, the type detected from the bytes against
``ALLOWED_TYPES``, the conversation or call it is shared with), then written encrypted to
storage, then its row created. The file is written first and removed if the row is not
committed, so a failure at any step leaves neither a row nor a file.
"""

import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

import filetype
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import ApplicationError, Conflict, InvalidInput
from messaging.attachment_files import (
    AttachmentUnreadable,
    delete_stored,
    rewrite_under_newest_key,
    write_encrypted,
)
from messaging.encryption import BodyUnreadable, decrypt_body, encrypt_body, keyring, reencrypt_body
from messaging.models import Attachment, AttachmentAccess, Conversation, Message, MessageType
from messaging.selectors import AttachmentNotFound, attachment_get_for_user, conversation_member_get
from messaging.services.conversations import ensure_call_chat
from video_calls.selectors.calls import call_get_for_user

logger = logging.getLogger(__name__)

# Detected type -> (the type the file is served as, its extension). Anything else is refused.
ALLOWED_TYPES: dict[str, tuple[str, str]] = {
    "image/jpeg": ("image/jpeg", "jpg"),
    "image/png": ("image/png", "png"),
    "image/gif": ("image/gif", "gif"),
    "image/webp": ("image/webp", "webp"),
    "image/heic": ("image/heic", "heic"),
    "application/pdf": ("application/pdf", "pdf"),
    "audio/ogg": ("audio/ogg", "ogg"),
    "audio/mpeg": ("audio/mpeg", "mp3"),
    "audio/mp4": ("audio/mp4", "m4a"),
    "audio/x-wav": ("audio/wav", "wav"),
    # Browsers record voice notes as WebM; the container does not say audio or video.
    "video/webm": ("audio/webm", "webm"),
}
# Which served types each kind of message may carry (a "file" carries any allowed one).
MESSAGE_TYPE_CONTENT: dict[str, tuple[str, ...]] = {
    MessageType.IMAGE: ("image/",),
    MessageType.VOICE_NOTE: ("audio/",),
    MessageType.FILE: ("",),
}
ATTACHMENT_MESSAGE_TYPES = tuple(MESSAGE_TYPE_CONTENT)
# Extensions a name may already end in for a detected type (else the type's own is added).
_EXTENSIONS_OF = {"jpg": ("jpg", "jpeg"), "heic": ("heic", "heif")}
NAME_MAX_CHARS = 255
_SNIFF_BYTES = 8192


class AttachmentTooLarge(ApplicationError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    default_message = "The file is larger than the attachment limit."


class AttachmentTypeNotAllowed(ApplicationError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    default_message = "Only images (JPEG, PNG, GIF, WebP, HEIC), PDF and audio (Ogg, MP3, M4A, WAV, WebM) are accepted."


class AttachmentAlreadySent(Conflict):
    code = "ATTACHMENT_ALREADY_SENT"
    default_message = "This attachment is already in a message."


class AttachmentNotForMessage(InvalidInput):
    code = "ATTACHMENT_MISMATCH"
    default_message = "This attachment cannot be sent in this message."


# --- Checks -------------------------------------------------------------------------------------


def detected_type(head: bytes) -> tuple[str, str]:
    """``(served content type, extension)`` of a file from its first bytes, or 415. The client's
    name and declared type play no part."""
    kind = filetype.guess(head)
    allowed = ALLOWED_TYPES.get(kind.mime) if kind is not None else None
    if allowed is None:
        raise AttachmentTypeNotAllowed(details={"allowed": sorted({served for served, _ in ALLOWED_TYPES.values()})})
    return allowed


def sanitized_name(raw: str | None, extension: str) -> str:
    """A file name safe to store and to hand back in ``Content-Disposition``.

    1. Only the last path component is kept (``/`` and ``\\`` both separate), so ``../`` and
       absolute paths name nothing outside the file itself.
    2. Control, format (bidirectional overrides), surrogate and unassigned characters, NUL
       among them, are dropped; whitespace runs become one space; leading dots (hidden files,
       ``..``) and surrounding spaces are stripped.
    3. The name ends in the extension of the detected type (``invoice.exe`` holding a PDF
       becomes ``invoice.exe.pdf``), so the name never promises another kind of file.
    4. At most ``NAME_MAX_CHARS`` characters, cut from the stem so the extension stays.
    """
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = " ".join(name.split()).lstrip(".").strip()
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() not in _EXTENSIONS_OF.get(extension, (extension,)):
        stem, suffix = name, extension
    stem = stem.rstrip(". ") or "attachment"
    return f"{stem[: NAME_MAX_CHARS - len(suffix) - 1]}.{suffix}"


def _check_target(*, owner: User, access: str, conversation_id, call_id) -> dict:
    """The row's conversation or call for ``access``, after checking that ``owner`` may share
    with it: someone else's conversation or call is not found; a call whose chat is off, or that
    ``owner`` is not a chat participant of, refuses it as it refuses chat (403)."""
    if access == AttachmentAccess.SHARED_CONVERSATION:
        if conversation_id is None or call_id is not None:
            raise InvalidInput("A shared_conversation attachment names its conversation_id only.")
        return {"conversation": conversation_member_get(user=owner, conversation_id=conversation_id).conversation}
    if access == AttachmentAccess.SHARED_CALL:
        if call_id is None or conversation_id is not None:
            raise InvalidInput("A shared_call attachment names its call_id only.")
        call = call_get_for_user(user=owner, call_id=call_id)
        ensure_call_chat(call=call, user=owner)  # sharing with a call is chat: off, or not in it, refused
        return {"call": call}
    if conversation_id is not None or call_id is not None:
        raise InvalidInput("A private attachment names no conversation_id or call_id.")
    return {}


# --- Upload -------------------------------------------------------------------------------------


def attachment_upload(
    *, owner: User, file, access: str = AttachmentAccess.PRIVATE, conversation_id=None, call_id=None
) -> Attachment:
    """Store an uploaded file (a Django ``UploadedFile``) encrypted and return its row.

    1. Refuse a file over ``ATTACHMENT_MAX_BYTES`` (413) or of a type not allowed (415), and a
       target ``owner`` may not share with (404).
    2. Write the file encrypted under a fresh storage name (attachment_files.write_encrypted).
    3. Create the row in a transaction of its own (durable: never inside a caller's, whose
       rollback would leave the file behind). If anything fails after step 2, the file is
       deleted before the error goes on.
    """
    if file.size > settings.ATTACHMENT_MAX_BYTES:
        raise AttachmentTooLarge(details={"limit": settings.ATTACHMENT_MAX_BYTES})
    file.seek(0)
    content_type, extension = detected_type(file.read(_SNIFF_BYTES))
    file.seek(0)
    target = _check_target(owner=owner, access=access, conversation_id=conversation_id, call_id=call_id)
    name = sanitized_name(getattr(file, "name", None), extension)
    attachment_id = uuid.uuid4()
    storage_name, key_id, size = write_encrypted(
        attachment_id=attachment_id, source=file, name=_storage_name_for(attachment_id)
    )
    try:
        name_token, _ = encrypt_body(name)
        with transaction.atomic(durable=True):
            return Attachment.objects.create(
                id=attachment_id,
                owner=owner,
                access=access,
                name_encrypted=name_token,
                content_type=content_type,
                size=size,  # the bytes encrypted, not what the parser said
                storage_name=storage_name,
                key_id=key_id,
                **target,
            )
    except BaseException:
        _delete_quietly(storage_name)
        raise


def _storage_name_for(attachment_id: uuid.UUID) -> str:
    """A storage name that says nothing about the file: the id and a random part, so every
    write (upload, re-encryption) has a name of its own."""
    return f"{attachment_id.hex[:2]}/{attachment_id}/{uuid.uuid4().hex}.bin"


def _delete_quietly(storage_name: str) -> None:
    try:
        delete_stored(storage_name)
    except Exception:  # the original error matters more; the orphan is logged
        logger.exception("Could not delete the stored file %s", storage_name)


# --- Sending and erasing ------------------------------------------------------------------------


def attachment_for_message(
    *, sender: User, attachment_id, conversation: Conversation, message_type: str
) -> Attachment | None:
    """The attachment a message of ``message_type`` in ``conversation`` carries: none for a text
    message; for an image, file or voice note, the sender's own, locked until commit, not yet in
    a message, of a type the message may carry and, if shared, shared with this conversation (or
    its call). Two sends racing with one attachment: the message's one-to-one constraint lets
    one in, the other is answered 409."""
    if message_type not in ATTACHMENT_MESSAGE_TYPES:
        if attachment_id is not None:
            raise AttachmentNotForMessage(f"A {message_type} message carries no attachment.")
        return None
    if attachment_id is None:
        raise AttachmentNotForMessage(f"A {message_type} message needs an attachment_id.")
    attachment = (
        Attachment.objects.select_for_update().filter(pk=attachment_id, owner=sender, deleted_at__isnull=True).first()
    )
    if attachment is None:
        raise AttachmentNotFound()
    if Message.objects.filter(attachment=attachment).exists():
        raise AttachmentAlreadySent()
    if not attachment.content_type.startswith(MESSAGE_TYPE_CONTENT.get(message_type, ("-",))):
        raise AttachmentNotForMessage(f"A {message_type} message cannot carry a {attachment.content_type} file.")
    if attachment.access == AttachmentAccess.SHARED_CONVERSATION and attachment.conversation_id != conversation.pk:
        raise AttachmentNotForMessage("This attachment is shared with another conversation.")
    if attachment.access == AttachmentAccess.SHARED_CALL and attachment.call_id != conversation.call_id:
        raise AttachmentNotForMessage("This attachment is shared with another call.")
    return attachment


def attachment_erase(*, attachment_id, now: datetime | None = None) -> bool:
    """Tombstone an attachment (its name, storage name and key cleared, ``deleted_at`` set) and
    delete its file once that commits; False if it was already erased. Called inside the
    transaction that deletes its message. The row is locked first, so a re-encryption that
    moves the file meanwhile cannot leave its new copy behind."""
    row = (
        Attachment.objects.select_for_update()
        .filter(pk=attachment_id, deleted_at__isnull=True)
        .values_list("storage_name", flat=True)
        .first()
    )
    if row is None:
        return False
    Attachment.objects.filter(pk=attachment_id).update(
        deleted_at=now or timezone.now(), name_encrypted="", storage_name="", key_id=""
    )
    transaction.on_commit(lambda: delete_stored(row), robust=True)
    return True


class NotAttachmentOwner(ApplicationError):
    code = "NOT_ATTACHMENT_OWNER"
    status = 403
    default_message = "Only the uploader can delete an attachment."


@transaction.atomic
def attachment_delete_unsent(*, user: User, attachment_id, now: datetime | None = None) -> None:
    """The uploader withdraws an upload that no message carries: erased as a deleted message's
    attachment is (``attachment_erase``). One in a message goes with its message
    (services.messages ``message_delete``): 409 ``ATTACHMENT_ALREADY_SENT``. Someone who may read
    it but did not upload it: 403; anyone else: 404, as for every other read."""
    attachment = attachment_get_for_user(user=user, attachment_id=attachment_id)
    if attachment.owner_id != user.pk:
        raise NotAttachmentOwner()
    locked = Attachment.objects.select_for_update().filter(pk=attachment.pk, deleted_at__isnull=True).exists()
    if locked and Message.objects.filter(attachment_id=attachment.pk).exists():
        raise AttachmentAlreadySent("This attachment is in a message: delete the message instead.")
    attachment_erase(attachment_id=attachment.pk, now=now)


# --- Key rotation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileBatchResult:
    last_pk: object | None  # None: nothing was left after ``after``
    reencrypted: int
    unreadable: int


def attachments_pending_reencryption():
    """Stored attachments under another key than the newest."""
    return Attachment.objects.filter(deleted_at__isnull=True).exclude(key_id=keyring().current_key_id)


def attachments_reencrypt_batch(*, after=None, batch_size: int = 20) -> FileBatchResult:
    """Move the next ``batch_size`` files (by primary key, after ``after``) to the newest key.

    Each file is rewritten to a new storage name, then its row switched to it by a conditional
    update (still the file and key read, not deleted) in a transaction of its own, and the old
    file deleted after that commits. A file erased meanwhile keeps its erasure: the new copy is
    deleted instead. A stop at any point leaves every row pointing at a complete file under a
    configured key; the next run goes on with what is still under an old one.
    """
    pending = attachments_pending_reencryption().order_by("pk")
    if after is not None:
        pending = pending.filter(pk__gt=after)
    rows = list(pending.values_list("pk", "storage_name", "name_encrypted", "key_id")[:batch_size])
    if not rows:
        return FileBatchResult(last_pk=None, reencrypted=0, unreadable=0)
    reencrypted = unreadable = 0
    for pk, storage_name, name_token, key_id in rows:
        try:
            new_name_token, _ = reencrypt_body(name_token)
            new_storage_name, new_key_id = rewrite_under_newest_key(
                attachment_id=pk, storage_name=storage_name, name=_storage_name_for(pk)
            )
        except (AttachmentUnreadable, BodyUnreadable, FileNotFoundError):
            if not Attachment.objects.filter(pk=pk, storage_name=storage_name, deleted_at__isnull=True).exists():
                continue  # erased (or moved by another run) since it was listed: nothing to do
            unreadable += 1
            logger.error("Attachment %s is under key %s, which is not configured: left as it is", pk, key_id or "?")
            continue
        try:
            with transaction.atomic():
                moved = Attachment.objects.filter(
                    pk=pk, storage_name=storage_name, key_id=key_id, deleted_at__isnull=True
                ).update(storage_name=new_storage_name, key_id=new_key_id, name_encrypted=new_name_token)
                obsolete = storage_name if moved else new_storage_name
                transaction.on_commit(lambda obsolete=obsolete: delete_stored(obsolete), robust=True)
        except BaseException:
            _delete_quietly(new_storage_name)
            raise
        reencrypted += moved
    return FileBatchResult(last_pk=rows[-1][0], reencrypted=reencrypted, unreadable=unreadable)


def attachment_name(attachment: Attachment) -> str | None:
    """The original (sanitized) name, decrypted; None for an erased attachment or one whose key
    is gone."""
    if not attachment.name_encrypted:
        return None
    try:
        return decrypt_body(attachment.name_encrypted)
    except BodyUnreadable:
        logger.error("Attachment %s is under key %s, which is not configured", attachment.pk, attachment.key_id)
        return None

"""Avatars: checked, re-encoded, stored outside any public URL, served through the API only.

An upload is refused over ``AVATAR_MAX_BYTES`` (413) or when its bytes (not its name or
declared type) are not JPEG, PNG or WebP (415). It is then decoded by Pillow and encoded
afresh: turned upright by its EXIF orientation, scaled to at most ``AVATAR_MAX_SIDE_PIXELS`` a
side, written without any of the original's metadata (EXIF with its GPS position and camera,
XMP, ICC, text chunks). What is stored is only pixels we encoded, so a file crafted to exploit
a decoder, or carrying a script, is never handed to anyone. Opaque images become JPEG, others
PNG.

Storage is ``STORAGES["avatars"]`` (config/settings/base.py), under a name that changes with
every upload; the user's ``avatar`` field holds it. The file is written before the row is
updated and removed if the row is not, and the replaced file is removed once the new name is
committed, the way messaging/services/attachments.py handles attachment files.
"""

import io
import logging
import uuid

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import User
from core.exceptions import ApplicationError, InvalidInput

logger = logging.getLogger(__name__)

ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/webp")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
# A decoded image larger than this is refused before its pixels are read (a small file can
# declare an enormous image: a decompression bomb).
MAX_SOURCE_PIXELS = 40_000_000
_SNIFF_BYTES = 8192


class AvatarTooLarge(ApplicationError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    default_message = "The image is larger than the avatar limit."


class AvatarTypeNotAllowed(ApplicationError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    default_message = "An avatar is a JPEG, PNG or WebP image."


class AvatarUnreadable(InvalidInput):
    code = "INVALID_IMAGE"
    default_message = "The image could not be read, or has too many pixels."


def avatar_storage() -> Storage:
    return storages["avatars"]


def avatar_content_type(storage_name: str) -> str:
    return CONTENT_TYPES[storage_name.rsplit(".", 1)[-1]]


def reencoded(file) -> tuple[bytes, str]:
    """``(bytes, extension)`` of ``file`` checked and encoded afresh without metadata."""
    if file.size > settings.AVATAR_MAX_BYTES:
        raise AvatarTooLarge(details={"limit": settings.AVATAR_MAX_BYTES})
    file.seek(0)
    kind = filetype.guess(file.read(_SNIFF_BYTES))
    if kind is None or kind.mime not in ACCEPTED_TYPES:
        raise AvatarTypeNotAllowed(details={"allowed": list(ACCEPTED_TYPES)})
    file.seek(0)
    try:
        with Image.open(file, formats=["JPEG", "PNG", "WEBP"]) as source:
            width, height = source.size
            if width * height > MAX_SOURCE_PIXELS:
                raise AvatarUnreadable(details={"max_pixels": MAX_SOURCE_PIXELS})
            source.seek(0)  # an animated image keeps its first frame
            image = ImageOps.exif_transpose(source)  # upright, before the EXIF goes
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise AvatarUnreadable() from None
    image.thumbnail((settings.AVATAR_MAX_SIDE_PIXELS, settings.AVATAR_MAX_SIDE_PIXELS))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    # A fresh image of the pixels alone: nothing of the original's info (EXIF, XMP, ICC, text)
    # can ride along into the encoder.
    clean = Image.frombytes(*_pixels(image.convert("RGBA" if has_alpha else "RGB")))
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        return out.getvalue(), "png"
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue(), "jpg"


def _pixels(image: Image.Image) -> tuple[str, tuple[int, int], bytes]:
    return image.mode, image.size, image.tobytes()


def _storage_name(user: User, extension: str) -> str:
    """A name of its own per upload, so a cached copy under an old name is never another image."""
    return f"{user.pk.hex[:2]}/{user.pk}/{uuid.uuid4().hex}.{extension}"


def avatar_set(*, user: User, file) -> User:
    """Replace the user's avatar with ``file`` (an ``UploadedFile``), checked and re-encoded."""
    content, extension = reencoded(file)
    storage = avatar_storage()
    name = storage.save(_storage_name(user, extension), ContentFile(content))
    try:
        with transaction.atomic(durable=True):
            previous = User.objects.select_for_update().values_list("avatar", flat=True).get(pk=user.pk)
            User.objects.filter(pk=user.pk).update(avatar=name)
            if previous:
                transaction.on_commit(lambda: _delete_quietly(previous))
    except BaseException:
        _delete_quietly(name)
        raise
    user.avatar = name
    return user


@transaction.atomic
def avatar_remove(*, user: User) -> User:
    """Remove the user's avatar (nothing to remove is not an error)."""
    previous = User.objects.select_for_update().values_list("avatar", flat=True).get(pk=user.pk)
    if previous:
        User.objects.filter(pk=user.pk).update(avatar="")
        transaction.on_commit(lambda: _delete_quietly(previous))
    user.avatar = ""
    return user


def avatar_read(storage_name: str) -> bytes:
    """The stored bytes (an avatar is small: at most ``AVATAR_MAX_SIDE_PIXELS`` a side)."""
    with avatar_storage().open(storage_name, "rb") as stored:
        return stored.read()


def _delete_quietly(storage_name: str) -> None:
    try:
        avatar_storage().delete(storage_name)
    except Exception:  # the row is right; an orphan file is logged, not fatal
        logger.exception("Could not delete the stored avatar %s", storage_name)

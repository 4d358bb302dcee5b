"""Encryption at rest of message bodies: Fernet (AES-128-CBC with HMAC-SHA256) under keys from
``MESSAGE_ENCRYPTION_KEYS``, newest first (``MultiFernet``).

Each stored body carries the id of the key it was written with (``key_id``: a short digest of
the key, never the key), so ``manage.py reencrypt_messages`` finds the bodies still under an
older key without decrypting anything. Without configured keys, development and tests derive one
from ``SECRET_KEY`` and log a warning; production settings refuse to start instead.
"""

import base64
import functools
import hashlib
import logging
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class BodyUnreadable(ApplicationError):
    """No configured key opens the body: its key was removed before the body was re-encrypted,
    or the stored token was altered. The body cannot be shown; nothing else is affected."""

    code = "MESSAGE_UNREADABLE"
    status = 500
    default_message = "This message was encrypted with a key the server no longer has."


@dataclass(frozen=True)
class Keyring:
    fernet: MultiFernet
    key_ids: tuple[str, ...]  # newest first

    @property
    def current_key_id(self) -> str:
        return self.key_ids[0]


def key_id_of(key: str | bytes) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"message-key-id:" + raw).hexdigest()[:16]


def _derived_key(secret_key: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(b"message-encryption:" + secret_key.encode()).digest()).decode()


@functools.cache
def _keyring(keys: tuple[str, ...], secret_key: str, allow_derived: bool) -> Keyring:
    if not keys:
        if not allow_derived:
            raise ImproperlyConfigured("MESSAGE_ENCRYPTION_KEYS is not set: message bodies cannot be encrypted.")
        logger.warning(
            "MESSAGE_ENCRYPTION_KEYS is not set: message bodies are encrypted with a key derived from "
            "SECRET_KEY. Fine for development; production requires MESSAGE_ENCRYPTION_KEYS."
        )
        keys = (_derived_key(secret_key),)
    try:
        fernets = [Fernet(key) for key in keys]
    except ValueError:
        raise ImproperlyConfigured("MESSAGE_ENCRYPTION_KEYS holds a value that is not a Fernet key.") from None
    return Keyring(fernet=MultiFernet(fernets), key_ids=tuple(key_id_of(key) for key in keys))


def keyring() -> Keyring:
    """The configured keys, built once per distinct configuration (tests change it)."""
    return _keyring(
        tuple(key.strip() for key in settings.MESSAGE_ENCRYPTION_KEYS if key.strip()),
        settings.SECRET_KEY,
        settings.MESSAGE_ENCRYPTION_ALLOW_DERIVED_KEY,
    )


def encrypt_body(plaintext: str) -> tuple[str, str]:
    """``(token, key_id)`` for a body, under the newest key."""
    ring = keyring()
    return ring.fernet.encrypt(plaintext.encode()).decode(), ring.current_key_id


def decrypt_body(token: str) -> str:
    try:
        return keyring().fernet.decrypt(token.encode()).decode()
    except InvalidToken:
        raise BodyUnreadable() from None


def reencrypt_body(token: str) -> tuple[str, str]:
    """The same body under the newest key (its original timestamp kept), and that key's id."""
    ring = keyring()
    try:
        return ring.fernet.rotate(token.encode()).decode(), ring.current_key_id
    except InvalidToken:
        raise BodyUnreadable() from None

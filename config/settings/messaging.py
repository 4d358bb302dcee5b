"""Messaging: encryption keys of message bodies, limits and rate limits (docs/messaging.md)."""

from config.settings.env import env

# Fernet keys (urlsafe base64 of 32 bytes), newest first: bodies are written with the first and
# read with any of them, so a new key is put in front and the old ones kept until
# ``manage.py reencrypt_messages`` has moved every body to the new one. Unset in development and
# tests, a key is derived from SECRET_KEY (and a warning logged); production refuses to start.
MESSAGE_ENCRYPTION_KEYS = env.list("MESSAGE_ENCRYPTION_KEYS", default=[])
MESSAGE_ENCRYPTION_ALLOW_DERIVED_KEY = True
# The longest body a message may have, in characters.
MESSAGE_MAX_CHARS = env.int("MESSAGE_MAX_CHARS", default=5000)
# A sender may delete their own message for this long after sending it.
MESSAGE_DELETE_WINDOW_SECONDS = env.int("MESSAGE_DELETE_WINDOW_SECONDS", default=60 * 60)
# Messages a user may send (REST and socket counted together), and typing notices per user.
MESSAGE_THROTTLE_RATE = env.str("MESSAGE_THROTTLE_RATE", default="30/min")
CHAT_TYPING_THROTTLE_RATE = env.str("CHAT_TYPING_THROTTLE_RATE", default="20/min")

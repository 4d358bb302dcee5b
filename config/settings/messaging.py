"""Messaging: encryption keys of message bodies, limits and rate limits (docs/messaging.md)."""

from pathlib import Path

from config.settings.env import BASE_DIR, env

_VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

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

# --- Attachments (docs/messaging.md, "Attachments") ---
# The largest file an upload may carry; the upload route's request body may be this plus
# ATTACHMENT_MULTIPART_OVERHEAD_BYTES (the multipart framing and the other fields), and larger
# bodies are refused before they are read (core/asgi.py).
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ATTACHMENT_MULTIPART_OVERHEAD_BYTES = env.int("ATTACHMENT_MULTIPART_OVERHEAD_BYTES", default=64 * 1024)
# An upload's plaintext is held in memory until it is encrypted, never spooled to a temporary file
# on disk: the ASGI body limit's spool, Django's ASGI body and its multipart parser (the memory
# upload handler) all keep up to this much in memory, and no other route's body is larger.
FILE_UPLOAD_MAX_MEMORY_SIZE = ATTACHMENT_MAX_BYTES + ATTACHMENT_MULTIPART_OVERHEAD_BYTES
# Uploads a user may make.
ATTACHMENT_UPLOAD_THROTTLE_RATE = env.str("ATTACHMENT_UPLOAD_THROTTLE_RATE", default="10/hour")
# A private upload never sent in a message is erased after this long; a stored file no
# attachment points at (a process killed mid-upload) is deleted once it is this old. The sweep
# runs every ATTACHMENT_SWEEP_SECONDS (messaging/services/sweeps.py).
ATTACHMENT_UNSENT_RETENTION_HOURS = env.int("ATTACHMENT_UNSENT_RETENTION_HOURS", default=24)
ATTACHMENT_ORPHAN_GRACE_MINUTES = env.int("ATTACHMENT_ORPHAN_GRACE_MINUTES", default=60)
ATTACHMENT_SWEEP_SECONDS = env.int("ATTACHMENT_SWEEP_SECONDS", default=60 * 60)
MESSAGING_BEAT_SCHEDULE: dict = {
    "attachments-sweep": {"task": "messaging.tasks.attachments_sweep", "schedule": float(ATTACHMENT_SWEEP_SECONDS)},
}
# Where the encrypted files go: STORAGES["attachments"] (config/settings/base.py). Local files
# under ATTACHMENT_ROOT unless ATTACHMENT_S3_BUCKET names an S3-compatible bucket (django-storages,
# which needs boto3 installed); never served by URL either way, only by the download endpoint.
ATTACHMENT_S3_BUCKET = env.str("ATTACHMENT_S3_BUCKET", default="")
if ATTACHMENT_S3_BUCKET:
    ATTACHMENT_STORAGE_CONFIG = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ATTACHMENT_S3_BUCKET,
            "endpoint_url": env.str("ATTACHMENT_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("ATTACHMENT_S3_REGION", default="") or None,
            "access_key": env.str("ATTACHMENT_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("ATTACHMENT_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("ATTACHMENT_S3_PREFIX", default="attachments"),
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    ATTACHMENT_STORAGE_CONFIG = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.str("ATTACHMENT_ROOT", default=str(_VAR_DIR / "attachments")),
            "directory_permissions_mode": 0o700,
            "file_permissions_mode": 0o600,
        },
    }

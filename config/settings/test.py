"""Test settings: the same code paths as production, with the embedded defaults unless
``DATABASE_URL`` / ``REDIS_URL`` point at real services (CI's second run).

As the suite gets a ``test_...`` copy of the PostgreSQL database, it gets a Redis database of
its own on the ``REDIS_URL`` server: ``REDIS_TEST_DB`` (default 15), which it flushes. A
developer's Redis data in the database ``REDIS_URL`` names is left alone.
"""

import os
import tempfile
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from config.settings.env import env


def _test_redis_url(url: str, database: int) -> str:
    """``url`` with its database replaced: the path of redis:// and rediss://, ``?db=`` of unix://."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        address, _, query = url.partition("?")
        return f"{address}?{urlencode({**dict(parse_qsl(query)), 'db': database})}"
    return urlunsplit(parts._replace(path=f"/{database}"))


if env.str("REDIS_URL", default=""):
    # Before the settings below read it: the cache, the channel layer and Celery all follow.
    os.environ["REDIS_URL"] = _test_redis_url(env.str("REDIS_URL"), env.int("REDIS_TEST_DB", default=15))

# Metrics of this run only, not those of `make run` or an earlier run (core/metrics.py); server
# processes a test starts inherit the variable, so one scrape sums them with this process.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="telehealth-metrics-"))

from config.settings.base import *  # noqa: E402, F403

DEBUG = False
# Transactional tests flush between tests: the audit table's TRUNCATE refusal is lifted for that.
AUDIT_FLUSH_ALLOWED = True
SECRET_KEY = "test-only-secret-key-with-enough-length-and-variety-0123456789abcdef"
if not env.str("DATABASE_URL", default=""):
    DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "accounts.sms.LocmemSmsBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
if not env.str("REDIS_URL", default=""):
    # In-process tests (one event loop, one process) keep the in-memory layer: a fresh one per
    # test, no state carried between tests, no server. The embedded Redis layer of ``make run``
    # is tested with real processes (tests/realtime/test_embedded_layer.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Tasks run in-process when queued (on commit), through the same task functions a worker runs.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
TEST_RUNNER = "config.test_runner.PytestTestRunner"
# Argon2 is deliberately slow; every sign-in and password change in the suite would pay for it.
# Production keeps Argon2 first (base.py), which tests/accounts/test_password_hashing.py checks
# with the production list in force.
PRODUCTION_PASSWORD_HASHERS = PASSWORD_HASHERS  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]
STATIC_ROOT = None  # static files come from the app folders (WhiteNoise finders)
WHITENOISE_USE_FINDERS = True
DEMO_CLIENT_ENABLED = True  # the reference client at /demo/, which tests/e2e drives
# Limits every endpoint or every call applies are out of the way of the rest of the suite; the
# tests of a limit set its rate themselves (tests/core/test_rate_limits.py). The auth and
# messaging limits keep their defaults: their tests count to them.
_UNLIMITED = "100000/min"
USER_THROTTLE_RATE = env.str("USER_THROTTLE_RATE", default=_UNLIMITED)
ANON_THROTTLE_RATE = env.str("ANON_THROTTLE_RATE", default=_UNLIMITED)
VIDEO_CALL_THROTTLE_RATE = env.str("VIDEO_CALL_THROTTLE_RATE", default=_UNLIMITED)
CALL_INITIATE_THROTTLE_RATE = env.str("CALL_INITIATE_THROTTLE_RATE", default=_UNLIMITED)
REALTIME_TICKET_THROTTLE_RATE = env.str("REALTIME_TICKET_THROTTLE_RATE", default=_UNLIMITED)
REALTIME_CONNECT_THROTTLE_RATE = env.str("REALTIME_CONNECT_THROTTLE_RATE", default=_UNLIMITED)

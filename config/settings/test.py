"""Test settings: the same code paths as production, with the embedded defaults unless
``DATABASE_URL`` / ``REDIS_URL`` point at real services (CI's second run)."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env

DEBUG = False
SECRET_KEY = "test-only-secret-key-with-enough-length-and-variety-0123456789abcdef"
if not env.str("DATABASE_URL", default=""):
    DATABASES["default"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "accounts.sms.LocmemSmsBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Tasks run in-process when queued (on commit), through the same task functions a worker runs.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
TEST_RUNNER = "config.test_runner.PytestTestRunner"
STATIC_ROOT = None  # static files come from the app folders (WhiteNoise finders)
WHITENOISE_USE_FINDERS = True

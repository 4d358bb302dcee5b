"""Development settings: the embedded defaults, debug on, a throwaway secret key."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-never-use-in-production-0123456789")
WHITENOISE_USE_FINDERS = True
# Readable columns in `make run`; LOG_FORMAT=json shows what production writes.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOGGING["formatters"]["structured"]["log_format"] = LOG_FORMAT  # noqa: F405
STATIC_ROOT = None  # static files come from the app folders (WhiteNoise finders)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
DEMO_CLIENT_ENABLED = env.bool("DEMO_CLIENT_ENABLED", default=True)  # the reference client at /demo/

"""Settings shared by every environment.

Everything that differs between a laptop and a clinic's servers comes from the environment
(see docs/settings.md); the defaults here are the embedded ones: SQLite, an embedded Redis channel
layer (config/embedded_redis.py), a local-memory cache and a filesystem Celery broker.
"""

import os
from datetime import timedelta
from pathlib import Path

from config.settings.env import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=False)

# Secrets have no default here: dev and test set a throwaway one, prod requires it.
SECRET_KEY = env.str("SECRET_KEY", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Runtime files of the embedded setup (SQLite database, Celery broker folders, beat schedule).
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "daphne",
    "staff.apps.StaffAdminConfig",  # django.contrib.admin with the clinic's site (staff/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "accounts",
    "sessions.apps.ConsultationsConfig",
    "video_calls",
    "messaging",
    "presence",
    "realtime",
    "pgtrigger",
    "audit",
    "staff",
    "demo",  # the reference web client at /demo/, served only when DEMO_CLIENT_ENABLED
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Counts and times every answer, the probes' and refusals' too (core/metrics.py).
    "core.metrics.RequestMetricsMiddleware",
    # Before anything validates the Host: probes name the pod by IP (core/middleware.py).
    "core.middleware.HealthProbeHostMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "staff.middleware.AdminTimeZoneMiddleware",  # admin pages in the staff member's zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on the admin's pages (the API docs pages set their own).
    "core.middleware.AdminContentSecurityPolicyMiddleware",
    # X-RateLimit-* on every answer a throttle counted (core/ratelimit.py).
    "core.ratelimit.RateLimitHeadersMiddleware",
    # Last: it calls the view itself, in the transaction its audit entry joins (audit/middleware.py).
    "audit.middleware.AuditMiddleware",
]

# JSON bodies above this size are refused with 413 PAYLOAD_TOO_LARGE.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)
# JSON bodies nested deeper than this (arrays and objects) are refused with 400 MALFORMED_REQUEST.
MAX_JSON_DEPTH = env.int("MAX_JSON_DEPTH", default=32)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One connection pool per process, shared by its threads. Under ASGI requests run on as many
    # threads as are in flight (core/asgi.py), so persistent connections (CONN_MAX_AGE) would
    # pile up, one per thread, until PostgreSQL refuses new clients; a pool hands them back.
    # Both waits are short: with the server down, a request answers 503 SERVICE_UNAVAILABLE
    # after the pool timeout instead of holding its client (core/outages.py). The pool timeout
    # is also the back-pressure under a surge: a connection is held for milliseconds, so 2 s of
    # waiting covers hundreds of requests queued ahead; a pool still full after that is overload,
    # and a fast 503 with Retry-After (the client backs off, docs/realtime.md) beats a request
    # that waits 10 s or more and then fails. A socket's handshake waits no longer than this
    # either (core/outages.py ``started_within``). MAX_WAITING (0: no limit) refuses at once
    # past that many requests queued for the pool.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=2.0),
        "max_waiting": env.int("DATABASE_POOL_MAX_WAITING", default=0),
    }
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2))
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers queue instead of failing: WAL lets readers go on beside the one writer;
    # IMMEDIATE takes the write lock when a transaction opens, so two transactions that read
    # and then write cannot deadlock (SQLite would fail one at once, "database is locked");
    # and a writer waits up to the busy timeout for the lock. A lock still held after that is
    # 503 SERVICE_UNAVAILABLE (core/outages.py).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=5.0),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# /api/health/ready answers 503 when a dependency has not answered within this.
READINESS_TIMEOUT_SECONDS = env.float("READINESS_TIMEOUT_SECONDS", default=1.0)
# Bearer tokens that open /api/health/info and /api/health/metrics to a machine (staff need none).
# Empty: staff only.
HEALTH_INFO_TOKEN = env.str("HEALTH_INFO_TOKEN", default="")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Where every process of this deployment (web servers, Celery workers) writes its metrics, so one
# scrape reports their sum (prometheus-client's multiprocess mode, core/metrics.py). Set before
# prometheus_client is imported: it picks its storage once, at import.
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# A dependency that is down (database, Redis, broker) answers 503 with this Retry-After.
SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            # Django's Redis cache with one shared pool and client per process (core/redis_pool.py).
            "BACKEND": "core.redis_pool.SharedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "telehealth",
            "OPTIONS": {
                # Unreachable Redis answers 503 SERVICE_UNAVAILABLE within these, not after the OS's.
                "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=1.0),
                "socket_timeout": env.float("REDIS_SOCKET_TIMEOUT", default=2.0),
                # The pool's bounds: one pool per process, shared by every request thread.
                "max_connections": env.int("REDIS_CACHE_MAX_CONNECTIONS", default=32),
                "timeout": env.float("REDIS_CACHE_POOL_TIMEOUT", default=5.0),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrPhoneBackend"]

# Argon2 first: new and upgraded passwords use it; the others only verify old hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.CharacterClassValidator"},
]
# Password-reset and email-verification links expire after this many seconds.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The clinic's name on the admin (site header and title), and the zone its days and weeks are
# counted in (the staff dashboard's "today", analytics periods; docs/settings.md).
CLINIC_NAME = env.str("CLINIC_NAME", default="Telehealth Clinic")
CLINIC_TIME_ZONE = env.str("CLINIC_TIME_ZONE", default="UTC")

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Email and SMS --------------------------------------------------------------------------
# SMTP from EMAIL_URL (smtp+tls:// STARTTLS, smtp+ssl:// implicit TLS), or a provider's HTTP API
# through django-anymail: EMAIL_BACKEND=anymail.backends.<provider>.EmailBackend, with its
# options as ANYMAIL_<PROVIDER>_<OPTION> variables (ANYMAIL_POSTMARK_SERVER_TOKEN=...).
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_CONFIG["EMAIL_BACKEND"])
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in env.ENVIRON.items() if name.startswith("ANYMAIL_")}
# Django's SMTP backend waits forever by default; a hung server would hold a worker.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Telehealth <no-reply@localhost>")
SMS_BACKEND = env.str("SMS_BACKEND", default="accounts.sms.ConsoleSmsBackend")
# accounts.sms.TwilioSmsBackend: the sender is a number or, if set, a messaging service.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_REGION = env.str("TWILIO_REGION", default="")
TWILIO_EDGE = env.str("TWILIO_EDGE", default="")
# Replaces https://api.twilio.com (a local fake in tests); prod accepts only https here.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)
# Links in emails point at the React client, which calls the API with the token.
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:3000")
PHONE_CODE_TTL_SECONDS = env.int("PHONE_CODE_TTL_SECONDS", default=10 * 60)
PHONE_CODE_MAX_ATTEMPTS = env.int("PHONE_CODE_MAX_ATTEMPTS", default=5)
# Sign-in needs a verified email or phone number (401 ACCOUNT_NOT_VERIFIED otherwise).
LOGIN_REQUIRES_VERIFIED_CONTACT = env.bool("LOGIN_REQUIRES_VERIFIED_CONTACT", default=True)
# Avatars (accounts/avatars.py): the largest upload accepted, and the longest side kept after
# re-encoding. Stored in STORAGES["avatars"], outside MEDIA_ROOT: served only through the API.
AVATAR_MAX_BYTES = env.int("AVATAR_MAX_BYTES", default=2 * 1024 * 1024)
AVATAR_MAX_SIDE_PIXELS = env.int("AVATAR_MAX_SIDE_PIXELS", default=512)
AVATAR_ROOT = env.str("AVATAR_ROOT", default=str(VAR_DIR / "avatars"))

# --- CORS for the React client ----------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=["http://localhost:3000"])
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
# Browsers always send Origin on a WebSocket handshake; native clients must send one of these too.
# By default the server's own origin is allowed, at the host and port it serves (HOST and PORT, as
# `make run` and config/serve.py read them): the API docs page opens the socket from there.
_SERVED_PORT = env.int("PORT", default=8000)
_SERVED_HOST = env.str("HOST", default="127.0.0.1")
_SERVED_HOSTS = ["localhost", "127.0.0.1"]  # a wildcard bind (0.0.0.0, ::) is reached through these too
if _SERVED_HOST not in ("", "0.0.0.0", "::", *_SERVED_HOSTS):  # noqa: S104 - compared, not bound
    _SERVED_HOSTS.append(f"[{_SERVED_HOST}]" if ":" in _SERVED_HOST else _SERVED_HOST)
WEBSOCKET_ALLOWED_ORIGINS = env.list(
    "WEBSOCKET_ALLOWED_ORIGINS",
    default=[*CORS_ALLOWED_ORIGINS, *(f"http://{host}:{_SERVED_PORT}" for host in _SERVED_HOSTS)],
)

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.DepthLimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exception_handlers.api_exception_handler",
    # Every endpoint: the general budget and its view's scopes (core/ratelimit.py; rates below).
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.GeneralRateThrottle", "core.ratelimit.ViewScopeThrottle"],
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- Rate limits (core/ratelimit.py, docs/api.md#rate-limits) --------------------------------
# Sliding windows counted in the shared cache; syntax 30/min, 10/hour, 1/5s, 100/15min.
# The general budget of every endpoint: per signed-in user, all endpoints together; per client IP
# for anonymous requests.
USER_THROTTLE_RATE = env.str("USER_THROTTLE_RATE", default="300/min")
ANON_THROTTLE_RATE = env.str("ANON_THROTTLE_RATE", default="60/min")
# Per client IP and per account, each authentication endpoint on its own (accounts/throttles.py).
AUTH_THROTTLE_RATE_IP = env.str("AUTH_THROTTLE_RATE_IP", default="5/min")
AUTH_THROTTLE_RATE_ACCOUNT = env.str("AUTH_THROTTLE_RATE_ACCOUNT", default="5/min")
# Per user: all call endpoints together, and ringing someone.
VIDEO_CALL_THROTTLE_RATE = env.str("VIDEO_CALL_THROTTLE_RATE", default="60/min")
CALL_INITIATE_THROTTLE_RATE = env.str("CALL_INITIATE_THROTTLE_RATE", default="1/5s")
# Per user per call: quality samples submitted (video_calls/apis/history.py).
CALL_QUALITY_THROTTLE_RATE = env.str("CALL_QUALITY_THROTTLE_RATE", default="1/s")
# Per user: socket tickets issued, and socket connections opened (realtime/tickets.py).
REALTIME_TICKET_THROTTLE_RATE = env.str("REALTIME_TICKET_THROTTLE_RATE", default="10/min")
REALTIME_CONNECT_THROTTLE_RATE = env.str("REALTIME_CONNECT_THROTTLE_RATE", default="10/min")
# Views counted under scopes beyond the general budget, by dotted prefix of module.Class; each
# scope's rate is the setting <SCOPE>_THROTTLE_RATE. A view's own throttle_scope adds to these.
THROTTLE_VIEW_SCOPES = {
    "video_calls.apis": ["video_call"],
    "video_calls.apis.calls.CallInitiateApi": ["call_initiate"],
    "realtime.apis.TicketApi": ["realtime_ticket"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("REFRESH_TOKEN_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.LoginSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Telehealth API",
    "DESCRIPTION": (
        "Video consultations between doctors and patients. Every error has the shape "
        '`{"error": {"code", "message", "details", "request_id"}}`; codes are listed in docs/errors.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge fetched from validator.swagger.io (it would also hand it the schema's address).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Redoc's own fonts come from Google; the docs pages use the system's (core/templates/).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {"fontFamily": "system-ui, sans-serif", "headings": {"fontFamily": "system-ui, sans-serif"}}
        }
    },
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Choice sets that share a field name ("status", "role", "kind") get distinct, stable names.
    "ENUM_NAME_OVERRIDES": {
        "CallKindEnum": "video_calls.models.CallKind",
        "CallMediaEnum": "video_calls.models.CallMedia",
        "CallStatusEnum": "video_calls.models.CallStatus",
        "CallEndReasonEnum": "video_calls.models.EndReason",
        "CallParticipantRoleEnum": "video_calls.models.ParticipantRole",
        "CallParticipantStatusEnum": "video_calls.models.ParticipantStatus",
        "CallQualityGradeEnum": "video_calls.models.QualityGrade",
        "CallQualityAssessmentEnum": "video_calls.services.quality.QualityAssessment",
        "UserRoleEnum": "accounts.models.Role",
        "PresenceStatusEnum": "presence.models.PresenceStatus",
        "ChoosablePresenceStatusEnum": "presence.models.CHOOSABLE_STATUS_CHOICES",
        "ConversationKindEnum": "messaging.models.ConversationKind",
        "MessageTypeEnum": "messaging.models.MessageType",
        "MessageReceiptStatusEnum": "messaging.models.ReceiptStatus",
        "AttachmentAccessEnum": "messaging.models.AttachmentAccess",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
    ],
}

# --- Logging: request ids on every line, no request bodies (they may hold PHI) ----------------
# "json": one JSON object a line (production, log shippers); "console": readable columns (dev.py's default).
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    # One JSON object a line (structlog, core/logging.py), or coloured columns for a developer.
    "formatters": {"structured": {"()": "core.logging.structured_formatter", "log_format": LOG_FORMAT}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "structured"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's request logger prints the request line of every 4xx; our handlers log the 5xx they
        # answer themselves, with the request id, and mark them (core.errors ``logged_already``).
        "django.request": {"level": "ERROR", "propagate": True},
        "django.channels.server": {"level": "WARNING"},
        # The Twilio client logs every request line and response header at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

from config.settings.audit import *  # noqa: E402,F403
from config.settings.calls import *  # noqa: E402,F403
from config.settings.celery import *  # noqa: E402,F403
from config.settings.channels import *  # noqa: E402,F403
from config.settings.consultations import *  # noqa: E402,F403
from config.settings.demo import *  # noqa: E402,F403
from config.settings.messaging import *  # noqa: E402,F403
from config.settings.realtime import *  # noqa: E402,F403

STORAGES["attachments"] = ATTACHMENT_STORAGE_CONFIG  # noqa: F405
STORAGES["avatars"] = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": AVATAR_ROOT}}

CELERY_BEAT_SCHEDULE = {
    **CONSULTATIONS_BEAT_SCHEDULE,  # noqa: F405
    **CALLS_BEAT_SCHEDULE,  # noqa: F405
    **REALTIME_BEAT_SCHEDULE,  # noqa: F405
    **MESSAGING_BEAT_SCHEDULE,  # noqa: F405
    **AUDIT_BEAT_SCHEDULE,  # noqa: F405
}

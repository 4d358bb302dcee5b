"""Production settings: refuses to start until every secret, host and provider is configured; HTTPS everywhere.

Required: ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``, ``REDIS_URL``; a real email
backend (``EMAIL_URL`` over SMTP, or a django-anymail ``EMAIL_BACKEND``) and ``DEFAULT_FROM_EMAIL``;
a real ``SMS_BACKEND`` (with its ``TWILIO_*`` variables for Twilio); ``CORS_ALLOWED_ORIGINS``,
``WEBSOCKET_ALLOWED_ORIGINS`` and ``FRONTEND_URL`` as https URLs of public hosts;
``PAYMENT_WEBHOOK_SECRET``; ``MESSAGE_ENCRYPTION_KEYS``, valid Fernet keys. The development defaults would print phone codes and reset links to
the log, point links at localhost, leave the webhook shut and encrypt messages with a key derived
from ``SECRET_KEY``. Every problem is listed in one
``ImproperlyConfigured``, so a deployment is fixed in one go (docs/settings.md, "Production").
"""

from ipaddress import ip_address
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.settings import base as _base
from config.settings.base import *  # noqa: F403
from config.settings.env import env

DEBUG = False

# Backends that only print, keep in memory or drop what they are given.
_DEVELOPMENT_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "anymail.backends.console.EmailBackend",
    "anymail.backends.test.EmailBackend",
}
_DEVELOPMENT_SMS_BACKENDS = {"accounts.sms.ConsoleSmsBackend", "accounts.sms.LocmemSmsBackend"}
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# A shared HMAC key (docs/payments.md); shorter ones can be guessed offline from one signed call.
_MIN_WEBHOOK_SECRET_LENGTH = 32


def _is_local_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _public_https_problem(name: str, url: str) -> str | None:
    """Why ``url`` is no place for browsers to be sent or trusted from, or None."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return f"{name}: {url!r} is not an https:// URL"
    if _is_local_host(parts.hostname):
        return f"{name}: {url!r} is a local address"
    return None


def _origin_list_problems(name: str, origins: list[str]) -> list[str]:
    if not env.str(name, default=""):
        return [f"{name}: not set (comma-separated https origins of the web client)"]
    problems = [_public_https_problem(name, origin) for origin in origins]
    return [problem for problem in problems if problem]


def _email_problems() -> list[str]:
    problems = []
    if "@localhost" in _base.DEFAULT_FROM_EMAIL or not env.str("DEFAULT_FROM_EMAIL", default=""):
        problems.append("DEFAULT_FROM_EMAIL: not set to an address of your domain")
    if _base.EMAIL_BACKEND in _DEVELOPMENT_EMAIL_BACKENDS:
        return [
            *problems,
            f"EMAIL_URL / EMAIL_BACKEND: {_base.EMAIL_BACKEND} does not deliver email (set EMAIL_URL to an "
            "smtp+tls:// or smtp+ssl:// URL, or EMAIL_BACKEND to a django-anymail provider)",
        ]
    if _base.EMAIL_BACKEND == _SMTP_BACKEND:
        if not _base.EMAIL_HOST:
            problems.append("EMAIL_URL: no SMTP host")
        # A password over plain SMTP can be read on the way; a relay on this host is the exception.
        encrypted = getattr(_base, "EMAIL_USE_TLS", False) or getattr(_base, "EMAIL_USE_SSL", False)
        if _base.EMAIL_HOST_PASSWORD and not encrypted and not _is_local_host(_base.EMAIL_HOST or ""):
            problems.append("EMAIL_URL: a password over plain SMTP (use smtp+tls:// or smtp+ssl://)")
    return problems


def _sms_problems() -> list[str]:
    if not env.str("SMS_BACKEND", default="") or _base.SMS_BACKEND in _DEVELOPMENT_SMS_BACKENDS:
        return [f"SMS_BACKEND: {_base.SMS_BACKEND} does not deliver text messages (use accounts.sms.TwilioSmsBackend)"]
    if _base.SMS_BACKEND != "accounts.sms.TwilioSmsBackend":
        return []
    credentials = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    problems = [f"{name}: not set" for name in credentials if not env.str(name, default="")]
    if not (_base.TWILIO_FROM_NUMBER or _base.TWILIO_MESSAGING_SERVICE_SID):
        problems.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID: neither is set")
    if _base.TWILIO_API_BASE_URL:
        problem = _public_https_problem("TWILIO_API_BASE_URL", _base.TWILIO_API_BASE_URL)
        problems.extend([problem] if problem else [])
    return problems


def _message_key_problems() -> list[str]:
    """Message bodies are encrypted at rest with these (messaging/encryption.py); a key derived
    from SECRET_KEY would be lost, and the bodies with it, the day SECRET_KEY is rotated."""
    from cryptography.fernet import Fernet

    keys = _base.MESSAGE_ENCRYPTION_KEYS
    if not keys:
        return [
            "MESSAGE_ENCRYPTION_KEYS: not set (comma-separated Fernet keys, newest first: "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        ]
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            problems.append(f"MESSAGE_ENCRYPTION_KEYS: key {position} is not a Fernet key (urlsafe base64 of 32 bytes)")
    return problems


def _configuration_problems() -> list[str]:
    required = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
    problems = [f"{name}: not set" for name in required if not env.str(name, default="")]
    problems += _email_problems()
    problems += _sms_problems()
    problems += _origin_list_problems("CORS_ALLOWED_ORIGINS", _base.CORS_ALLOWED_ORIGINS)
    problems += _origin_list_problems("WEBSOCKET_ALLOWED_ORIGINS", _base.WEBSOCKET_ALLOWED_ORIGINS)
    if not env.str("FRONTEND_URL", default=""):
        problems.append("FRONTEND_URL: not set (the https address of the web client, used in emailed links)")
    else:
        problem = _public_https_problem("FRONTEND_URL", _base.FRONTEND_URL)
        problems.extend([problem] if problem else [])
    if len(_base.PAYMENT_WEBHOOK_SECRET) < _MIN_WEBHOOK_SECRET_LENGTH:
        problems.append(f"PAYMENT_WEBHOOK_SECRET: not set or shorter than {_MIN_WEBHOOK_SECRET_LENGTH} characters")
    problems += _message_key_problems()
    return problems


_problems = _configuration_problems()
if _problems:
    raise ImproperlyConfigured(
        "Production settings refuse to start until these are configured (docs/settings.md, Production):\n"
        + "\n".join(f"  - {problem}" for problem in _problems)
    )

SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Health probes come from the orchestrator over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^api/health/"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
MESSAGE_ENCRYPTION_ALLOW_DERIVED_KEY = False
# The reference client is a development page: production serves the API only.
DEMO_CLIENT_ENABLED = False

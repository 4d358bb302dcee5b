"""Production settings pass Django's deployment checks, and refuse to start, naming every problem at
once, while a secret, a host, an origin or a provider is missing or would not reach anyone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "x7!Qm#2vLp9$Rt4&Wz8^Yk3*Nb6(Hc1)Jd5_Fg0+Ts-Ue=Va;Xo:Ir,Pq.Ml?Sn",
    "ALLOWED_HOSTS": "api.clinic.example",
    "DATABASE_URL": "postgres://telehealth@db.internal:5432/telehealth",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:s3cret%40pass@smtp.clinic.example:587",
    "DEFAULT_FROM_EMAIL": "Clinic <no-reply@clinic.example>",
    "SMS_BACKEND": "accounts.sms.TwilioSmsBackend",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "f" * 32,
    "TWILIO_FROM_NUMBER": "+14155550100",
    "CORS_ALLOWED_ORIGINS": "https://app.clinic.example",
    "WEBSOCKET_ALLOWED_ORIGINS": "https://app.clinic.example",
    "FRONTEND_URL": "https://app.clinic.example",
    "PAYMENT_WEBHOOK_SECRET": "whsec-" + "k" * 40,
    "MESSAGE_ENCRYPTION_KEYS": "hJ3x0Xb7N1rJ7m0Yt0vX3xk3t9m1Jc0uQ2dO1nX4Fz8=",
}
# Variables these tests set or leave out; none may come from the shell that runs the suite.
_SCRUBBED = {*PRODUCTION_ENV, "EMAIL_BACKEND", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE_URL"}


def _environment(env: dict[str, str]) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in _SCRUBBED and not name.startswith("ANYMAIL_") and name != "DJANGO_SETTINGS_MODULE"
    }
    return {**inherited, "DJANGO_SETTINGS_MODULE": "config.settings.prod", **env}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _load_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the production settings module alone: what every process does first."""
    return subprocess.run(
        [sys.executable, "-c", "import config.settings.prod"],
        cwd=ROOT,
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _without(*names: str, **overrides: str) -> dict[str, str]:
    return {**{k: v for k, v in PRODUCTION_ENV.items() if k not in names}, **overrides}


def test_check_deploy_reports_no_issues_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_use_the_configured_providers():
    script = (
        "from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_HOST_PASSWORD, s.EMAIL_TIMEOUT); "
        "print(s.SMS_BACKEND, s.CORS_ALLOWED_ORIGINS, s.WEBSOCKET_ALLOWED_ORIGINS, s.FRONTEND_URL)"
    )

    result = _manage("shell", "--no-imports", "-c", script, env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    email, sms = result.stdout.splitlines()
    assert email == "django.core.mail.backends.smtp.EmailBackend smtp.clinic.example 587 True s3cret@pass 10"
    assert sms == (
        "accounts.sms.TwilioSmsBackend ['https://app.clinic.example'] ['https://app.clinic.example'] "
        "https://app.clinic.example"
    )


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(
            _without("TWILIO_FROM_NUMBER", TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32), id="messaging-service"
        ),
        pytest.param(
            _without(
                "EMAIL_URL",
                EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
                ANYMAIL_POSTMARK_SERVER_TOKEN="t0ken",
            ),
            id="anymail",
        ),
        pytest.param(_without(EMAIL_URL="smtp+ssl://mailer:pw@smtp.clinic.example:465"), id="smtp-implicit-tls"),
        pytest.param(_without(EMAIL_URL="smtp://relay.internal:25"), id="smtp-relay-without-password"),
        pytest.param(_without(EMAIL_URL="smtp://mailer:pw@localhost:25"), id="smtp-local-relay-with-password"),
    ],
)
def test_production_settings_accept_each_supported_provider_setup(env):
    result = _load_settings(env)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        # secrets and services
        (_without("SECRET_KEY"), "SECRET_KEY: not set"),
        (_without("ALLOWED_HOSTS"), "ALLOWED_HOSTS: not set"),
        (_without("DATABASE_URL"), "DATABASE_URL: not set"),
        (_without("REDIS_URL"), "REDIS_URL: not set"),
        # email: the default prints reset links to the log
        (_without("EMAIL_URL"), "EMAIL_URL / EMAIL_BACKEND: django.core.mail.backends.console.EmailBackend"),
        (_without(EMAIL_URL="consolemail://"), "django.core.mail.backends.console.EmailBackend does not deliver"),
        (_without(EMAIL_URL="memorymail://"), "django.core.mail.backends.locmem.EmailBackend does not deliver"),
        (_without(EMAIL_URL="dummymail://"), "django.core.mail.backends.dummy.EmailBackend does not deliver"),
        (_without(EMAIL_URL="filemail:///tmp/mail"), "django.core.mail.backends.filebased.EmailBackend does not"),
        (_without(EMAIL_BACKEND="anymail.backends.test.EmailBackend"), "anymail.backends.test.EmailBackend does not"),
        (_without(EMAIL_URL="smtp://mailer:pw@smtp.clinic.example:25"), "EMAIL_URL: a password over plain SMTP"),
        (_without("DEFAULT_FROM_EMAIL"), "DEFAULT_FROM_EMAIL: not set"),
        (_without(DEFAULT_FROM_EMAIL="Clinic <no-reply@localhost>"), "DEFAULT_FROM_EMAIL: not set"),
        # SMS: the default prints phone codes to the log
        (_without("SMS_BACKEND"), "SMS_BACKEND: accounts.sms.ConsoleSmsBackend does not deliver"),
        (_without(SMS_BACKEND="accounts.sms.LocmemSmsBackend"), "SMS_BACKEND: accounts.sms.LocmemSmsBackend"),
        (_without("TWILIO_ACCOUNT_SID"), "TWILIO_ACCOUNT_SID: not set"),
        (_without("TWILIO_AUTH_TOKEN"), "TWILIO_AUTH_TOKEN: not set"),
        (_without("TWILIO_FROM_NUMBER"), "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID: neither is set"),
        (_without(TWILIO_API_BASE_URL="http://127.0.0.1:8080"), "TWILIO_API_BASE_URL: 'http://127.0.0.1:8080' is not"),
        # browser origins and emailed links
        (_without("CORS_ALLOWED_ORIGINS"), "CORS_ALLOWED_ORIGINS: not set"),
        (
            _without(CORS_ALLOWED_ORIGINS="http://localhost:3000"),
            "CORS_ALLOWED_ORIGINS: 'http://localhost:3000' is not",
        ),
        (
            _without(CORS_ALLOWED_ORIGINS="https://127.0.0.1:3000"),
            "CORS_ALLOWED_ORIGINS: 'https://127.0.0.1:3000' is a local",
        ),
        (
            _without(CORS_ALLOWED_ORIGINS="https://app.clinic.example,http://app.clinic.example"),
            "CORS_ALLOWED_ORIGINS: 'http://app.clinic.example' is not an https:// URL",
        ),
        (_without("WEBSOCKET_ALLOWED_ORIGINS"), "WEBSOCKET_ALLOWED_ORIGINS: not set"),
        (
            _without(WEBSOCKET_ALLOWED_ORIGINS="https://localhost:8000"),
            "WEBSOCKET_ALLOWED_ORIGINS: 'https://localhost:8000' is a local",
        ),
        (
            _without(WEBSOCKET_ALLOWED_ORIGINS="https://[::1]:8000"),
            "WEBSOCKET_ALLOWED_ORIGINS: 'https://[::1]:8000' is a local",
        ),
        (_without("FRONTEND_URL"), "FRONTEND_URL: not set"),
        (
            _without(FRONTEND_URL="http://app.clinic.example"),
            "FRONTEND_URL: 'http://app.clinic.example' is not an https",
        ),
        (_without(FRONTEND_URL="https://localhost:3000"), "FRONTEND_URL: 'https://localhost:3000' is a local address"),
        # the payment webhook
        (_without("PAYMENT_WEBHOOK_SECRET"), "PAYMENT_WEBHOOK_SECRET: not set or shorter than 32 characters"),
        (_without(PAYMENT_WEBHOOK_SECRET="short-secret"), "PAYMENT_WEBHOOK_SECRET: not set or shorter than 32"),
        # encryption of message bodies at rest
        (_without("MESSAGE_ENCRYPTION_KEYS"), "MESSAGE_ENCRYPTION_KEYS: not set"),
        (_without(MESSAGE_ENCRYPTION_KEYS="not-a-key"), "MESSAGE_ENCRYPTION_KEYS: key 1 is not a Fernet key"),
    ],
)
def test_production_settings_refuse_to_start_with_a_missing_or_unsafe_variable(env, problem):
    result = _load_settings(env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: Production settings refuse to start" in result.stderr
    # and that one problem is the one reported
    (reported,) = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert problem in reported


def test_production_settings_list_every_problem_at_once():
    result = _manage("check", env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})

    assert result.returncode != 0
    problems = [line.removeprefix("  - ") for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert [problem.split(":")[0] for problem in problems] == [
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "DEFAULT_FROM_EMAIL",
        "EMAIL_URL / EMAIL_BACKEND",
        "SMS_BACKEND",
        "CORS_ALLOWED_ORIGINS",
        "WEBSOCKET_ALLOWED_ORIGINS",
        "FRONTEND_URL",
        "PAYMENT_WEBHOOK_SECRET",
        "MESSAGE_ENCRYPTION_KEYS",
    ]


def test_production_settings_hash_passwords_with_argon2_first():
    script = "from django.conf import settings; print(settings.PASSWORD_HASHERS[0])"

    result = _manage("shell", "--no-imports", "-c", script, env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.contrib.auth.hashers.Argon2PasswordHasher"

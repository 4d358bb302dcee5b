"""Shared pieces of the accounts tests: endpoint paths, a strong password, reading the links
out of sent emails and the code out of sent SMS, and a session between a doctor and a patient."""

import itertools
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from django.core import mail
from django.utils import timezone

from accounts import sms
from sessions.models import Session, SessionStatus

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
PASSWORD_CHANGE = "/api/v1/auth/password/change/"
PASSWORD_FORGOT = "/api/v1/auth/password/forgot/"
PASSWORD_RESET = "/api/v1/auth/password/reset/"
EMAIL_VERIFY = "/api/v1/auth/email/verify/"
EMAIL_RESEND = "/api/v1/auth/email/resend/"
PHONE_SEND_CODE = "/api/v1/auth/phone/send-code/"
PHONE_VERIFY = "/api/v1/auth/phone/verify/"
ME = "/api/v1/me/"
DOCTORS = "/api/v1/doctors/"
PATIENTS = "/api/v1/patients/"

STRONG_PASSWORD = "Sturdy-Lantern-42"
PHONE = "+14155550123"
OTHER_PHONE = "+12025550143"

_LINK = re.compile(r"https?://\S+")


def link_in(message: mail.EmailMessage) -> dict[str, str]:
    """The ``path``, ``uid`` and ``token`` of the one link in an email body."""
    (link,) = _LINK.findall(message.body)
    parsed = urlparse(link)
    query = parse_qs(parsed.query)
    return {"path": parsed.path, "uid": query["uid"][0], "token": query["token"][0]}


def sent_code(to: str) -> str:
    """The 6-digit code in the last SMS sent to this number."""
    (message,) = [message for message in sms.outbox if message.to == to][-1:]
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def error_messages(error: dict, field: str) -> list[str]:
    return [item["message"] for item in error["details"][field]]


_slots = itertools.count(1)


def session_between(*, doctor, patient, status: str = SessionStatus.CONFIRMED, days_ago: int = 0) -> Session:
    """A session in a slot of its own (two hours after the previous one), so a doctor's
    sessions never overlap (PostgreSQL refuses overlapping bookings)."""
    start = timezone.now() - timedelta(days=days_ago) + timedelta(hours=2 * next(_slots))
    return Session.objects.create(
        doctor=doctor,
        patient=patient,
        scheduled_start=start,
        duration_minutes=50,
        blocked_until=start + timedelta(minutes=60),
        status=status,
    )


def register_body(**overrides) -> dict:
    body = {
        "email": "Margaret.Hamilton@Example.test",
        "password": STRONG_PASSWORD,
        "first_name": "Margaret",
        "last_name": "Hamilton",
    }
    body.update(overrides)
    return body


def doctor_register_body(**overrides) -> dict:
    return register_body(
        email="dr.shepherd@example.test",
        first_name="Derek",
        last_name="Shepherd",
        role="doctor",
        specialty="Neurology",
        license_number="NEURO-0001",
        consultation_fee="120.00",
        currency="USD",
        time_zone="America/Chicago",
        **overrides,
    )


class DownSmsBackend(sms.BaseSmsBackend):
    """An SMS provider that is down. Its error quotes the number and the text, as real providers'
    errors do, so a test can show neither reaches the logs. ``attempts`` keeps what was tried."""

    attempts: list[sms.SmsMessage] = []

    def send(self, to: str, body: str) -> None:
        DownSmsBackend.attempts.append(sms.SmsMessage(to=to, body=body))
        raise ConnectionError(f"provider unreachable while sending {body!r} to {to}")


DOWN_SMS_BACKEND = "tests.accounts.helpers.DownSmsBackend"

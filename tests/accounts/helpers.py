"""Shared pieces of the accounts tests: endpoint paths, a strong password, reading the links
out of sent emails and the code out of sent SMS, a session between a doctor and a patient, and
the malformed bearer headers every token-authenticated endpoint refuses."""

import io
import itertools
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from accounts import sms
from sessions.models import Session, SessionStatus

# Malformed Authorization headers and the code each is refused with (every bearer endpoint).
MALFORMED_BEARER_HEADERS = pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer not-a-token", "TOKEN_INVALID"),
        ("Bearer a.b.c", "TOKEN_INVALID"),
        ("Bearer", "AUTHENTICATION_FAILED"),
        ("Bearer two words", "AUTHENTICATION_FAILED"),
    ],
    ids=["garbage", "dotted", "no-token", "two-tokens"],
)

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
PHONE_RESEND = "/api/v1/auth/phone/resend/"
PHONE_CONFIRM = "/api/v1/auth/phone/confirm/"
ME = "/api/v1/me/"
ME_AVATAR = "/api/v1/me/avatar/"
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


def user_avatar_path(user) -> str:
    return f"/api/v1/users/{user.pk}/avatar/"


# GPS position and camera that a phone writes into a photo: what re-encoding must drop.
GPS_LATITUDE = (37.0, 46.0, 29.64)


def image_bytes(
    *, format: str = "JPEG", size: tuple[int, int] = (64, 48), mode: str = "RGB", gps: bool = False
) -> bytes:
    """An image file in ``format``; with ``gps``, EXIF carrying a GPS position, a camera model
    and an orientation of 6 (turn 90° to stand upright)."""
    image = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    out = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x0110] = "Secret Camera 3000"  # Model
        exif[0x0112] = 6  # Orientation
        exif.get_ifd(0x8825).update({1: "N", 2: GPS_LATITUDE, 3: "W", 4: (122.0, 25.0, 0.0)})
        image.save(out, format=format, exif=exif)
    else:
        image.save(out, format=format)
    return out.getvalue()


def avatar_upload(content: bytes, name: str = "me.jpg", content_type: str = "image/jpeg") -> dict:
    return {"avatar": SimpleUploadedFile(name, content, content_type=content_type)}

"""Pluggable SMS backends, chosen by the ``SMS_BACKEND`` setting like Django's email backends.

A real provider is a class with ``send(to, body)`` that raises when the message is not accepted:
``TwilioSmsBackend`` sends through Twilio's Messages API. The console backend prints, the locmem
backend keeps messages in ``outbox`` for tests; production refuses both (config/settings/prod.py).
``send_sms`` turns any backend failure into ``SmsDeliveryFailed``, so callers handle one
exception, and logs it without the number or the text.
"""

import logging
import sys
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsDeliveryFailed(Exception):
    """The SMS backend did not accept a message. It carries only the provider error's type: the
    provider's own text often quotes the number, and this exception can end up in logs."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str


class BaseSmsBackend:
    def send(self, to: str, body: str) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Development only: writes the message to standard output."""

    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()


outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    def send(self, to: str, body: str) -> None:
        outbox.append(SmsMessage(to=to, body=body))


class SmsRefused(Exception):
    """The provider took the request but marked the message failed at once (its error code only)."""


class TwilioSmsBackend(BaseSmsBackend):
    """Twilio's Messages API through its SDK, configured by the ``TWILIO_*`` settings.

    Sends from ``TWILIO_MESSAGING_SERVICE_SID`` if set, else from ``TWILIO_FROM_NUMBER``. A message
    Twilio accepts is queued on their side; a refusal (bad number, suspended account, wrong
    credentials) raises ``TwilioRestException``, a network failure or a timeout
    (``TWILIO_TIMEOUT_SECONDS``) raises ``requests``' error, and ``send_sms`` turns either into
    ``SmsDeliveryFailed``.
    """

    def __init__(self) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client = Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            region=settings.TWILIO_REGION or None,
            edge=settings.TWILIO_EDGE or None,
            # The SDK's default timeout is none at all: a hung provider would hold the request.
            http_client=TwilioHttpClient(timeout=settings.TWILIO_TIMEOUT_SECONDS),
        )
        if settings.TWILIO_API_BASE_URL:
            self.client.api.base_url = settings.TWILIO_API_BASE_URL

    def send(self, to: str, body: str) -> None:
        sender = (
            {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
            if settings.TWILIO_MESSAGING_SERVICE_SID
            else {"from_": settings.TWILIO_FROM_NUMBER}
        )
        message = self.client.messages.create(to=to, body=body, **sender)
        if message.status in ("failed", "undelivered"):
            raise SmsRefused(message.error_code)


def send_sms(to: str, body: str) -> None:
    """Hand the message to the configured backend, or raise ``SmsDeliveryFailed``.

    Any exception counts (providers' client libraries raise their own types, and a misconfigured
    backend is just as undelivered). It is logged by type only and not chained (``from None``):
    its message and traceback may quote the phone number or the text, which holds a code.
    """
    try:
        import_string(settings.SMS_BACKEND)().send(to, body)
    except Exception as exc:
        provider_error = type(exc).__name__
        logger.error("The SMS backend failed to send a message (%s)", provider_error)
        raise SmsDeliveryFailed(provider_error) from None

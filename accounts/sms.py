"""Pluggable SMS backends, chosen by the ``SMS_BACKEND`` setting like Django's email backends.

A real provider is a class with ``send(to, body)`` that raises when the message is not accepted;
the console backend prints, the locmem backend keeps messages in ``outbox`` for tests.
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

"""Pluggable SMS backends, chosen by the ``SMS_BACKEND`` setting like Django's email backends.

A real provider is a class with ``send(to, body)``; the console backend prints, the locmem
backend keeps messages in ``outbox`` for tests.
"""

import sys
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


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
    import_string(settings.SMS_BACKEND)().send(to, body)

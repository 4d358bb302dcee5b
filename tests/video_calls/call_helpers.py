"""Helpers of the call tests: a fixed "now", sessions whose join window is open at that moment,
and a recorder that listens on the real channel layer for the events services send."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.layers import get_channel_layer

from core.events import call_group, user_group
from tests.layer_loop import on_layer_loop
from tests.sessions.factories import ConfirmedPaidSessionFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def open_session(doctor, patient, *, starts_in_minutes: int = 5, **fields: Any):
    """A confirmed, paid session whose join window is open at NOW."""
    return ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=NOW + timedelta(minutes=starts_in_minutes), **fields
    )


class EventRecorder:
    """Subscribes fresh channels to groups and drains what arrived, through the configured layer
    (in-memory by default, Redis in the services run)."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channels: dict[str, str] = {}

    def listen_user(self, user) -> None:
        self.listen_group(user_group(user.pk))

    def listen_call(self, call) -> None:
        self.listen_group(call_group(call.pk))

    def listen_group(self, group: str) -> None:
        channel = on_layer_loop(self.layer.new_channel())
        on_layer_loop(self.layer.group_add(group, channel))
        self.channels[group] = channel

    def for_user(self, user) -> list[dict[str, Any]]:
        return self.drain_group(user_group(user.pk))

    def for_call(self, call) -> list[dict[str, Any]]:
        return self.drain_group(call_group(call.pk))

    def drain_group(self, group: str, timeout: float = 0.2) -> list[dict[str, Any]]:
        channel = self.channels[group]

        async def drain() -> list[dict[str, Any]]:
            events = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(channel), timeout=timeout)
                except TimeoutError:
                    return events
                events.append(message["event"])

        return on_layer_loop(drain())


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]

"""Fixtures of the sessions tests: a fixed "now" and sessions between the persona doctor and patient."""

from datetime import UTC, datetime

import pytest
import time_machine

from tests.sessions.factories import SessionFactory

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now():
    """Time stands still at NOW (a Monday, before the US daylight-saving change of 8 March 2026).
    Autouse, so the personas' tokens are issued at the same frozen time they are checked at."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def session(doctor, patient, frozen_now):
    """A requested session of the persona doctor and patient, three days ahead."""
    return SessionFactory(doctor=doctor, patient=patient, scheduled_start=datetime(2026, 3, 5, 15, 0, tzinfo=UTC))

"""Shared fixtures: the personas (a patient, a doctor, staff, an outsider), API clients signed
in as each with real tokens, and the rule that service-marked tests fail, not skip, in CI's
services run."""

import os
import subprocess
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import sms
from accounts.tokens import token_pair_for
from tests.factories import DoctorFactory, PatientFactory, StaffFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """With ``CLOCK_AHEAD_DAYS`` set, the clock must really be ahead (tests/clock_ahead/): a run
    that silently used today's date would hide the date bombs it exists to find."""
    days = os.environ.get("CLOCK_AHEAD_DAYS")
    if not days:
        return
    real_now = int(subprocess.run(["date", "+%s"], capture_output=True, text=True, check=True).stdout)
    if time.time() - real_now < (float(days) - 1) * 86400:
        raise pytest.UsageError(
            f"CLOCK_AHEAD_DAYS={days} but the clock is not ahead: put tests/clock_ahead on PYTHONPATH"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.db import connection

    missing = []
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        missing.append("PostgreSQL (set DATABASE_URL)")
    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        missing.append("Redis (set REDIS_URL)")
    if missing:
        message = f"needs {', '.join(missing)}"
        if REQUIRE_SERVICES:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_cache_and_outboxes():
    """Throttle counters and SMS from one test must not leak into the next."""
    cache.clear()
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer instance: a Redis layer's receive buffers belong to
    the event loop that created them, and each test runs its own loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def patient(db):
    return PatientFactory(first_name="Alice", last_name="Patient")


@pytest.fixture
def doctor(db):
    return DoctorFactory(first_name="Gregory", last_name="House")


@pytest.fixture
def staff(db):
    return StaffFactory(first_name="Sam", last_name="Staff")


@pytest.fixture
def outsider(db):
    """Another patient, with no relationship to the persona patient's care."""
    return PatientFactory(first_name="Oscar", last_name="Outsider")


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    return client


@pytest.fixture
def patient_client(patient) -> APIClient:
    return client_for(patient)


@pytest.fixture
def doctor_client(doctor) -> APIClient:
    return client_for(doctor)


@pytest.fixture
def staff_client(staff) -> APIClient:
    return client_for(staff)


@pytest.fixture
def outsider_client(outsider) -> APIClient:
    return client_for(outsider)

"""Automatic logoff of the REST API: an access token works 15 minutes, a refresh token 7 days."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.tokens import token_pair_for

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_an_access_token_ends_after_15_minutes(patient):
    with time_machine.travel(NOW, tick=False) as clock:
        access = token_pair_for(patient)["access"]
        clock.shift(timedelta(minutes=14, seconds=59))
        assert _bearer(access).get("/api/v1/me/").status_code == 200
        clock.shift(timedelta(seconds=1))
        assert _bearer(access).get("/api/v1/me/").status_code == 401


def test_a_refresh_token_ends_after_7_days(patient, anon_client):
    with time_machine.travel(NOW, tick=False) as clock:
        refresh = token_pair_for(patient)["refresh"]
        clock.shift(timedelta(days=7))
        response = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "TOKEN_INVALID"


def test_a_refresh_token_still_works_on_its_last_day(patient, anon_client):
    with time_machine.travel(NOW, tick=False) as clock:
        refresh = token_pair_for(patient)["refresh"]
        clock.shift(timedelta(days=6, hours=23))
        response = anon_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 200, response.content

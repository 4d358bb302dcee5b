"""The staff API of the trail: filters, the streamed CSV export, refusals, and a list whose
query count does not grow with the page size."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine

from audit.models import AuditEntry
from audit.services import audit_record
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/entries/"
EXPORT_URL = "/api/v1/audit/entries/export/"


def recorded(actor, *, instant: datetime, outcome: str = "allowed", object_id: str = "s-1") -> AuditEntry:
    with time_machine.travel(instant, tick=False):
        return audit_record(actor=actor, action="read", object_type="session", object_id=object_id, outcome=outcome)


@pytest.fixture
def trail(patient, doctor) -> dict[str, AuditEntry]:
    return {
        "early": recorded(patient, instant=datetime(2030, 1, 1, tzinfo=UTC)),
        "denied": recorded(doctor, instant=datetime(2030, 2, 1, tzinfo=UTC), outcome="denied", object_id="s-2"),
        "late": recorded(patient, instant=datetime(2030, 3, 1, tzinfo=UTC), object_id="s-2"),
    }


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def test_staff_filter_by_actor_object_outcome_and_time(staff, patient, trail):
    client = client_for(staff)

    by_actor = client.get(URL, {"actor": str(patient.pk)})
    by_object = client.get(URL, {"object_type": "session", "object_id": "s-2"})
    by_outcome = client.get(URL, {"outcome": "denied"})
    by_time = client.get(URL, {"occurred_after": "2030-01-15T00:00:00Z", "occurred_before": "2030-02-15T00:00:00Z"})

    assert ids(by_actor) == [trail["late"].pk, trail["early"].pk]
    assert ids(by_object) == [trail["late"].pk, trail["denied"].pk]
    assert ids(by_outcome) == [trail["denied"].pk]
    assert ids(by_time) == [trail["denied"].pk]
    row = by_outcome.json()["results"][0]
    assert (row["action"], row["object_type"], row["outcome"], row["occurred_at"]) == (
        "read",
        "session",
        "denied",
        "2030-02-01T00:00:00Z",
    )


def test_the_export_streams_the_filtered_trail_as_csv(staff, patient, trail):
    response = client_for(staff).get(EXPORT_URL, {"actor": str(patient.pk)})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="audit-trail.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(row["id"]) for row in rows] == [trail["late"].pk, trail["early"].pk]
    assert rows[0]["actor_id"] == str(patient.pk) and rows[0]["object_id"] == "s-2"


def test_anyone_but_staff_is_refused(patient_client, doctor_client, anon_client, trail):
    for client in (patient_client, doctor_client):
        assert client.get(URL).status_code == 403
        assert client.get(EXPORT_URL).status_code == 403
    assert anon_client.get(URL).status_code == 401


@pytest.mark.parametrize("page_size", [1, 50])
def test_the_list_costs_the_same_queries_whatever_the_page_size(staff, patient, page_size, django_assert_num_queries):
    for n in range(60):
        recorded(patient, instant=datetime(2030, 1, 1, tzinfo=UTC), object_id=f"s-{n}")
    client = client_for(staff)

    # authentication, the count, the page, the audit entry of this read
    with django_assert_num_queries(4):
        response = client.get(URL, {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_export_streams_under_asgi_too(staff, patient):
    """Under ASGI the lines come from an async iterator, not a list Django collects first."""
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    from accounts.tokens import token_pair_for

    await sync_to_async(recorded)(patient, instant=datetime(2030, 1, 1, tzinfo=UTC))
    token = await sync_to_async(token_pair_for)(staff)
    response = await AsyncClient().get(EXPORT_URL, headers={"Authorization": f"Bearer {token['access']}"})

    assert response.status_code == 200, response.content
    assert response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    await sync_to_async(connections.close_all)()  # as the server does once the answer is sent
    header, recorded_in_2030, export_entry = csv.reader(io.StringIO(body))
    assert header[:2] == ["id", "occurred_at"]
    # newest first: the entry of 2030, then the export's own entry, written before the file streams
    assert (recorded_in_2030[5], export_entry[3], export_entry[11]) == ("s-1", "export", "audit-entry-export")

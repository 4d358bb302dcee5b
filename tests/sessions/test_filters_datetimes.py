"""Instant filters of the session list: any offset Python parses is compared in UTC (PostgreSQL
refuses offsets past ±15:59 as typed), and instants that do not exist once in UTC are field
errors, on every backend."""

import pytest

from tests.assertions import assert_error

pytestmark = pytest.mark.django_db
SESSIONS = "/api/v1/sessions/"


def listed_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_an_offset_past_postgresqls_range_is_an_ordinary_instant_for_starts_after(patient_client, session):
    # 2026-03-06T10:00+19:00 is the session's start, 2026-03-05T15:00Z.
    at_start = patient_client.get(SESSIONS, {"starts_after": "2026-03-06T10:00:00+19:00"})
    after_start = patient_client.get(SESSIONS, {"starts_after": "2026-03-06T10:00:01+19:00"})

    assert listed_ids(at_start) == [str(session.pk)]
    assert listed_ids(after_start) == []


def test_an_offset_past_postgresqls_range_is_an_ordinary_instant_for_starts_before(patient_client, session):
    at_start = patient_client.get(SESSIONS, {"starts_before": "2026-03-06T10:00:00+19:00"})
    after_start = patient_client.get(SESSIONS, {"starts_before": "2026-03-06T10:00:01+19:00"})

    assert listed_ids(at_start) == []
    assert listed_ids(after_start) == [str(session.pk)]


@pytest.mark.parametrize("offset", ["-23:59", "+23:59:59.5", "+15:59", "-16:00"])
def test_every_offset_python_accepts_answers(patient_client, session, offset):
    response = patient_client.get(SESSIONS, {"starts_after": f"2020-01-01T00:00:00{offset}"})

    assert listed_ids(response) == [str(session.pk)]


@pytest.mark.parametrize("name", ["starts_after", "starts_before"])
@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+05:00",  # year 0 in UTC
        "2027-01-01T00:00:00+24:00",
        "2027-01-01T00:00:00+99:99",
        "10000-01-01T00:00:00Z",
        "2027-13-01T00:00:00Z",
        "not-a-date",
    ],
)
def test_an_instant_outside_utcs_range_is_a_field_error(patient_client, session, name, value):
    response = patient_client.get(SESSIONS, {name: value})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [name]


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "0001-01-01T05:00:00+05:00"])
def test_the_extremes_of_utc_are_accepted(patient_client, session, value):
    after = patient_client.get(SESSIONS, {"starts_after": value})
    before = patient_client.get(SESSIONS, {"starts_before": value})

    assert after.status_code == 200, after.content
    assert before.status_code == 200, before.content

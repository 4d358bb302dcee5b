"""Every date and instant filter of the list endpoints answers at the ends of the calendar: a
result or a field error, never a database error."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/calls/history/", {"date_from": "0001-01-01", "date_to": "9999-12-31"}),
        ("/api/v1/calls/history/", {"date_from": "9999-12-31"}),
        ("/api/v1/calls/history/", {"date_to": "0001-01-01"}),
        ("/api/v1/calls/statistics/", {"date_from": "0001-01-01", "date_to": "9999-12-31"}),
        ("/api/v1/calls/statistics/", {"date_from": "9999-12-31", "date_to": "9999-12-31"}),
        ("/api/v1/sessions/", {"local_date": "0001-01-01"}),
        ("/api/v1/sessions/", {"local_date": "9999-12-31"}),
        ("/api/v1/sessions/", {"starts_after": "0001-01-01T00:00:00Z", "starts_before": "9999-12-31T23:59:59Z"}),
        ("/api/v1/sessions/", {"starts_after": "2027-01-01T00:00:00+19:00"}),
        ("/api/v1/sessions/", {"starts_before": "9999-12-31T23:00:00-05:00"}),
    ],
)
def test_extreme_dates_answer_a_result_or_a_field_error(patient_client, url, params):
    response = patient_client.get(url, params)

    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"

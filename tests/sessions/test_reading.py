"""Lists and details: scoped to who asks, filtered, ordered, paginated, with a fixed query budget."""

from datetime import UTC, datetime, timedelta

import pytest

from sessions.models import PaymentStatus, SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/sessions/"


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def sessions(doctor, patient, outsider):
    """Mine (patient with doctor), the outsider's with the same doctor, and two strangers'."""
    return {
        "mine": SessionFactory(doctor=doctor, patient=patient),
        "outsiders": SessionFactory(doctor=doctor, patient=outsider, scheduled_start=datetime(2026, 3, 9, tzinfo=UTC)),
        "strangers": SessionFactory(),
    }


def test_a_patient_lists_only_their_sessions(patient_client, sessions):
    assert ids(patient_client.get(URL)) == {str(sessions["mine"].pk)}


def test_a_doctor_lists_only_theirs(doctor_client, sessions):
    assert ids(doctor_client.get(URL)) == {str(sessions["mine"].pk), str(sessions["outsiders"].pk)}


def test_staff_list_all(staff_client, sessions):
    assert ids(staff_client.get(URL)) == {str(s.pk) for s in sessions.values()}


def test_anonymous_cannot_list(anon_client):
    assert_error(anon_client.get(URL), 401, "NOT_AUTHENTICATED")


def test_detail_shows_both_participants(patient_client, sessions, doctor, patient):
    response = patient_client.get(f"{URL}{sessions['mine'].pk}/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["doctor"]["full_name"] == "Gregory House"
    assert body["patient"] == {
        "id": str(patient.pk),
        "full_name": "Alice Patient",
        "role": "patient",
        "time_zone": "Europe/Berlin",
        "specialty": None,
    }


@pytest.mark.parametrize("who", ["outsider", "other_doctor"])
def test_another_users_session_is_not_found(sessions, outsider, who):
    user = outsider if who == "outsider" else DoctorFactory()

    response = client_for(user).get(f"{URL}{sessions['mine'].pk}/")

    assert_error(response, 404, "NOT_FOUND")


def test_filters(staff_client, doctor, patient):
    base = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    confirmed = SessionFactory(doctor=doctor, patient=patient, scheduled_start=base, status=SessionStatus.CONFIRMED)
    paid = SessionFactory(doctor=doctor, scheduled_start=base + timedelta(days=1), payment_status=PaymentStatus.PAID)
    other = SessionFactory(scheduled_start=base + timedelta(days=2), patient=patient)

    assert ids(staff_client.get(URL, {"status": "confirmed"})) == {str(confirmed.pk)}
    assert ids(staff_client.get(URL, {"status": ["confirmed", "requested"]})) == {
        str(confirmed.pk),
        str(paid.pk),
        str(other.pk),
    }
    assert ids(staff_client.get(URL, {"payment_status": "paid"})) == {str(paid.pk)}
    assert ids(staff_client.get(URL, {"doctor": str(doctor.pk)})) == {str(confirmed.pk), str(paid.pk)}
    assert ids(staff_client.get(URL, {"patient": str(patient.pk)})) == {str(confirmed.pk), str(other.pk)}
    assert ids(
        staff_client.get(URL, {"starts_after": "2026-03-11T00:00:00Z", "starts_before": "2026-03-12T00:00:00Z"})
    ) == {str(paid.pk)}


def test_ordering(staff_client):
    early = SessionFactory(scheduled_start=datetime(2026, 3, 10, tzinfo=UTC))
    late = SessionFactory(scheduled_start=datetime(2026, 3, 11, tzinfo=UTC))

    ascending = staff_client.get(URL, {"ordering": "scheduled_start"}).json()["results"]
    default = staff_client.get(URL).json()["results"]

    assert [row["id"] for row in ascending] == [str(early.pk), str(late.pk)]
    assert [row["id"] for row in default] == [str(late.pk), str(early.pk)]


def test_refund_due_filter(staff_client):
    due = SessionFactory(payment_status=PaymentStatus.PAID, refund_requested_at=datetime(2026, 3, 1, tzinfo=UTC))
    SessionFactory(payment_status=PaymentStatus.REFUNDED, refund_requested_at=datetime(2026, 3, 1, tzinfo=UTC))
    SessionFactory(payment_status=PaymentStatus.PAID)

    assert ids(staff_client.get(URL, {"refund_due": "true"})) == {str(due.pk)}


@pytest.mark.parametrize(
    "params",
    [
        {"starts_after": "yesterday"},
        {"starts_before": "2026-13-01T00:00:00Z"},
        {"local_date": "2026-02-30"},
        {"local_date": "9999-12-31"},
        {"doctor": "not-a-uuid"},
        {"status": "lost"},
        {"ordering": "reason"},
    ],
)
def test_malformed_filters_are_validation_errors(staff_client, params):
    response = staff_client.get(URL, params)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == set(params)


def test_a_page_past_the_end_is_not_found(staff_client):
    assert_error(staff_client.get(URL, {"page": 99}), 404, "NOT_FOUND")


def test_pagination(staff_client):
    SessionFactory.create_batch(3)

    body = staff_client.get(URL, {"page_size": 2}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


@pytest.mark.parametrize("page_size", [1, 10])
def test_list_query_count_does_not_grow_with_page_size(staff, page_size, django_assert_num_queries):
    for _ in range(10):
        SessionFactory(doctor=DoctorFactory(), patient=PatientFactory())
    client = client_for(staff)

    # authentication (1), count (1), page with both participants and their profiles (1),
    # the audit entry (1)
    with django_assert_num_queries(4):
        response = client.get(URL, {"page_size": page_size})

    assert len(response.json()["results"]) == page_size

"""Booking: who may book whom, the booking rules, the overlap buffer, and every refusal's error shape."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from sessions.models import Session, SessionStatus
from tests.assertions import assert_error
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/sessions/"
START = "2026-03-05T15:00:00Z"


def test_patient_books_for_themselves_with_price_and_duration_from_the_doctor(
    patient_client, patient, doctor, frozen_now
):
    # given a doctor charging 90 EUR for 40-minute consultations
    doctor.doctor_profile.consultation_fee = Decimal("90.00")
    doctor.doctor_profile.currency = "EUR"
    doctor.doctor_profile.consultation_minutes = 40
    doctor.doctor_profile.save()

    # when the patient books
    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "scheduled_start": START, "reason": "Cough"}, format="json"
    )

    # then a requested, unpaid session exists with the doctor's defaults
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "requested"
    assert body["payment_status"] == "pending"
    assert body["scheduled_start"] == "2026-03-05T15:00:00Z"
    assert body["scheduled_end"] == "2026-03-05T15:40:00Z"
    assert body["duration_minutes"] == 40
    assert (body["price"], body["currency"]) == ("90.00", "EUR")
    assert body["doctor"] == {
        "id": str(doctor.pk),
        "full_name": "Gregory House",
        "role": "doctor",
        "time_zone": "America/New_York",
        "specialty": "Family Medicine",
    }
    assert body["patient"]["id"] == str(patient.pk)
    assert "email" not in body["patient"]
    session = Session.objects.get(pk=body["id"])
    assert (session.patient, session.doctor, session.created_by) == (patient, doctor, patient)
    assert session.blocked_until == datetime(2026, 3, 5, 16, 10, tzinfo=UTC)  # end + 30-minute buffer


def test_doctor_books_with_one_of_their_patients(doctor_client, doctor, patient, frozen_now):
    # given the patient already had a session with the doctor
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=datetime(2026, 3, 3, 9, 0, tzinfo=UTC))

    response = doctor_client.post(URL, {"patient_id": str(patient.pk), "scheduled_start": START}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["doctor"]["id"] == str(doctor.pk)


def test_doctor_cannot_book_a_patient_who_is_not_theirs(doctor_client, outsider, frozen_now):
    response = doctor_client.post(URL, {"patient_id": str(outsider.pk), "scheduled_start": START}, format="json")

    assert_error(response, 404, "NOT_FOUND")
    assert not Session.objects.exists()


def test_doctor_cannot_book_a_patient_whose_only_session_was_cancelled(doctor_client, doctor, patient, frozen_now):
    # given their only session was cancelled: no care relationship
    SessionFactory(
        doctor=doctor,
        patient=patient,
        status=SessionStatus.CANCELLED,
        scheduled_start=datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
    )

    response = doctor_client.post(URL, {"patient_id": str(patient.pk), "scheduled_start": START}, format="json")

    assert_error(response, 404, "NOT_FOUND")
    assert Session.objects.count() == 1


def test_staff_books_for_anyone(staff_client, doctor, patient, frozen_now):
    response = staff_client.post(
        URL,
        {"doctor_id": str(doctor.pk), "patient_id": str(patient.pk), "scheduled_start": START, "duration_minutes": 30},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["duration_minutes"] == 30


def test_staff_must_name_both_participants(staff_client, doctor, frozen_now):
    response = staff_client.post(URL, {"doctor_id": str(doctor.pk), "scheduled_start": START}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "patient_id" in error["details"]


def test_patient_cannot_book_for_another_patient(patient_client, doctor, outsider, frozen_now):
    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "patient_id": str(outsider.pk), "scheduled_start": START}, format="json"
    )

    assert_error(response, 403, "PERMISSION_DENIED")


def test_anonymous_cannot_book(anon_client, doctor, frozen_now):
    response = anon_client.post(URL, {"doctor_id": str(doctor.pk), "scheduled_start": START}, format="json")

    assert_error(response, 401, "NOT_AUTHENTICATED")


def test_start_in_the_past_is_refused(patient_client, doctor, frozen_now):
    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "scheduled_start": "2026-03-02T08:59:59Z"}, format="json"
    )

    assert_error(response, 400, "START_IN_PAST")


def test_start_beyond_the_booking_horizon_is_refused(patient_client, doctor, frozen_now):
    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "scheduled_start": "9999-12-31T23:59:00Z"}, format="json"
    )

    assert_error(response, 400, "START_TOO_FAR")


def test_booking_yourself_is_refused(staff_client, doctor, frozen_now):
    response = staff_client.post(
        URL, {"doctor_id": str(doctor.pk), "patient_id": str(doctor.pk), "scheduled_start": START}, format="json"
    )

    assert_error(response, 400, "SAME_USER")


def test_unverified_doctor_cannot_be_booked(patient_client, frozen_now):
    unverified = DoctorFactory(doctor_profile__is_verified=False)

    response = patient_client.post(URL, {"doctor_id": str(unverified.pk), "scheduled_start": START}, format="json")

    assert_error(response, 400, "DOCTOR_NOT_BOOKABLE")
    assert not Session.objects.exists()


def test_suspended_doctor_cannot_be_booked(patient_client, frozen_now):
    suspended = DoctorFactory(is_active=False)

    response = patient_client.post(URL, {"doctor_id": str(suspended.pk), "scheduled_start": START}, format="json")

    assert_error(response, 400, "DOCTOR_NOT_BOOKABLE")


def test_inactive_patient_cannot_be_booked(staff_client, doctor, frozen_now):
    inactive = PatientFactory(is_active=False)

    response = staff_client.post(
        URL, {"doctor_id": str(doctor.pk), "patient_id": str(inactive.pk), "scheduled_start": START}, format="json"
    )

    assert_error(response, 400, "PATIENT_INACTIVE")


def test_a_patient_id_as_doctor_is_not_found(patient_client, outsider, frozen_now):
    response = patient_client.post(URL, {"doctor_id": str(outsider.pk), "scheduled_start": START}, format="json")

    assert_error(response, 404, "NOT_FOUND")


def test_unknown_doctor_id_is_not_found(patient_client, frozen_now):
    response = patient_client.post(
        URL, {"doctor_id": "00000000-0000-4000-8000-000000000000", "scheduled_start": START}, format="json"
    )

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"doctor_id": "not-a-uuid", "scheduled_start": START}, "doctor_id"),
        ({"scheduled_start": "tomorrow at noon"}, "scheduled_start"),
        ({"scheduled_start": "2026-02-30T10:00:00Z"}, "scheduled_start"),
        ({"scheduled_start": "99999-01-01T00:00:00Z"}, "scheduled_start"),
        ({"scheduled_start": 12345}, "scheduled_start"),
        ({"scheduled_start": START, "duration_minutes": 10**12}, "duration_minutes"),
        ({"scheduled_start": START, "duration_minutes": "long"}, "duration_minutes"),
        ({"scheduled_start": START, "session_type": "surgery"}, "session_type"),
    ],
)
def test_malformed_input_is_a_validation_error(patient_client, doctor, frozen_now, payload, field):
    payload = {"doctor_id": str(doctor.pk), **payload}

    response = patient_client.post(URL, payload, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]


def test_duration_outside_the_configured_range_is_refused(patient_client, doctor, frozen_now):
    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "scheduled_start": START, "duration_minutes": 5}, format="json"
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "duration_minutes" in error["details"]


def test_malformed_json_body_is_refused(patient_client, frozen_now):
    response = patient_client.post(URL, "{not json", content_type="application/json")

    assert_error(response, 400, "MALFORMED_REQUEST")


# --- Overlap and buffer ------------------------------------------------------------------------


@pytest.fixture
def existing(doctor, patient, frozen_now):
    """The doctor is busy 15:00-15:50 on 5 March (blocked until 16:20 with the buffer)."""
    return SessionFactory(doctor=doctor, scheduled_start=datetime(2026, 3, 5, 15, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "start",
    [
        "2026-03-05T15:20:00Z",  # inside the existing session
        "2026-03-05T16:19:00Z",  # 29 minutes after its end
        "2026-03-05T13:41:00Z",  # would end 14:31, 29 minutes before its start
    ],
)
def test_a_slot_closer_than_the_buffer_to_the_doctors_session_conflicts(patient_client, doctor, existing, start):
    response = patient_client.post(URL, {"doctor_id": str(doctor.pk), "scheduled_start": start}, format="json")

    error = assert_error(response, 409, "SCHEDULE_CONFLICT")
    assert error["details"] == {"conflicts_with": "doctor"}
    assert Session.objects.count() == 1


@pytest.mark.parametrize(
    "start",
    [
        "2026-03-05T16:20:00Z",  # exactly the buffer after its end
        "2026-03-05T13:40:00Z",  # would end 14:30, exactly the buffer before its start
    ],
)
def test_a_slot_exactly_the_buffer_away_is_free(patient_client, doctor, existing, start):
    response = patient_client.post(URL, {"doctor_id": str(doctor.pk), "scheduled_start": start}, format="json")

    assert response.status_code == 201, response.content
    assert Session.objects.count() == 2


def test_the_patient_cannot_be_double_booked_with_another_doctor(patient_client, patient, frozen_now):
    # given the patient is busy with one doctor
    SessionFactory(patient=patient, scheduled_start=datetime(2026, 3, 5, 15, 0, tzinfo=UTC))
    other_doctor = DoctorFactory()

    # when they book another doctor 40 minutes later
    response = patient_client.post(
        URL, {"doctor_id": str(other_doctor.pk), "scheduled_start": "2026-03-05T15:40:00Z"}, format="json"
    )

    error = assert_error(response, 409, "SCHEDULE_CONFLICT")
    assert error["details"] == {"conflicts_with": "patient"}


def test_a_cancelled_session_frees_the_slot(patient_client, doctor, existing):
    Session.objects.filter(pk=existing.pk).update(status=SessionStatus.CANCELLED)

    response = patient_client.post(URL, {"doctor_id": str(doctor.pk), "scheduled_start": START}, format="json")

    assert response.status_code == 201, response.content


def test_the_buffer_is_a_setting(patient_client, doctor, existing, settings):
    # given no buffer, a session may start right when the existing one's blocked range ends
    settings.SESSION_BUFFER_MINUTES = 0
    Session.objects.filter(pk=existing.pk).update(blocked_until=existing.scheduled_end)

    response = patient_client.post(
        URL, {"doctor_id": str(doctor.pk), "scheduled_start": "2026-03-05T15:50:00Z"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Session.objects.get(pk=response.json()["id"]).blocked_until == datetime(2026, 3, 5, 16, 40, tzinfo=UTC)


# --- Time zones ----------------------------------------------------------------------------------


def test_booking_across_a_daylight_saving_change_lands_at_the_right_instant(doctor_client, doctor, patient):
    """The doctor is in New York. On Monday 2 March (EST, UTC-5) they book 10:00 local on Monday
    9 March, after clocks went forward on 8 March (EDT, UTC-4): the session is at 14:00 UTC, not
    15:00, and it is on their local 9 March, not 8 March."""
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False):
        response = doctor_client.post(
            URL, {"patient_id": str(patient.pk), "scheduled_start": "2026-03-09T10:00:00-04:00"}, format="json"
        )
    assert response.status_code == 201, response.content
    assert response.json()["scheduled_start"] == "2026-03-09T14:00:00Z"
    session_id = response.json()["id"]

    on_ninth = doctor_client.get(URL, {"local_date": "2026-03-09"}).json()["results"]
    on_eighth = doctor_client.get(URL, {"local_date": "2026-03-08"}).json()["results"]

    assert [row["id"] for row in on_ninth] == [session_id]
    assert on_eighth == []


def test_the_local_day_of_a_daylight_saving_change_has_23_hours(doctor_client, doctor, patient):
    """8 March 2026 in New York runs from 05:00 UTC to 04:00 UTC the next day (23 hours)."""
    late_on_the_eighth = SessionFactory(
        doctor=doctor, patient=patient, scheduled_start=datetime(2026, 3, 9, 3, 30, tzinfo=UTC)
    )  # 23:30 EDT on 8 March
    SessionFactory(doctor=doctor, scheduled_start=datetime(2026, 3, 9, 4, 50, tzinfo=UTC))  # 00:50 EDT on 9 March
    SessionFactory(doctor=doctor, scheduled_start=datetime(2026, 3, 8, 4, 30, tzinfo=UTC))  # 23:30 EST on 7 March

    response = doctor_client.get(URL, {"local_date": "2026-03-08"})

    assert [row["id"] for row in response.json()["results"]] == [str(late_on_the_eighth.pk)]

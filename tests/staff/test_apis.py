"""The staff console's REST API: dashboard, analytics, user and call management; who is
refused; bad input; query budgets."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from presence.models import PresenceStatus, UserPresence
from sessions.models import SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory
from tests.video_calls.call_helpers import EventRecorder, open_session
from tests.video_calls.factories import CallFactory, CallParticipantFactory, CallQualitySampleFactory
from video_calls.models import Call, CallParticipant, CallStatus, ParticipantStatus

pytestmark = pytest.mark.django_db

# A Wednesday afternoon: this week began on Monday 2026-03-02.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
STAFF_PATHS = [
    ("get", "/api/v1/staff/dashboard/"),
    ("get", "/api/v1/staff/analytics/?start=2026-03-01&end=2026-03-04"),
    ("get", "/api/v1/staff/users/"),
    ("get", "/api/v1/staff/calls/"),
]


@pytest.fixture
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


# --- Who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), STAFF_PATHS)
def test_patients_and_doctors_are_refused_with_403(patient_client, doctor_client, method, path):
    assert_error(getattr(patient_client, method)(path), 403, "PERMISSION_DENIED")
    assert_error(getattr(doctor_client, method)(path), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(("method", "path"), STAFF_PATHS)
def test_anonymous_callers_are_refused_with_401(anon_client, method, path):
    assert getattr(anon_client, method)(path).status_code == 401


def test_patients_cannot_suspend_delete_or_end_calls(patient_client, doctor):
    call = CallFactory()
    assert_error(patient_client.post(f"/api/v1/staff/users/{doctor.pk}/suspend/"), 403, "PERMISSION_DENIED")
    assert_error(patient_client.delete(f"/api/v1/staff/users/{doctor.pk}/"), 403, "PERMISSION_DENIED")
    assert_error(patient_client.post(f"/api/v1/staff/calls/{call.pk}/end/"), 403, "PERMISSION_DENIED")
    doctor.refresh_from_db()
    call.refresh_from_db()
    assert doctor.is_active and call.status == CallStatus.ONGOING


# --- Dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_what_is_happening_now(frozen_now, staff_client, patient):
    # given two ongoing calls and one ended
    first, _ = CallFactory(), CallFactory()
    CallFactory(completed=True)
    # two sessions today (one cancelled, not counted), one tomorrow, one no-show on Monday, one last week
    SessionFactory(scheduled_start=NOW + timedelta(hours=2))
    SessionFactory(scheduled_start=NOW - timedelta(hours=5), status=SessionStatus.COMPLETED)
    SessionFactory(scheduled_start=NOW + timedelta(hours=1), status=SessionStatus.CANCELLED)
    SessionFactory(scheduled_start=NOW + timedelta(days=1))
    SessionFactory(scheduled_start=NOW - timedelta(days=2), status=SessionStatus.NO_SHOW)
    SessionFactory(scheduled_start=NOW - timedelta(days=7), status=SessionStatus.NO_SHOW)
    # quality: audio excellent (5) and video fair (3) in the last day; an old bad report ignored
    participant = CallParticipantFactory(call=first)
    CallQualitySampleFactory(
        participant=participant,
        call=first,
        recorded_at=NOW - timedelta(hours=1),
        audio_quality="excellent",
        video_quality="fair",
    )
    CallQualitySampleFactory(
        participant=participant,
        call=first,
        recorded_at=NOW - timedelta(days=2),
        audio_quality="bad",
        video_quality="bad",
    )
    UserPresence.objects.create(user=patient, status=PresenceStatus.ONLINE)
    UserPresence.objects.create(user=DoctorFactory(), status=PresenceStatus.OFFLINE)

    response = staff_client.get("/api/v1/staff/dashboard/")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "calls_active": 2,
        "sessions_today": 2,
        "no_shows_this_week": 1,
        "average_call_quality": 4.0,
        "quality_reports": 2,
        "users_online": 1,
        "time_zone": "UTC",
        "at": "2026-03-04T15:00:00Z",
    }


def test_dashboard_counts_today_in_the_clinics_zone(frozen_now, staff_client, settings):
    # given a clinic in Tokyo, where it is already 00:00 on Thursday at 15:00 UTC
    settings.CLINIC_TIME_ZONE = "Asia/Tokyo"
    SessionFactory(scheduled_start=NOW + timedelta(hours=2))  # Thursday 02:00 in Tokyo: today
    SessionFactory(scheduled_start=NOW - timedelta(hours=2))  # Wednesday 22:00 in Tokyo: yesterday

    figures = staff_client.get("/api/v1/staff/dashboard/").json()

    assert (figures["sessions_today"], figures["time_zone"]) == (1, "Asia/Tokyo")


def test_dashboard_without_quality_reports_says_null(frozen_now, staff_client):
    assert staff_client.get("/api/v1/staff/dashboard/").json()["average_call_quality"] is None


# --- Analytics --------------------------------------------------------------------------------


def _dated_call(at: datetime, **fields) -> Call:
    with time_machine.travel(at, tick=False):
        return CallFactory(**fields)


def test_analytics_per_day(frozen_now, staff_client):
    # given, on March 2: two calls (one completed in 600 s), a completed session and a no-show;
    # on March 3 nothing; on March 4 a cancelled session and a new doctor
    day_one = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    _dated_call(day_one, completed=True, duration_seconds=600)
    _dated_call(day_one + timedelta(hours=1), status=CallStatus.MISSED)
    SessionFactory(scheduled_start=day_one, status=SessionStatus.COMPLETED)
    SessionFactory(scheduled_start=day_one + timedelta(hours=3), status=SessionStatus.NO_SHOW)
    SessionFactory(scheduled_start=NOW, status=SessionStatus.CANCELLED)
    User.objects.update(date_joined=datetime(2026, 2, 1, tzinfo=UTC))  # the users made so far joined earlier
    PatientFactory(date_joined=day_one)
    DoctorFactory(date_joined=NOW)

    response = staff_client.get("/api/v1/staff/analytics/", {"start": "2026-03-02", "end": "2026-03-04"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["granularity"], body["time_zone"]) == ("day", "UTC")
    assert body["periods"] == [
        {
            "period_start": "2026-03-02",
            "calls": 2,
            "calls_completed": 1,
            "average_call_seconds": 600.0,
            "sessions": 2,
            "sessions_completed": 1,
            "no_shows": 1,
            "completion_rate": 0.5,
            "no_show_rate": 0.5,
            "new_users": {"patient": 1, "doctor": 0, "staff": 0},
        },
        {
            "period_start": "2026-03-03",
            "calls": 0,
            "calls_completed": 0,
            "average_call_seconds": None,
            "sessions": 0,
            "sessions_completed": 0,
            "no_shows": 0,
            "completion_rate": None,
            "no_show_rate": None,
            "new_users": {"patient": 0, "doctor": 0, "staff": 0},
        },
        {
            "period_start": "2026-03-04",
            "calls": 0,
            "calls_completed": 0,
            "average_call_seconds": None,
            "sessions": 1,
            "sessions_completed": 0,
            "no_shows": 0,
            "completion_rate": None,
            "no_show_rate": None,
            "new_users": {"patient": 0, "doctor": 1, "staff": 0},
        },
    ]


def test_analytics_per_week_and_month(frozen_now, staff_client):
    # given sessions on Sunday March 1 and Monday March 2 (two ISO weeks, one month) and April 1
    for day in (datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)):
        SessionFactory(scheduled_start=day, status=SessionStatus.COMPLETED)
    SessionFactory(scheduled_start=datetime(2026, 4, 1, 12, tzinfo=UTC), status=SessionStatus.NO_SHOW)
    span = {"start": "2026-03-01", "end": "2026-04-01"}

    weeks = staff_client.get("/api/v1/staff/analytics/", {**span, "granularity": "week"}).json()["periods"]
    months = staff_client.get("/api/v1/staff/analytics/", {**span, "granularity": "month"}).json()["periods"]

    assert [(week["period_start"], week["sessions"]) for week in weeks] == [
        ("2026-02-23", 1),
        ("2026-03-02", 1),
        ("2026-03-09", 0),
        ("2026-03-16", 0),
        ("2026-03-23", 0),
        ("2026-03-30", 1),
    ]
    assert [(month["period_start"], month["sessions"], month["no_show_rate"]) for month in months] == [
        ("2026-03-01", 2, 0.0),
        ("2026-04-01", 1, 1.0),
    ]


def test_analytics_queries_do_not_grow_with_the_data(frozen_now, staff_client, django_assert_max_num_queries):
    for day in range(10):
        SessionFactory(scheduled_start=datetime(2026, 1, 1 + day, 9, tzinfo=UTC))
        _dated_call(datetime(2026, 1, 1 + day, 9, tzinfo=UTC))
    # authentication's user lookup, three grouped queries
    with django_assert_max_num_queries(5):
        staff_client.get("/api/v1/staff/analytics/", {"start": "2026-01-01", "end": "2026-01-31"})


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-03-04", "end": "2026-03-01"}, "end"),
        ({"start": "2026-03-01", "end": "2026-03-04", "granularity": "hour"}, "granularity"),
        ({"start": "yesterday", "end": "2026-03-04"}, "start"),
        ({"end": "2026-03-04"}, "start"),
        ({"start": "2020-01-01", "end": "2026-03-04"}, "end"),
    ],
)
def test_analytics_refuses_a_bad_range(staff_client, query, field):
    error = assert_error(staff_client.get("/api/v1/staff/analytics/", query), 400, "VALIDATION_ERROR")
    assert field in error["details"]


# --- Users ------------------------------------------------------------------------------------


def test_user_list_searches_and_filters(staff_client, patient, doctor, outsider):
    suspended = PatientFactory(first_name="Alicia", last_name="Gone", is_active=False)

    by_name = staff_client.get("/api/v1/staff/users/", {"search": "ali"}).json()
    doctors = staff_client.get("/api/v1/staff/users/", {"role": "doctor"}).json()
    suspended_ones = staff_client.get("/api/v1/staff/users/", {"status": "suspended"}).json()

    assert {row["id"] for row in by_name["results"]} == {str(patient.pk), str(suspended.pk)}
    assert [row["id"] for row in doctors["results"]] == [str(doctor.pk)]
    assert [(row["id"], row["status"]) for row in suspended_ones["results"]] == [(str(suspended.pk), "suspended")]


def test_user_list_refuses_an_unknown_filter_value(staff_client):
    error = assert_error(staff_client.get("/api/v1/staff/users/", {"status": "asleep"}), 400, "VALIDATION_ERROR")
    assert "status" in error["details"]


def test_user_list_query_count_does_not_grow_with_page_size(staff_client, staff):
    for _ in range(3):
        DoctorFactory()
        PatientFactory()
    with CaptureQueriesContext(connection) as small:
        assert len(staff_client.get("/api/v1/staff/users/", {"page_size": 2}).json()["results"]) == 2
    for _ in range(10):
        DoctorFactory()
        PatientFactory()
    with CaptureQueriesContext(connection) as large:
        assert len(staff_client.get("/api/v1/staff/users/", {"page_size": 20}).json()["results"]) == 20
    assert len(large) == len(small)


def test_user_detail_and_update(staff_client, doctor):
    doctor.doctor_profile.is_verified = False
    doctor.doctor_profile.save()

    response = staff_client.patch(
        f"/api/v1/staff/users/{doctor.pk}/",
        {"first_name": "Greg", "display_name": "Dr. House", "doctor_verified": True, "role": "staff"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = staff_client.get(f"/api/v1/staff/users/{doctor.pk}/").json()
    assert (body["first_name"], body["display_name"], body["doctor_verified"], body["role"]) == (
        "Greg",
        "Dr. House",
        True,
        "doctor",
    )


def test_unknown_user_is_404(staff_client):
    assert_error(staff_client.get("/api/v1/staff/users/00000000-0000-0000-0000-000000000000/"), 404, "USER_NOT_FOUND")


def test_suspend_revokes_tokens_and_reactivate_allows_sign_in(staff_client, patient, patient_client):
    # when staff suspend the patient
    response = staff_client.post(f"/api/v1/staff/users/{patient.pk}/suspend/")

    # then they are suspended and their token no longer works
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    assert patient_client.get("/api/v1/me/").status_code == 401
    # and reactivating lets them in again with new tokens
    assert staff_client.post(f"/api/v1/staff/users/{patient.pk}/reactivate/").json()["status"] == "active"
    patient.refresh_from_db()
    assert client_for(patient).get("/api/v1/me/").status_code == 200


def test_staff_cannot_suspend_or_delete_themselves(staff_client, staff):
    assert_error(staff_client.post(f"/api/v1/staff/users/{staff.pk}/suspend/"), 409, "CANNOT_ACT_ON_SELF")
    assert_error(staff_client.delete(f"/api/v1/staff/users/{staff.pk}/"), 409, "CANNOT_ACT_ON_SELF")
    staff.refresh_from_db()
    assert staff.is_active


def test_delete_anonymizes_and_keeps_the_clinical_record(staff_client, patient, doctor, patient_client):
    # given a patient with a session and a call
    session = SessionFactory(patient=patient, doctor=doctor, status=SessionStatus.COMPLETED)
    call = CallFactory(initiated_by=doctor)
    CallParticipantFactory(call=call, user=patient)
    patient.phone_number = "+14155550199"
    patient.display_name = "Ally"
    patient.save()

    # when staff delete the account
    response = staff_client.delete(f"/api/v1/staff/users/{patient.pk}/")

    # then it is deactivated and anonymized, signed out, and the record still points at it
    assert response.status_code == 204
    patient.refresh_from_db()
    assert (patient.is_active, patient.email, patient.phone_number, patient.display_name) == (False, None, "", "")
    assert (patient.first_name, patient.last_name, patient.has_usable_password()) == ("Deleted", "user", False)
    assert patient.patient_profile.date_of_birth is None
    assert patient_client.get("/api/v1/me/").status_code == 401
    session.refresh_from_db()
    assert session.patient_id == patient.pk
    assert CallParticipant.objects.filter(call=call, user=patient).exists()
    listed = staff_client.get("/api/v1/staff/users/", {"status": "deleted"}).json()["results"]
    assert [row["id"] for row in listed] == [str(patient.pk)]
    # and a deleted account cannot be brought back
    assert_error(staff_client.post(f"/api/v1/staff/users/{patient.pk}/reactivate/"), 409, "USER_DELETED")


# --- Calls ------------------------------------------------------------------------------------


def test_call_list_names_the_participants_and_filters(staff_client):
    live = CallFactory()
    CallParticipantFactory(call=live, user=live.initiated_by)
    CallFactory(completed=True)

    page = staff_client.get("/api/v1/staff/calls/", {"status": "active"}).json()

    [row] = page["results"]
    assert row["id"] == str(live.pk)
    assert row["initiated_by"]["name"] == live.initiated_by.shown_name
    assert [participant["user"]["name"] for participant in row["participants"]] == [live.initiated_by.shown_name]


def test_call_list_query_count_does_not_grow_with_page_size(staff_client):
    def calls(count: int) -> None:
        for _ in range(count):
            call = CallFactory()
            CallParticipantFactory(call=call, user=call.initiated_by)
            CallParticipantFactory(call=call)

    calls(2)
    with CaptureQueriesContext(connection) as small:
        assert len(staff_client.get("/api/v1/staff/calls/", {"page_size": 2}).json()["results"]) == 2
    calls(10)
    with CaptureQueriesContext(connection) as large:
        assert len(staff_client.get("/api/v1/staff/calls/", {"page_size": 12}).json()["results"]) == 12
    assert len(large) == len(small)


def test_call_list_refuses_an_unknown_status(staff_client):
    error = assert_error(staff_client.get("/api/v1/staff/calls/", {"status": "paused"}), 400, "VALIDATION_ERROR")
    assert "status" in error["details"]


def test_call_detail_and_participants(staff_client):
    call = CallFactory()
    CallParticipantFactory(call=call, user=call.initiated_by)

    detail = staff_client.get(f"/api/v1/staff/calls/{call.pk}/").json()
    participants = staff_client.get(f"/api/v1/staff/calls/{call.pk}/participants/").json()

    assert detail["id"] == str(call.pk) and detail["end_reason"] is None
    assert [row["user"]["id"] for row in participants["results"]] == [str(call.initiated_by.pk)]
    assert_error(staff_client.get("/api/v1/staff/calls/00000000-0000-0000-0000-000000000000/"), 404, "CALL_NOT_FOUND")


def test_staff_end_any_call(staff_client, django_capture_on_commit_callbacks):
    call = CallFactory()
    CallParticipantFactory(call=call, user=call.initiated_by, status=ParticipantStatus.JOINED)
    recorder = EventRecorder()
    recorder.listen_call(call)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/api/v1/staff/calls/{call.pk}/end/")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["end_reason"]) == ("completed", "staff_ended")
    assert "call.ended" in [event["type"] for event in recorder.for_call(call)]
    # ending it again is a conflict
    assert_error(staff_client.post(f"/api/v1/staff/calls/{call.pk}/end/"), 409, "INVALID_CALL_STATE")


def test_staff_remove_a_participant(staff, doctor, patient, django_capture_on_commit_callbacks):
    # given a session room in which the doctor and the patient are connected
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False):
        session = open_session(doctor, patient)
        doctor_client, patient_client, staff_client = client_for(doctor), client_for(patient), client_for(staff)
        room_id = doctor_client.post(f"/api/v1/sessions/{session.pk}/room/").json()["id"]
        doctor_client.post(f"/api/v1/calls/{room_id}/join/")
        patient_client.post(f"/api/v1/calls/{room_id}/join/")  # the waiting room
        doctor_client.post(f"/api/v1/calls/{room_id}/participants/{patient.pk}/admit/")
        assert patient_client.post(f"/api/v1/calls/{room_id}/join/").status_code == 200
        recorder = EventRecorder()
        recorder.listen_user(patient)
        recorder.listen_call(Call.objects.get(pk=room_id))

        # when staff remove the patient
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(f"/api/v1/staff/calls/{room_id}/participants/{patient.pk}/remove/")

        # then the patient is told, the others see them leave, and they cannot rejoin
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "removed"
        assert "call.participant_removed" in [event["type"] for event in recorder.for_user(patient)]
        left = [
            event
            for event in recorder.for_call(Call.objects.get(pk=room_id))
            if event["type"] == "call.participant_left"
        ]
        assert left[0]["data"]["reason"] == "removed"
        assert_error(patient_client.post(f"/api/v1/calls/{room_id}/join/"), 403, "PARTICIPANT_REMOVED")
        assert_error(
            staff_client.post(f"/api/v1/staff/calls/{room_id}/participants/{PatientFactory().pk}/remove/"),
            404,
            "PARTICIPANT_NOT_FOUND",
        )


def test_analytics_periods_are_the_clinics_days(frozen_now, staff_client, settings):
    # given a clinic in New York and a session at 03:00 UTC on March 3, 22:00 on March 2 there
    settings.CLINIC_TIME_ZONE = "America/New_York"
    SessionFactory(scheduled_start=datetime(2026, 3, 3, 3, 0, tzinfo=UTC))

    periods = staff_client.get("/api/v1/staff/analytics/", {"start": "2026-03-02", "end": "2026-03-03"}).json()[
        "periods"
    ]

    assert [(period["period_start"], period["sessions"]) for period in periods] == [
        ("2026-03-02", 1),
        ("2026-03-03", 0),
    ]


def test_an_admin_flag_on_a_doctor_account_does_not_open_the_console(doctor):
    doctor.is_staff = True
    doctor.save(update_fields=["is_staff"])

    assert_error(client_for(doctor).get("/api/v1/staff/dashboard/"), 403, "PERMISSION_DENIED")

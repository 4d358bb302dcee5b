"""Confirm, cancel and reschedule through the API; the video call's join and completion; the
no-show and lapse sweeps and the events they send. Every state change is conditional, so a second
attempt gets a 409."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core.exceptions import Conflict, NotFound
from sessions import services
from sessions.join_window import join_decision, join_window_bounds
from sessions.models import NoShowParty, PaymentStatus, Session, SessionStatus
from sessions.services.lifecycle import LAPSED_REASON
from sessions.tasks import sessions_lapse_requests, sessions_mark_no_shows
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.conftest import NOW
from tests.sessions.factories import ConfirmedPaidSessionFactory, SessionFactory
from tests.video_calls.call_helpers import EventRecorder

pytestmark = pytest.mark.django_db


def url(session, action: str = "") -> str:
    return f"/api/v1/sessions/{session.pk}/" + (f"{action}/" if action else "")


# --- Confirm -------------------------------------------------------------------------------------


def test_the_doctor_confirms_a_requested_session(
    doctor_client, session, doctor, patient, django_capture_on_commit_callbacks
):
    recorder = EventRecorder()
    recorder.listen_user(doctor)
    recorder.listen_user(patient)
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor_client.post(url(session, "confirm"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "confirmed"
    session.refresh_from_db()
    assert (session.status, session.confirmed_at) == (SessionStatus.CONFIRMED, NOW)
    # the session.confirmed event, to both participants
    assert [event["type"] for event in recorder.for_user(doctor)] == ["session.confirmed"]
    assert [event["type"] for event in recorder.for_user(patient)] == ["session.confirmed"]


def test_staff_confirm_any_session(staff_client, session):
    response = staff_client.post(url(session, "confirm"))

    assert response.status_code == 200, response.content


def test_the_patient_cannot_confirm(patient_client, session):
    response = patient_client.post(url(session, "confirm"))

    assert_error(response, 403, "PERMISSION_DENIED")
    session.refresh_from_db()
    assert session.status == SessionStatus.REQUESTED


def test_another_doctor_does_not_see_the_session(session):
    response = client_for(DoctorFactory()).post(url(session, "confirm"))

    assert_error(response, 404, "NOT_FOUND")


def test_another_patient_does_not_see_the_session(outsider_client, session):
    assert_error(outsider_client.post(url(session, "confirm")), 404, "NOT_FOUND")
    assert_error(outsider_client.get(url(session)), 404, "NOT_FOUND")


def test_anonymous_is_refused(anon_client, session):
    assert_error(anon_client.post(url(session, "confirm")), 401, "NOT_AUTHENTICATED")


def test_confirming_twice_conflicts(doctor_client, session):
    doctor_client.post(url(session, "confirm"))

    response = doctor_client.post(url(session, "confirm"))

    error = assert_error(response, 409, "INVALID_SESSION_STATE")
    assert error["details"]["status"] == "confirmed"


def test_a_stale_copy_cannot_confirm_a_cancelled_session(doctor, session):
    """The conditional update reads the row, not the caller's copy."""
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)

    with pytest.raises(Conflict) as raised:
        services.session_confirm(session=session, user=doctor)

    assert raised.value.code == "INVALID_SESSION_STATE"
    assert Session.objects.get(pk=session.pk).status == SessionStatus.CANCELLED


def test_a_request_past_its_start_cannot_be_confirmed():
    """It has lapsed: the lapse sweep cancels it, and until it runs confirming is refused."""
    late = SessionFactory(scheduled_start=NOW - timedelta(minutes=1))

    response = client_for(late.doctor).post(url(late, "confirm"))

    error = assert_error(response, 409, "REQUEST_LAPSED")
    assert error["details"]["status"] == "requested"
    assert Session.objects.get(pk=late.pk).status == SessionStatus.REQUESTED


def test_a_request_can_be_confirmed_until_just_before_its_start(doctor, session):
    confirmed = services.session_confirm(
        session=session, user=doctor, now=session.scheduled_start - timedelta(microseconds=1)
    )

    assert confirmed.status == SessionStatus.CONFIRMED


# --- Cancel --------------------------------------------------------------------------------------


def test_the_patient_cancels_with_enough_notice(patient_client, patient, session):
    response = patient_client.post(url(session, "cancel"), {"reason": "Feeling better"}, format="json")

    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED
    assert (session.cancelled_by, session.cancelled_at, session.cancellation_reason) == (
        patient,
        NOW,
        "Feeling better",
    )
    assert session.refund_requested_at is None  # nothing was paid


def test_the_patient_cannot_cancel_inside_the_notice_period(patient_client, session):
    with time_machine.travel(session.scheduled_start - timedelta(hours=23), tick=False):
        response = client_for(session.patient).post(url(session, "cancel"), {}, format="json")

    error = assert_error(response, 409, "NOTICE_PERIOD_PASSED")
    assert error["details"] == {"notice_hours": 24}
    assert Session.objects.get(pk=session.pk).status == SessionStatus.REQUESTED


def test_the_doctor_may_cancel_late(session):
    with time_machine.travel(session.scheduled_start - timedelta(hours=1), tick=False):
        response = client_for(session.doctor).post(url(session, "cancel"), {}, format="json")

    assert response.status_code == 200, response.content


def test_cancelling_a_paid_session_marks_it_for_refund(staff_client, doctor, patient):
    paid = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)

    response = staff_client.post(url(paid, "cancel"), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["refund_requested_at"] == "2026-03-02T09:00:00Z"
    paid.refresh_from_db()
    assert (paid.payment_status, paid.refund_requested_at) == (PaymentStatus.PAID, NOW)


def test_cancelling_twice_conflicts(patient_client, session):
    patient_client.post(url(session, "cancel"), {}, format="json")

    assert_error(patient_client.post(url(session, "cancel"), {}, format="json"), 409, "INVALID_SESSION_STATE")


def test_an_over_long_cancellation_reason_is_a_validation_error(patient_client, session):
    response = patient_client.post(url(session, "cancel"), {"reason": "x" * 1001}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "reason" in error["details"]


# --- Reschedule ----------------------------------------------------------------------------------


def test_the_doctor_reschedules_and_the_session_stays_confirmed(doctor_client, session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CONFIRMED)

    response = doctor_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-06T10:00:00Z"}, format="json"
    )

    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.scheduled_start == datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    assert session.blocked_until == datetime(2026, 3, 6, 11, 20, tzinfo=UTC)
    assert session.status == SessionStatus.CONFIRMED


def test_a_patient_reschedule_needs_the_doctor_to_confirm_again(patient_client, session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CONFIRMED, confirmed_at=NOW)

    response = patient_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-06T10:00:00Z"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "requested"
    assert response.json()["confirmed_at"] is None


def test_rescheduling_onto_another_session_conflicts(doctor_client, doctor, session):
    SessionFactory(doctor=doctor, scheduled_start=datetime(2026, 3, 6, 10, 0, tzinfo=UTC))

    response = doctor_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-06T10:30:00Z"}, format="json"
    )

    assert_error(response, 409, "SCHEDULE_CONFLICT")
    assert Session.objects.get(pk=session.pk).scheduled_start == datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


def test_rescheduling_within_its_own_old_slot_is_allowed(doctor_client, session):
    response = doctor_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-05T15:10:00Z"}, format="json"
    )

    assert response.status_code == 200, response.content


def test_rescheduling_into_the_past_is_refused(doctor_client, session):
    response = doctor_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-01T10:00:00Z"}, format="json"
    )

    assert_error(response, 400, "START_IN_PAST")


def test_rescheduling_a_cancelled_session_conflicts(doctor_client, session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)

    response = doctor_client.post(
        url(session, "reschedule"), {"scheduled_start": "2026-03-06T10:00:00Z"}, format="json"
    )

    assert_error(response, 409, "INVALID_SESSION_STATE")


def test_rescheduling_with_a_malformed_date_is_a_validation_error(doctor_client, session):
    response = doctor_client.post(url(session, "reschedule"), {"scheduled_start": "next week"}, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")


# --- Joins and completion (called by the video call) ----------------------------------------------


def test_the_first_join_starts_a_confirmed_session(doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)
    joined = session.scheduled_start - timedelta(minutes=5)

    session = services.session_record_join(session=session, user=patient, at=joined)

    assert (session.status, session.actual_start, session.patient_joined_at) == (
        SessionStatus.IN_PROGRESS,
        joined,
        joined,
    )
    assert session.doctor_joined_at is None


def test_later_joins_keep_the_first_join_time(doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)
    first = session.scheduled_start
    services.session_record_join(session=session, user=patient, at=first)
    services.session_record_join(session=session, user=doctor, at=first + timedelta(minutes=2))

    session = services.session_record_join(session=session, user=patient, at=first + timedelta(minutes=9))

    assert session.patient_joined_at == first
    assert session.doctor_joined_at == first + timedelta(minutes=2)
    assert session.actual_start == first


def test_an_outsider_join_is_not_recorded(outsider, doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)

    with pytest.raises(NotFound):
        services.session_record_join(session=session, user=outsider, at=session.scheduled_start)

    assert Session.objects.get(pk=session.pk).status == SessionStatus.CONFIRMED


def test_completion_records_the_call_times(doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)
    started, ended = session.scheduled_start, session.scheduled_start + timedelta(minutes=47)
    services.session_record_join(session=session, user=patient, at=started)

    session = services.session_complete(session=session, started_at=started, ended_at=ended)

    assert (session.status, session.actual_start, session.actual_end) == (SessionStatus.COMPLETED, started, ended)


def test_only_a_session_in_progress_completes(doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)

    with pytest.raises(Conflict) as raised:
        services.session_complete(session=session, started_at=NOW, ended_at=NOW)

    assert raised.value.code == "INVALID_SESSION_STATE"


# --- No-show sweep -------------------------------------------------------------------------------


@pytest.fixture
def past_start():
    """A start whose join window (which closes two hours after it) closed a second ago."""
    return NOW - timedelta(hours=2, seconds=1)


def _event(session: Session, status: str) -> dict:
    """The payload every session.* event carries (docs/sessions.md)."""
    return {
        "session_id": str(session.pk),
        "status": status,
        "payment_status": session.payment_status,
        "scheduled_start": session.scheduled_start.isoformat().replace("+00:00", "Z"),
    }


def test_sweep_marks_sessions_whose_window_closed_by_who_was_absent(past_start, django_capture_on_commit_callbacks):
    nobody = ConfirmedPaidSessionFactory(scheduled_start=past_start)
    patient_only = ConfirmedPaidSessionFactory(
        scheduled_start=past_start, status=SessionStatus.IN_PROGRESS, patient_joined_at=past_start
    )
    doctor_only = ConfirmedPaidSessionFactory(
        scheduled_start=past_start, status=SessionStatus.IN_PROGRESS, doctor_joined_at=past_start
    )
    both = ConfirmedPaidSessionFactory(
        scheduled_start=past_start,
        status=SessionStatus.IN_PROGRESS,
        doctor_joined_at=past_start,
        patient_joined_at=past_start,
    )
    window_still_open = ConfirmedPaidSessionFactory(scheduled_start=NOW - timedelta(hours=2) + timedelta(seconds=1))
    requested = SessionFactory(scheduled_start=past_start)

    with django_capture_on_commit_callbacks(execute=True):
        assert sessions_mark_no_shows.delay().get() == 3

    rows = {s.pk: s for s in Session.objects.all()}
    assert (rows[nobody.pk].status, rows[nobody.pk].no_show_party) == (SessionStatus.NO_SHOW, NoShowParty.BOTH)
    assert (rows[patient_only.pk].status, rows[patient_only.pk].no_show_party) == (
        SessionStatus.NO_SHOW,
        NoShowParty.DOCTOR,
    )
    assert (rows[doctor_only.pk].status, rows[doctor_only.pk].no_show_party) == (
        SessionStatus.NO_SHOW,
        NoShowParty.PATIENT,
    )
    assert rows[both.pk].status == SessionStatus.IN_PROGRESS
    assert rows[window_still_open.pk].status == SessionStatus.CONFIRMED
    assert rows[requested.pk].status == SessionStatus.REQUESTED
    # a paid session the doctor missed is due back; one the patient missed is not
    assert rows[nobody.pk].refund_requested_at == NOW
    assert rows[patient_only.pk].refund_requested_at == NOW
    assert rows[doctor_only.pk].refund_requested_at is None


def test_sweep_tells_both_participants_of_each_session(past_start, django_capture_on_commit_callbacks):
    # given two sessions nobody joined, of different doctors and patients, and listeners on all four
    first, second = ConfirmedPaidSessionFactory.create_batch(2, scheduled_start=past_start)
    recorder = EventRecorder()
    for user in (first.doctor, first.patient, second.doctor, second.patient):
        recorder.listen_user(user)

    # when the sweep runs and commits
    with django_capture_on_commit_callbacks(execute=True):
        services.session_no_show_sweep()

    # then each participant hears session.no_show about their own session only
    for session in (first, second):
        for user in (session.doctor, session.patient):
            assert recorder.for_user(user) == [{"type": "session.no_show", "data": _event(session, "no_show")}]


def test_sweep_sends_nothing_for_sessions_it_leaves(past_start, django_capture_on_commit_callbacks):
    # given a session still in its window and one already completed
    open_window = ConfirmedPaidSessionFactory(scheduled_start=NOW - timedelta(minutes=30))
    completed = ConfirmedPaidSessionFactory(scheduled_start=past_start, status=SessionStatus.COMPLETED)

    # when the sweep runs
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.session_no_show_sweep() == 0

    # then no event is queued
    assert callbacks == []
    assert {s.status for s in Session.objects.filter(pk__in=[open_window.pk, completed.pk])} == {
        SessionStatus.CONFIRMED,
        SessionStatus.COMPLETED,
    }


@pytest.mark.parametrize("how_many", [1, 20])
def test_sweep_queries_do_not_grow_with_the_sessions(
    past_start, how_many, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # given sessions to mark, each with its own participants
    ConfirmedPaidSessionFactory.create_batch(how_many, scheduled_start=past_start)

    # when the sweep runs and its events are sent
    # then it costs the same whatever the number: one locking SELECT and one UPDATE, inside a
    # savepoint here (a transaction in production); the events need no query
    with django_assert_num_queries(4) as captured, django_capture_on_commit_callbacks(execute=True) as callbacks:
        count = services.session_no_show_sweep()

    assert count == how_many
    assert len(callbacks) == how_many  # one event per session
    sql = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    assert sql == ["SAVEPOINT", "SELECT", "UPDATE", "RELEASE"]


def test_sweep_does_not_mark_an_unpaid_doctor_no_show_for_refund(past_start):
    unpaid = SessionFactory(scheduled_start=past_start, status=SessionStatus.CONFIRMED)

    services.session_no_show_sweep()

    unpaid.refresh_from_db()
    assert (unpaid.status, unpaid.no_show_party, unpaid.refund_requested_at) == (
        SessionStatus.NO_SHOW,
        NoShowParty.BOTH,
        None,
    )


# 90 minutes + the 30 of grace ties with the 120-minute allowance; 91 is one minute past it.
@pytest.mark.parametrize("duration", [10, 50, 90, 91, 240])
def test_sweep_boundary_is_the_windows_close_itself(duration):
    """The window is ``[opens_at, closes_at)``: one microsecond before ``closes_at`` the session can
    still be joined and is left alone; at ``closes_at`` it cannot, and the sweep marks it."""
    session = ConfirmedPaidSessionFactory(scheduled_start=NOW + timedelta(days=1), duration_minutes=duration)
    closes_at = join_window_bounds(session)[1]
    just_before = closes_at - timedelta(microseconds=1)

    assert join_decision(session=session, user=session.patient, now=just_before).can_join
    assert services.session_no_show_sweep(now=just_before) == 0
    session.refresh_from_db()
    assert session.status == SessionStatus.CONFIRMED

    assert join_decision(session=session, user=session.patient, now=closes_at).reason == "WINDOW_CLOSED"
    assert services.session_no_show_sweep(now=closes_at) == 1
    session.refresh_from_db()
    assert (session.status, session.no_show_party) == (SessionStatus.NO_SHOW, NoShowParty.BOTH)


def test_sweep_leaves_a_240_minute_session_alone_until_its_end_plus_grace(settings):
    # given a 240-minute session only the doctor joined
    start = NOW + timedelta(days=1)
    session = ConfirmedPaidSessionFactory(
        scheduled_start=start, duration_minutes=240, status=SessionStatus.IN_PROGRESS, doctor_joined_at=start
    )
    closes_at = start + timedelta(minutes=240 + settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END)

    # when the sweep runs at start + 2 h and at start + 3 h, then at the close
    at_two_and_three_hours = [services.session_no_show_sweep(now=start + timedelta(hours=h)) for h in (2, 3)]
    at_close = services.session_no_show_sweep(now=closes_at)

    # then only the run at the close marks the patient absent
    assert (at_two_and_three_hours, at_close) == ([0, 0], 1)
    session.refresh_from_db()
    assert (session.status, session.no_show_party) == (SessionStatus.NO_SHOW, NoShowParty.PATIENT)


def test_the_sweep_is_scheduled_with_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-mark-no-shows"]

    assert entry["task"] == sessions_mark_no_shows.name
    assert entry["schedule"] == 300.0


# --- Lapse sweep ---------------------------------------------------------------------------------


def test_requests_still_unconfirmed_at_their_start_are_cancelled(django_capture_on_commit_callbacks):
    # given requests whose start has passed (one already paid), one starting right now, one ahead,
    # and a confirmed session whose start has passed
    unpaid = SessionFactory(scheduled_start=NOW - timedelta(hours=3))
    paid = SessionFactory(scheduled_start=NOW - timedelta(minutes=1), payment_status=PaymentStatus.PAID)
    starting_now = SessionFactory(scheduled_start=NOW)
    ahead = SessionFactory(scheduled_start=NOW + timedelta(seconds=1))
    confirmed = ConfirmedPaidSessionFactory(scheduled_start=NOW - timedelta(minutes=1))

    # when the beat task runs
    with django_capture_on_commit_callbacks(execute=True):
        assert sessions_lapse_requests.delay().get() == 3

    # then the lapsed requests are cancelled by nobody, with the lapse reason
    rows = {s.pk: s for s in Session.objects.all()}
    for lapsed in (unpaid, paid, starting_now):
        row = rows[lapsed.pk]
        assert (row.status, row.cancelled_at, row.cancelled_by_id) == (SessionStatus.CANCELLED, NOW, None)
        assert row.cancellation_reason == LAPSED_REASON
    # and the money of the paid one is due back
    assert rows[paid.pk].refund_requested_at == NOW
    assert rows[unpaid.pk].refund_requested_at is None
    # and the others are untouched
    assert rows[ahead.pk].status == SessionStatus.REQUESTED
    assert rows[confirmed.pk].status == SessionStatus.CONFIRMED


def test_lapse_tells_both_participants_that_the_session_is_cancelled(django_capture_on_commit_callbacks):
    lapsed = SessionFactory(scheduled_start=NOW - timedelta(minutes=5))
    recorder = EventRecorder()
    recorder.listen_user(lapsed.doctor)
    recorder.listen_user(lapsed.patient)

    with django_capture_on_commit_callbacks(execute=True):
        services.session_lapse_sweep()

    for user in (lapsed.doctor, lapsed.patient):
        assert recorder.for_user(user) == [{"type": "session.cancelled", "data": _event(lapsed, "cancelled")}]


@pytest.mark.parametrize("how_many", [1, 20])
def test_lapse_queries_do_not_grow_with_the_sessions(
    how_many, django_assert_num_queries, django_capture_on_commit_callbacks
):
    SessionFactory.create_batch(how_many, scheduled_start=NOW - timedelta(minutes=5))

    with django_assert_num_queries(4), django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.session_lapse_sweep() == how_many

    assert len(callbacks) == how_many


def test_a_lapsed_request_frees_both_calendars(doctor, patient, django_capture_on_commit_callbacks):
    # given a request that started ten minutes ago, unconfirmed: it blocks the doctor until NOW + 70 min
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=NOW - timedelta(minutes=10))
    other_patient = client_for(PatientFactory())
    body = {"doctor_id": str(doctor.pk), "scheduled_start": (NOW + timedelta(minutes=30)).isoformat()}
    assert_error(other_patient.post("/api/v1/sessions/", body, format="json"), 409, "SCHEDULE_CONFLICT")

    # when it lapses
    with django_capture_on_commit_callbacks(execute=True):
        services.session_lapse_sweep()

    # then another patient can book the doctor in what was its block
    assert other_patient.post("/api/v1/sessions/", body, format="json").status_code == 201
    # and the lapsed one cannot be joined
    lapsed = Session.objects.get(patient=patient)
    can_join = client_for(patient).get(url(lapsed, "can-join")).json()
    assert (can_join["can_join"], can_join["reason"]) == (False, "SESSION_CANCELLED")


def test_a_request_confirmed_before_the_sweep_is_left_alone(django_capture_on_commit_callbacks):
    # given a request its doctor confirmed shortly before its start, which has now passed
    late = SessionFactory(scheduled_start=NOW - timedelta(minutes=1))
    services.session_confirm(session=late, user=late.doctor, now=NOW - timedelta(minutes=2))

    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.session_lapse_sweep() == 0

    # then it stays confirmed and nobody is told anything more
    late.refresh_from_db()
    assert late.status == SessionStatus.CONFIRMED
    assert callbacks == []


def test_the_lapse_sweep_is_scheduled_with_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-lapse-requests"]

    assert entry["task"] == sessions_lapse_requests.name
    assert entry["schedule"] == 60.0

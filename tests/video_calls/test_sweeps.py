"""The periodic sweeps with frozen time (both the default SQLite run and the PostgreSQL run):
each changes what is due, tells participants, and changes nothing when run again."""

from datetime import timedelta

import pytest
import time_machine

from sessions.models import SessionStatus
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, open_session
from video_calls import tasks
from video_calls.models import Call, CallEvent, CallParticipant, CallStatus, EndReason, ParticipantStatus
from video_calls.services.adhoc import call_accept, call_initiate
from video_calls.services.rooms import call_join, call_leave, session_room_get_or_create


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def care(doctor, patient):
    return open_session(doctor, patient, starts_in_minutes=60 * 24)


def test_ringing_past_the_timeout_becomes_missed(care, doctor, patient, settings, django_capture_on_commit_callbacks):
    # Given one call ringing for 46 s and one for 10 s
    settings.CALL_RING_TIMEOUT_SECONDS = 45
    old = call_initiate(caller=doctor, callee_id=patient.pk)
    Call.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(seconds=46))
    recorder = EventRecorder()
    recorder.listen_user(patient)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        changed = tasks.calls_expire_ringing()

    # Then
    assert changed == 1
    old.refresh_from_db()
    assert old.status == CallStatus.MISSED
    assert old.end_reason == EndReason.RING_TIMEOUT
    assert old.ended_at == NOW
    assert CallParticipant.objects.get(call=old, user=patient).status == ParticipantStatus.INVITED
    assert CallEvent.objects.filter(call=old, type="missed").count() == 1
    [missed] = recorder.for_user(patient)
    assert missed["type"] == "call.missed"
    assert tasks.calls_expire_ringing() == 0


def test_ringing_within_the_timeout_is_left_alone(care, doctor, patient):
    call = call_initiate(caller=doctor, callee_id=patient.pk)

    with time_machine.travel(NOW + timedelta(seconds=44), tick=False):
        assert tasks.calls_expire_ringing() == 0

    call.refresh_from_db()
    assert call.status == CallStatus.RINGING


def test_window_close_ends_the_call_and_tells_participants(
    doctor, patient, settings, django_capture_on_commit_callbacks
):
    # Given both joined a session call (no waiting room) whose window closes at start + 120 min
    settings.CALL_WAITING_ROOM_ENABLED = False
    session = open_session(doctor, patient)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    call_join(call=room, user=doctor)
    call_join(call=room, user=patient)
    recorder = EventRecorder()
    recorder.listen_user(patient)
    closes_at = session.scheduled_start + timedelta(minutes=settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER)

    # When one second before and at the close
    with time_machine.travel(closes_at - timedelta(seconds=1), tick=False):
        assert tasks.calls_end_stale()["window_closed"] == 0
    with time_machine.travel(closes_at, tick=False), django_capture_on_commit_callbacks(execute=True):
        result = tasks.calls_end_stale()
    with time_machine.travel(closes_at, tick=False):
        # read at the clock it was sent at: the encrypted channel layer refuses messages from the future
        ended = [event for event in recorder.for_user(patient) if event["type"] == "call.ended"]

    # Then
    assert result["window_closed"] == 1
    room.refresh_from_db()
    assert room.status == CallStatus.COMPLETED
    assert room.end_reason == EndReason.WINDOW_CLOSED
    assert room.ended_at == closes_at
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED
    assert session.actual_end == closes_at
    assert ended[0]["data"]["end_reason"] == "window_closed"
    with time_machine.travel(closes_at, tick=False):
        assert tasks.calls_end_stale() == {
            "session_cancelled": 0,
            "window_closed": 0,
            "no_participants": 0,
            "max_duration": 0,
        }


def test_a_room_nobody_came_to_is_missed_when_the_window_closes(doctor, patient, settings):
    session = open_session(doctor, patient)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)

    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        tasks.calls_end_stale()

    room.refresh_from_db()
    assert room.status == CallStatus.MISSED
    assert room.end_reason == EndReason.WINDOW_CLOSED


def test_room_of_a_cancelled_session_is_closed(doctor, patient):
    session = open_session(doctor, patient, starts_in_minutes=60 * 24)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    session.status = SessionStatus.CANCELLED
    session.save()

    result = tasks.calls_end_stale()

    assert result["session_cancelled"] == 1
    room.refresh_from_db()
    assert room.status == CallStatus.CANCELLED
    assert room.end_reason == EndReason.SESSION_CANCELLED


def test_ongoing_call_nobody_is_connected_to_ends_at_the_last_leave(care, doctor, patient, settings):
    # Given an accepted group-less call whose participants both dropped (left) at 09:10
    settings.CALL_EMPTY_TIMEOUT_SECONDS = 300
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    CallParticipant.objects.filter(call=call).update(status=ParticipantStatus.LEFT, left_at=NOW + timedelta(minutes=10))

    # When the sweep runs 4 minutes, then 5 minutes after
    with time_machine.travel(NOW + timedelta(minutes=14), tick=False):
        assert tasks.calls_end_stale()["no_participants"] == 0
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        assert tasks.calls_end_stale()["no_participants"] == 1

    # Then
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED
    assert call.end_reason == EndReason.NO_PARTICIPANTS
    assert call.ended_at == NOW + timedelta(minutes=10)
    assert call.duration_seconds == 600


def test_connected_call_past_the_maximum_duration_ends(care, doctor, patient, settings):
    settings.CALL_MAX_DURATION_MINUTES = 60
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)

    with time_machine.travel(NOW + timedelta(minutes=59), tick=False):
        assert tasks.calls_end_stale()["max_duration"] == 0
    with time_machine.travel(NOW + timedelta(minutes=60), tick=False):
        assert tasks.calls_end_stale()["max_duration"] == 1

    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED
    assert call.end_reason == EndReason.MAX_DURATION
    assert call.duration_seconds == 3600
    assert set(CallParticipant.objects.filter(call=call).values_list("connected_seconds", flat=True)) == {3600}


def test_room_with_someone_still_connected_is_not_empty(doctor, patient, settings):
    settings.CALL_EMPTY_TIMEOUT_SECONDS = 60
    settings.CALL_WAITING_ROOM_ENABLED = False
    session = open_session(doctor, patient)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    call_join(call=room, user=doctor)
    call_join(call=room, user=patient)
    call_leave(call=room, user=patient)

    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        assert tasks.calls_end_stale()["no_participants"] == 0

    room.refresh_from_db()
    assert room.status == CallStatus.ONGOING


def test_beat_schedule_lists_the_sweeps(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"video_calls.tasks.calls_expire_ringing", "video_calls.tasks.calls_end_stale"} <= tasks_scheduled


def test_a_240_minute_sessions_call_lasts_until_its_window_closes(
    doctor, patient, settings, django_capture_on_commit_callbacks
):
    # Given both joined the call of a 240-minute session five minutes before its start; its window
    # closes at the end plus the grace (start + 4 h 30), long after start + 2 h and after the call
    # has run CALL_MAX_DURATION_MINUTES (240)
    settings.CALL_WAITING_ROOM_ENABLED = False
    session = open_session(doctor, patient, duration_minutes=240)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    call_join(call=room, user=doctor)
    call_join(call=room, user=patient)
    start = session.scheduled_start
    closes_at = start + timedelta(minutes=240 + settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END)
    nothing = {"session_cancelled": 0, "window_closed": 0, "no_participants": 0, "max_duration": 0}

    # When the sweep runs at start + 2 h, past the maximum duration, and just before the close
    for at in (
        start + timedelta(hours=2),
        NOW + timedelta(minutes=settings.CALL_MAX_DURATION_MINUTES),
        closes_at - timedelta(microseconds=1),
    ):
        with time_machine.travel(at, tick=False):
            assert tasks.calls_end_stale() == nothing, at
    room.refresh_from_db()
    assert room.status == CallStatus.ONGOING

    # Then at the close it ends the call for everyone
    recorder = EventRecorder()
    recorder.listen_user(patient)
    with time_machine.travel(closes_at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            result = tasks.calls_end_stale()
        ended = [event for event in recorder.for_user(patient) if event["type"] == "call.ended"]
    assert result == {**nothing, "window_closed": 1}
    room.refresh_from_db()
    assert (room.status, room.end_reason, room.ended_at) == (CallStatus.COMPLETED, EndReason.WINDOW_CLOSED, closes_at)
    assert ended[0]["data"]["end_reason"] == "window_closed"


def test_the_window_sweep_ends_short_and_long_sessions_each_at_its_own_close(doctor, patient, settings):
    # Given rooms of a 50-minute and a 240-minute session starting at the same time
    short = open_session(doctor, patient)
    long = open_session(DoctorFactory(), PatientFactory(), duration_minutes=240)
    short_room, _ = session_room_get_or_create(user=doctor, session_id=short.pk)
    long_room, _ = session_room_get_or_create(user=long.doctor, session_id=long.pk)

    # When the sweep runs at start + 2 h (the short one's close)
    with time_machine.travel(short.scheduled_start + timedelta(hours=2), tick=False):
        ended = tasks.calls_end_stale()["window_closed"]

    # Then only the short session's room ended
    short_room.refresh_from_db()
    long_room.refresh_from_db()
    assert (ended, short_room.status, long_room.status) == (1, CallStatus.MISSED, CallStatus.WAITING)

"""The presence sweep gives a connection whose heartbeats stopped (its server process was
killed) the clean-up of a closed one: the user leaves the call it was in after the reconnect
grace, and stops being busy; a heartbeat keeps a connection through the sweep."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import ApplicationError
from presence.models import PresenceConnection, PresenceStatus, UserPresence
from presence.services import (
    presence_connection_enter_call,
    presence_connection_open,
    presence_heartbeat,
)
from presence.tasks import sweep_stale_connections
from tests.sessions.factories import SessionFactory
from video_calls import tasks as call_tasks
from video_calls.models import CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.adhoc import call_accept, call_initiate

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled_leaves(monkeypatch) -> list[dict]:
    """The leaves the sweep schedules, with their countdown; each still runs (eagerly, in tests)."""
    scheduled: list[dict] = []
    schedule = call_tasks.call_leave_unless_reconnected.apply_async

    def record(*args, **kwargs):
        scheduled.append(kwargs)
        return schedule(*args, **kwargs)

    monkeypatch.setattr(call_tasks.call_leave_unless_reconnected, "apply_async", record)
    return scheduled


def _ongoing_call(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call


def _connected_in_call(user, call, channel_name: str) -> None:
    presence_connection_open(user=user, channel_name=channel_name)
    presence_connection_enter_call(channel_name=channel_name, call_id=call.pk)


def _heartbeats_stop(*channel_names: str, settings) -> None:
    """As if the process holding these sockets was killed a timeout and more ago."""
    long_ago = timezone.now() - timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS + 10)
    PresenceConnection.objects.filter(channel_name__in=channel_names).update(last_heartbeat_at=long_ago)


def _ring(caller, callee) -> str:
    try:
        return call_initiate(caller=caller, callee_id=callee.pk).status
    except ApplicationError as error:
        return error.code


def test_a_swept_connection_leaves_its_call_after_the_grace_and_the_user_is_no_longer_busy(
    doctor, patient, settings, scheduled_leaves, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call = _ongoing_call(doctor, patient)
        _connected_in_call(doctor, call, "doctor-channel")
        _connected_in_call(patient, call, "killed-process-channel")
    _heartbeats_stop("killed-process-channel", settings=settings)
    assert UserPresence.objects.get(user=patient).status == PresenceStatus.BUSY
    assert _ring(doctor, patient) == "CALLEE_BUSY"

    with django_capture_on_commit_callbacks(execute=True):
        dropped = sweep_stale_connections.delay().get()

    assert dropped == 1
    assert scheduled_leaves == [
        {"args": [str(call.pk), str(patient.pk)], "countdown": settings.REALTIME_RECONNECT_GRACE_SECONDS}
    ]
    assert CallParticipant.objects.get(call=call, user=patient).status == ParticipantStatus.LEFT
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED  # the patient's leaving ended the 1:1 call
    assert UserPresence.objects.get(user=patient).status == PresenceStatus.OFFLINE
    with django_capture_on_commit_callbacks(execute=True):
        assert _ring(doctor, patient) == CallStatus.RINGING


def test_a_user_with_another_live_connection_in_the_call_stays_in_it(
    doctor, patient, settings, scheduled_leaves, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call = _ongoing_call(doctor, patient)
        _connected_in_call(doctor, call, "doctor-channel")
        _connected_in_call(patient, call, "killed-process-channel")
        _connected_in_call(patient, call, "reconnected-channel")
    _heartbeats_stop("killed-process-channel", settings=settings)

    with django_capture_on_commit_callbacks(execute=True):
        dropped = sweep_stale_connections.delay().get()

    assert dropped == 1
    assert len(scheduled_leaves) == 1  # the grace task ran and found the user back in the call
    assert CallParticipant.objects.get(call=call, user=patient).status == ParticipantStatus.JOINED
    assert UserPresence.objects.get(user=patient).status == PresenceStatus.BUSY


def test_a_heartbeat_keeps_a_connection_through_the_sweep(patient, doctor, settings):
    presence_connection_open(user=patient, channel_name="beating")
    presence_connection_open(user=doctor, channel_name="silent")
    _heartbeats_stop("beating", "silent", settings=settings)

    alive = presence_heartbeat(channel_name="beating")
    dropped = sweep_stale_connections.delay().get()

    assert alive is True
    assert dropped == 1
    assert list(PresenceConnection.objects.values_list("channel_name", flat=True)) == ["beating"]
    assert UserPresence.objects.get(user=patient).status == PresenceStatus.ONLINE
    assert UserPresence.objects.get(user=doctor).status == PresenceStatus.OFFLINE


def test_a_heartbeat_after_the_sweep_says_the_connection_is_gone(patient, settings):
    presence_connection_open(user=patient, channel_name="silent")
    _heartbeats_stop("silent", settings=settings)
    sweep_stale_connections.delay().get()

    assert presence_heartbeat(channel_name="silent") is False


def test_a_leave_that_cannot_be_scheduled_does_not_stop_the_others(
    doctor, patient, settings, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call = _ongoing_call(doctor, patient)
        _connected_in_call(doctor, call, "doctor-channel")
        _connected_in_call(patient, call, "patient-channel")
    _heartbeats_stop("doctor-channel", "patient-channel", settings=settings)
    schedule = call_tasks.call_leave_unless_reconnected.apply_async

    def broker_down_for_the_doctor(*args, **kwargs):
        if kwargs["args"][1] == str(doctor.pk):
            raise ConnectionError("broker unreachable")
        return schedule(*args, **kwargs)

    monkeypatch.setattr(call_tasks.call_leave_unless_reconnected, "apply_async", broker_down_for_the_doctor)

    with django_capture_on_commit_callbacks(execute=True):
        dropped = sweep_stale_connections.delay().get()

    assert dropped == 2
    assert CallParticipant.objects.get(call=call, user=patient).status == ParticipantStatus.LEFT
    assert UserPresence.objects.get(user=doctor).status == PresenceStatus.OFFLINE

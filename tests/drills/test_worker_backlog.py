"""Fault drill: the Celery worker is down while calls and sessions go stale, then comes back.

A real worker (four processes) and beat share a throwaway Redis broker. The worker is stopped;
calls ring out, session calls outlive their join window, sessions pass without their patient,
and beat keeps queueing its sweeps, so a backlog of the same sweep builds up. When the worker
starts again it runs that backlog several at a time. What must hold (video_calls/services/
sweeps.py, sessions/services/lifecycle.py): each stale call is expired exactly once (one
transition row, one event to each client), each stale session is marked once, and nothing else
changes. Clients are connected to a real server process throughout and count what they hear.
"""

import json
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sessions.models import NoShowParty, SessionStatus
from tests.drills.clients import DrillSocket
from tests.drills.processes import (
    celery_beat,
    celery_worker,
    process_environment,
    run_database_url,
    server,
    wait_for,
)
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import ConfirmedPaidSessionFactory, SessionFactory
from video_calls.models import Call, CallEvent, CallEventType, CallStatus, EndReason
from video_calls.services.adhoc import call_initiate
from video_calls.services.rooms import call_join, session_room_get_or_create

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SWEEPS = {
    "video_calls.tasks.calls_expire_ringing",
    "video_calls.tasks.calls_end_stale",
    "sessions.tasks.sessions_mark_no_shows",
}
BACKLOG_PER_SWEEP = 3  # each sweep queued at least this many times while the worker is down


def _queued_sweeps(redis_instance) -> Counter:
    """The sweeps waiting in the broker's queue, by task name."""
    queue = redis_instance.client().lrange("celery", 0, -1)
    return Counter(json.loads(message)["headers"]["task"] for message in queue)


def _backlog(redis_instance) -> Counter | None:
    """The queued sweeps once each is there ``BACKLOG_PER_SWEEP`` times, else None."""
    queued = _queued_sweeps(redis_instance)
    return queued if all(queued[name] >= BACKLOG_PER_SWEEP for name in SWEEPS) else None


def _broker_idle(redis_instance) -> bool:
    broker = redis_instance.client()
    return broker.llen("celery") == 0 and broker.hlen("unacked") == 0


def _ringing_call(doctor, patient, *, rang_at):
    SessionFactory(doctor=doctor, patient=patient)
    with time_machine.travel(rang_at, tick=False):
        return call_initiate(caller=doctor, callee_id=patient.pk)


def _session_call_the_patient_missed(doctor, patient, *, starts_at):
    """A paid, confirmed session whose doctor joined its room at the start and whose patient never
    came; the join window has closed since."""
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=starts_at)
    with time_machine.travel(starts_at, tick=False):
        room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
        call_join(call=room, user=doctor)
    return session, room


def test_a_sweep_backlog_run_by_a_restarted_worker_expires_each_stale_call_once(
    processes, redis_instance, doctor, patient, tmp_path, settings
):
    from accounts.tokens import token_pair_for

    settings.CALL_WAITING_ROOM_ENABLED = False
    environment = process_environment(
        database_url=run_database_url(),
        redis_url=redis_instance.url,
        var_dir=tmp_path,
        CALL_RING_SWEEP_SECONDS="1",
        CALL_END_SWEEP_SECONDS="1",
        SESSION_NO_SHOW_SWEEP_SECONDS="1",
    )
    app_server, beat = server("server", environment, tmp_path), celery_beat(environment, tmp_path)
    worker = celery_worker("worker", environment, tmp_path)
    processes.start(app_server, worker, beat)
    app_server.wait_until_live()
    now = timezone.now()
    long_ago = now - timedelta(hours=9)  # sessions 90 minutes apart, all windows closed

    # Given a worker that runs the sweeps (it expires a call that rang out)
    canary = _ringing_call(DoctorFactory(), PatientFactory(), rang_at=now - timedelta(minutes=5))
    wait_for(
        lambda: Call.objects.get(pk=canary.pk).status == CallStatus.MISSED,
        timeout=20,
        message=f"the worker expiring a call\n{processes.logs()}",
    )

    # When the worker stops, and meanwhile calls and sessions go stale while beat queues sweeps
    assert worker.stop(), "the worker did not stop on SIGTERM"
    callers = [DoctorFactory() for _ in range(3)]
    ringing = [_ringing_call(caller, PatientFactory(), rang_at=now - timedelta(minutes=5)) for caller in callers]
    absent_patients = [PatientFactory() for _ in range(2)]
    missed = [
        _session_call_the_patient_missed(doctor, absent, starts_at=long_ago + timedelta(minutes=90 * i))
        for i, absent in enumerate(absent_patients)
    ]
    nobody_came = ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=long_ago + timedelta(minutes=180)
    )
    sockets = {user: DrillSocket(app_server, token_pair_for(user)["access"]) for user in [*callers, doctor, patient]}
    backlog = wait_for(lambda: _backlog(redis_instance), timeout=20, message="beat queueing a backlog of sweeps")

    # And the worker starts again, and works through the backlog
    worker = celery_worker("worker-again", environment, tmp_path)
    processes.start(worker)
    stale_calls = [*ringing, *(room for _, room in missed)]
    wait_for(
        lambda: (
            Call.objects.filter(pk__in=[call.pk for call in stale_calls], ended_at__isnull=False).count()
            == len(stale_calls)
        ),
        timeout=30,
        message=f"the restarted worker expiring the stale calls\n{processes.logs()}",
    )
    assert beat.stop(), "beat did not stop on SIGTERM"
    wait_for(lambda: _broker_idle(redis_instance), timeout=20, message="the backlog run")
    # Every event has been sent (a second expiry's too); wait for each to arrive at least once.
    for caller, call in zip(callers, ringing, strict=True):
        sockets[caller].event("call.missed", call_id=str(call.pk))
    for session, room in missed:
        sockets[doctor].event("call.ended", call_id=str(room.pk))
        sockets[doctor].event("session.no_show", session_id=str(session.pk))
    sockets[patient].event("session.no_show", session_id=str(nobody_came.pk))

    # Then the backlog held every sweep several times over
    assert all(backlog[name] >= BACKLOG_PER_SWEEP for name in SWEEPS), backlog
    # And each ringing call became missed once: one transition row, one event to its caller
    for caller, call in zip(callers, ringing, strict=True):
        call.refresh_from_db()
        assert (call.status, call.end_reason) == (CallStatus.MISSED, EndReason.RING_TIMEOUT)
        assert CallEvent.objects.filter(call=call, type=CallEventType.MISSED).count() == 1
        assert len(sockets[caller].events("call.missed", call_id=str(call.pk))) == 1
    # And each session call whose window closed ended once, and its session became a no-show once
    for session, room in missed:
        room.refresh_from_db()
        session.refresh_from_db()
        assert (room.status, room.end_reason) == (CallStatus.COMPLETED, EndReason.WINDOW_CLOSED)
        assert CallEvent.objects.filter(call=room, type=CallEventType.ENDED).count() == 1
        assert len(sockets[doctor].events("call.ended", call_id=str(room.pk))) == 1
        assert (session.status, session.no_show_party) == (SessionStatus.NO_SHOW, NoShowParty.PATIENT)
        assert len(sockets[doctor].events("session.no_show", session_id=str(session.pk))) == 1
    nobody_came.refresh_from_db()
    assert (nobody_came.status, nobody_came.no_show_party) == (SessionStatus.NO_SHOW, NoShowParty.BOTH)
    assert len(sockets[patient].events("session.no_show", session_id=str(nobody_came.pk))) == 1
    assert len(sockets[doctor].events("session.no_show", session_id=str(nobody_came.pk))) == 1
    # And the canary, expired before the stop, was not expired again
    assert CallEvent.objects.filter(call=canary, type=CallEventType.MISSED).count() == 1
    for socket in sockets.values():
        socket.close()

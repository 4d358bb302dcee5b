"""Fault drill: one of two server processes is killed (SIGKILL) with calls on it.

Two calls span both processes: in each the doctor is on process A and the patient on process B.
B is killed: nothing of its own clean-up runs, and its connections' rows stay behind. One patient
comes back, to A; the other never does. What must follow (docs/realtime.md, "Dropped connections
and reconnecting" and "Presence"): the returning patient re-joins and the call goes on, signals
included; the presence sweep (Celery beat and a worker, real processes) drops the dead process's
connections once their heartbeats are ``PRESENCE_TIMEOUT_SECONDS`` old, the patient who stayed
away leaves the call after the reconnect grace (a two-person call then ends) and goes offline, and
their doctor is told. The
timeouts are shortened so the drill takes seconds; the rules are the production ones.
"""

import time

import pytest

from presence.models import PresenceConnection, PresenceStatus, UserPresence
from tests.drills.clients import ABNORMAL_CLOSURE, DrillSocket, reconnect
from tests.drills.processes import (
    celery_beat,
    celery_worker,
    process_environment,
    run_database_url,
    server,
    wait_for,
)
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory
from video_calls.models import CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.adhoc import call_accept, call_initiate

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

HEARTBEAT_SECONDS = 1
PRESENCE_TIMEOUT_SECONDS = 3
PRESENCE_SWEEP_SECONDS = 1
RECONNECT_GRACE_SECONDS = 2
# From the kill until presence has settled: the last heartbeat ages past the timeout, the next
# sweep drops the connection, the grace passes, and the worker runs the leave; plus start-up slack.
SETTLES_WITHIN = PRESENCE_TIMEOUT_SECONDS + PRESENCE_SWEEP_SECONDS + RECONNECT_GRACE_SECONDS + 4
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def _join(socket: DrillSocket, call) -> dict:
    return socket.request({"type": "call.join", "id": "join", "data": {"call_id": str(call.pk)}})


def _status(call, user) -> str:
    return CallParticipant.objects.get(call=call, user=user).status


def _broker_idle(redis_instance) -> bool:
    """No task waiting in the queue or held by the worker (kombu keeps a task it has taken, a
    countdown included, in ``unacked`` until it has run: acks are late)."""
    broker = redis_instance.client()
    return broker.llen("celery") == 0 and broker.hlen("unacked") == 0


def test_a_killed_server_s_clients_move_to_the_other_and_those_who_stay_away_leave(
    processes, redis_instance, ongoing_call, doctor, patient, tmp_path
):
    from accounts.tokens import token_pair_for

    other_doctor, absent_patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=other_doctor, patient=absent_patient)
    other_call = call_initiate(caller=other_doctor, callee_id=absent_patient.pk)
    call_accept(call=other_call, user=absent_patient)
    environment = process_environment(
        database_url=run_database_url(),
        redis_url=redis_instance.url,
        var_dir=tmp_path,
        PRESENCE_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        PRESENCE_TIMEOUT_SECONDS=str(PRESENCE_TIMEOUT_SECONDS),
        PRESENCE_SWEEP_SECONDS=str(PRESENCE_SWEEP_SECONDS),
        REALTIME_RECONNECT_GRACE_SECONDS=str(RECONNECT_GRACE_SECONDS),
    )
    server_a, server_b = server("server-a", environment, tmp_path), server("server-b", environment, tmp_path)
    processes.start(
        server_a, server_b, celery_worker("worker", environment, tmp_path), celery_beat(environment, tmp_path)
    )
    server_a.wait_until_live()
    server_b.wait_until_live()
    tokens = {user: token_pair_for(user)["access"] for user in (doctor, patient, other_doctor, absent_patient)}

    # Given two calls, each with its doctor on A and its patient on B, everyone heartbeating
    def connect(target, user) -> DrillSocket:
        return DrillSocket(target, tokens[user], heartbeat_seconds=HEARTBEAT_SECONDS)

    doctor_socket, other_doctor_socket = connect(server_a, doctor), connect(server_a, other_doctor)
    patient_socket, absent_patient_socket = connect(server_b, patient), connect(server_b, absent_patient)
    joins = [_join(doctor_socket, ongoing_call), _join(other_doctor_socket, other_call)]
    joins += [_join(patient_socket, ongoing_call), _join(absent_patient_socket, other_call)]

    channels_on_b = set(PresenceConnection.objects.filter(user=patient).values_list("channel_name", flat=True))

    # When B is killed
    server_b.kill()
    killed_at = time.monotonic()
    patient_close, absent_close = patient_socket.wait_closed(), absent_patient_socket.wait_closed()

    # And one patient reconnects, to A, joins again and signals; the other never comes back
    patient_socket, refusals = reconnect(server_a, tokens[patient], heartbeat_seconds=HEARTBEAT_SECONDS)
    rejoined = _join(patient_socket, ongoing_call)
    since = patient_socket.mark()
    doctor_socket.send(
        {"type": "signal.offer", "data": {"call_id": str(ongoing_call.pk), "to": str(patient.pk), "sdp": SDP}}
    )
    offer = patient_socket.event("signal.offer", since=since)

    # Then presence settles within the heartbeat timeout (plus a sweep, the grace, and slack)
    wait_for(
        lambda: (
            _status(other_call, absent_patient) == ParticipantStatus.LEFT
            and UserPresence.objects.get(user=absent_patient).status == PresenceStatus.OFFLINE
            and PresenceConnection.objects.filter(user=patient).count() == 1
        ),
        timeout=SETTLES_WITHIN,
        message="presence settled after the kill",
    )
    settled_after = time.monotonic() - killed_at
    # And the leave scheduled for the patient who came back has run, and changed nothing
    wait_for(lambda: _broker_idle(redis_instance), timeout=10, message="every scheduled leave ran")
    ended_told = other_doctor_socket.event("call.ended", call_id=str(other_call.pk))
    offline_told = other_doctor_socket.event("presence.updated", user_id=str(absent_patient.pk), status="offline")

    assert [join["type"] for join in joins] == ["ack"] * 4, joins
    assert (patient_close, absent_close) == (ABNORMAL_CLOSURE, ABNORMAL_CLOSURE)
    assert refusals == []
    # The returning patient is in the call again, on A, and signaling goes on
    assert (rejoined["type"], rejoined["data"]["participant_status"]) == ("ack", ParticipantStatus.JOINED)
    assert offer["data"] == {"call_id": str(ongoing_call.pk), "from": str(doctor.pk), "sdp": SDP}
    ongoing_call.refresh_from_db()
    assert ongoing_call.status == CallStatus.ONGOING
    assert (_status(ongoing_call, doctor), _status(ongoing_call, patient)) == (ParticipantStatus.JOINED,) * 2
    assert doctor_socket.events("call.participant_left") == []
    [live] = PresenceConnection.objects.filter(user=patient)
    assert live.channel_name not in channels_on_b
    assert live.call_id == ongoing_call.pk
    assert UserPresence.objects.get(user=patient).status == PresenceStatus.BUSY
    # The patient who stayed away left their call, which as a two-person call ended with it, and
    # went offline; their doctor was told both
    assert not PresenceConnection.objects.filter(user=absent_patient).exists()
    other_call.refresh_from_db()
    assert (other_call.status, other_call.ended_by_id) == (CallStatus.COMPLETED, absent_patient.pk)
    assert ended_told["data"]["ended_by"]["id"] == str(absent_patient.pk)
    assert offline_told["data"]["status"] == "offline"
    assert settled_after <= SETTLES_WITHIN
    for socket in (doctor_socket, other_doctor_socket, patient_socket):
        socket.close()

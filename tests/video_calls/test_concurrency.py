"""Real concurrency on PostgreSQL: racing requests on one call resolve to exactly one winner."""

import threading

import pytest
from django.db import connection

from tests.assertions import assert_error
from tests.conftest import client_for
from tests.video_calls.call_helpers import open_session
from video_calls.models import Call, CallEvent, CallEventType, CallParticipant, CallStatus, ParticipantStatus
from video_calls.services.adhoc import call_initiate


def _race(requests: list) -> list:
    """Run each request in its own thread, released together; each thread closes its connection."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def run(index: int, request) -> None:
        try:
            barrier.wait()
            responses[index] = request()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_accepts_have_one_winner(doctor, patient):
    # Given a ringing call
    open_session(doctor, patient, starts_in_minutes=60 * 24)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    clients = [client_for(patient) for _ in range(10)]

    # When the callee's ten devices accept at once
    responses = _race([lambda c=c: c.post(f"/api/v1/calls/{call.pk}/accept/") for c in clients])

    # Then
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 9
    for response in [response for response in responses if response.status_code == 409]:
        assert_error(response, 409, "INVALID_CALL_STATE")
    call.refresh_from_db()
    assert call.status == CallStatus.ONGOING
    assert call.accepted_at is not None
    assert CallEvent.objects.filter(call=call, type=CallEventType.ACCEPTED).count() == 1
    assert CallEvent.objects.filter(call=call, type=CallEventType.JOINED).count() == 2
    participants = CallParticipant.objects.filter(call=call)
    assert participants.count() == 2
    assert set(participants.values_list("status", flat=True)) == {ParticipantStatus.JOINED}
    assert set(participants.values_list("joined_at", flat=True)) == {call.accepted_at}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_hangup_racing_accept_has_one_winner(doctor, patient):
    # Given
    open_session(doctor, patient, starts_in_minutes=60 * 24)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    caller, callee = client_for(doctor), client_for(patient)

    # When
    accept, hangup = _race(
        [
            lambda: callee.post(f"/api/v1/calls/{call.pk}/accept/"),
            lambda: caller.post(f"/api/v1/calls/{call.pk}/cancel/"),
        ]
    )

    # Then exactly one of them won, and the rows agree with the winner
    assert sorted([accept.status_code, hangup.status_code]) == [200, 409]
    call.refresh_from_db()
    assert call.status == {200: CallStatus.ONGOING, 409: CallStatus.CANCELLED}[accept.status_code]
    [loser] = [response for response in (accept, hangup) if response.status_code == 409]
    assert_error(loser, 409, "INVALID_CALL_STATE")
    assert Call.objects.filter(pk=call.pk).count() == 1
    decisive = CallEvent.objects.filter(call=call, type__in=[CallEventType.ACCEPTED, CallEventType.CANCELLED])
    assert decisive.count() == 1

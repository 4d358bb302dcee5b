"""PostgreSQL guarantees: concurrent overlapping bookings, the exclusion constraint itself, and
sweeps that skip the sessions a request is changing."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from sessions import services
from sessions.models import Session, SessionStatus
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.conftest import NOW
from tests.sessions.factories import ConfirmedPaidSessionFactory, SessionFactory
from tests.video_calls.call_helpers import EventRecorder, event_types

START = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_overlapping_bookings_create_exactly_one_session():
    # given one doctor and ten patients, each signed in, all wanting overlapping slots
    doctor = DoctorFactory()
    clients = [client_for(PatientFactory()) for _ in range(10)]
    barrier = threading.Barrier(len(clients))
    responses: list = [None] * len(clients)

    def book(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            start = START + timedelta(minutes=5 * index)
            responses[index] = clients[index].post(
                "/api/v1/sessions/",
                {"doctor_id": str(doctor.pk), "scheduled_start": start.isoformat()},
                format="json",
            )
        finally:
            connection.close()

    # when they all book at once, each on its own thread and database connection
    threads = [threading.Thread(target=book, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly one booking succeeded and nine were told the schedule conflicts
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9, [r.content for r in responses]
    codes = {response.json()["error"]["code"] for response in responses if response.status_code == 409}
    assert codes == {"SCHEDULE_CONFLICT"}
    assert Session.objects.filter(doctor=doctor).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("party", ["doctor", "patient"])
def test_the_exclusion_constraint_refuses_an_overlap_that_skips_the_check(doctor, patient, party):
    """Writing around the service (as a buggy caller or a race would) still cannot double-book."""
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=START)
    shared = {"doctor": doctor} if party == "doctor" else {"patient": patient}

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        SessionFactory(scheduled_start=START + timedelta(minutes=70), **shared)  # 20 minutes after the end

    assert raised.value.__cause__.diag.constraint_name == f"consultations_session_{party}_no_overlap"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_exclusion_constraint_ignores_cancelled_sessions(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient, scheduled_start=START, status=SessionStatus.CANCELLED)

    SessionFactory(doctor=doctor, patient=patient, scheduled_start=START)

    assert Session.objects.filter(doctor=doctor).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_no_show_sweep_skips_a_session_a_request_holds_and_tells_nobody_about_it():
    # given two sessions due for the no-show sweep, one of them locked by a request in progress
    busy, idle = ConfirmedPaidSessionFactory.create_batch(2, scheduled_start=NOW - timedelta(hours=2, seconds=1))
    recorder = EventRecorder()
    recorder.listen_user(busy.patient)
    recorder.listen_user(idle.patient)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Session.objects.select_for_update().get(pk=busy.pk)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert locked.wait(timeout=10)

    # when the sweep runs meanwhile (it commits, so its events go out)
    try:
        swept = services.session_no_show_sweep()
    finally:
        release.set()
        holder.join(timeout=10)

    # then it did not wait: it changed the free session only, and told only its participants
    assert swept == 1
    assert Session.objects.get(pk=busy.pk).status == SessionStatus.CONFIRMED
    assert Session.objects.get(pk=idle.pk).status == SessionStatus.NO_SHOW
    assert event_types(recorder.for_user(idle.patient)) == ["session.no_show"]
    assert recorder.for_user(busy.patient) == []
    # and the next run, with the row free, takes the other (a fresh listener: a Redis channel's
    # buffer belongs to the event loop that first drained it)
    later = EventRecorder()
    later.listen_user(busy.patient)
    assert services.session_no_show_sweep() == 1
    assert event_types(later.for_user(busy.patient)) == ["session.no_show"]

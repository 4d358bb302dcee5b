"""PostgreSQL guarantees: concurrent overlapping bookings, the exclusion constraint itself,
sweeps that skip the sessions a request is changing, and one payment webhook event delivered
several times at once."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from sessions import services
from sessions.models import Payment, PaymentStatus, Session, SessionStatus
from sessions.services.payments import webhook_signature
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


# --- One webhook event delivered twice at once ---------------------------------------------------

WEBHOOK_SECRET = "whsec-concurrency-0123456789"


def _signed_delivery(session, event_id: str) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "created": int(NOW.timestamp()),
            "data": {"session_id": str(session.pk), "amount": "75.00", "currency": "USD", "payment_id": "pi_7"},
        }
    ).encode()
    timestamp = int(NOW.timestamp())
    signature = webhook_signature(secret=WEBHOOK_SECRET, timestamp=timestamp, raw_body=body)
    return body, f"t={timestamp},v1={signature}"


def _deliver_from_threads(body: bytes, header: str, count: int, *, before=None) -> list:
    """POST the same signed delivery from ``count`` threads, each on its own connection; returns
    each thread's response (a crash becomes the 500 a provider would see, not an exception)."""
    barrier = threading.Barrier(count)
    responses: list = [None] * count

    def deliver(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = APIClient(raise_request_exception=False).post(
                "/api/v1/payments/webhook/", body, content_type="application/json", HTTP_X_PAYMENT_SIGNATURE=header
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    if before is not None:
        before()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def _backends_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_racing_past_the_replay_check_apply_the_event_once(settings):
    """Both deliveries are held until each has passed the "seen this event?" check and is about
    to write, so the unique constraint, not the check, has to decide: the race is forced, not
    hoped for."""
    # given an unpaid session whose row a request holds locked, so both deliveries stop at the
    # payment's foreign-key check, after the replay check
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    session = SessionFactory(scheduled_start=START, status=SessionStatus.CONFIRMED)
    body, header = _signed_delivery(session, "evt_race")
    locked, release = threading.Event(), threading.Event()

    def hold_the_session() -> None:
        try:
            with transaction.atomic():
                Session.objects.select_for_update().get(pk=session.pk)
                locked.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_session)
    holder.start()
    assert locked.wait(timeout=10)

    def release_once_both_wait() -> None:
        for _ in range(200):
            if _backends_waiting_for_a_lock() >= 2:
                break
            time.sleep(0.05)
        waiting.append(_backends_waiting_for_a_lock())
        release.set()

    # when the provider delivers the same event twice at once
    waiting: list = []
    try:
        responses = _deliver_from_threads(body, header, 2, before=release_once_both_wait)
    finally:
        release.set()
        holder.join(timeout=20)

    # then both were blocked past the check, one applied the event, the other was told it is a
    # duplicate; nobody got a 500, and the session was paid once
    assert waiting == [2]
    assert sorted(response.status_code for response in responses) == [200, 200], [r.content for r in responses]
    assert sorted(response.json()["result"] for response in responses) == ["duplicate", "processed"]
    assert Payment.objects.filter(session=session).count() == 1
    session.refresh_from_db()
    assert session.payment_status == PaymentStatus.PAID


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_simultaneous_deliveries_of_one_event_pay_the_session_once(settings):
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    session = SessionFactory(scheduled_start=START, status=SessionStatus.CONFIRMED)
    body, header = _signed_delivery(session, "evt_burst")

    responses = _deliver_from_threads(body, header, 8)

    assert [response.status_code for response in responses] == [200] * 8, [r.content for r in responses]
    results = sorted(response.json()["result"] for response in responses)
    assert results == ["duplicate"] * 7 + ["processed"]
    assert Payment.objects.filter(session=session).count() == 1
    session.refresh_from_db()
    assert session.payment_status == PaymentStatus.PAID

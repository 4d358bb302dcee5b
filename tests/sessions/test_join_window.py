"""The join rule: each reason, with time frozen on both sides of each window boundary, through
``join_decision`` (what the video call uses) and through the can-join endpoint."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from sessions.join_window import JoinDecision, join_decision, join_window_bounds
from sessions.models import PaymentStatus, SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.sessions.factories import ConfirmedPaidSessionFactory, SessionFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
OPENS = START - timedelta(minutes=15)
CLOSES = START + timedelta(minutes=120)
SECOND = timedelta(seconds=1)


@pytest.fixture
def ready(doctor, patient):
    """Confirmed and paid: only the clock decides."""
    return ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=START)


def test_window_bounds_follow_the_settings(ready, settings):
    settings.JOIN_WINDOW_OPENS_MINUTES_BEFORE = 5
    settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER = 60
    settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END = 5

    assert join_window_bounds(ready) == (START - timedelta(minutes=5), START + timedelta(minutes=60))


def test_window_of_a_session_longer_than_the_allowance_closes_after_its_end(ready, settings):
    settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER = 60
    settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END = 20

    # 50 minutes + 20 of grace is later than the 60-minute allowance.
    assert join_window_bounds(ready)[1] == START + timedelta(minutes=70)


@pytest.mark.parametrize(
    ("duration", "closes_after"),
    [
        (50, timedelta(minutes=120)),  # the allowance: end + grace is only 80 minutes in
        (90, timedelta(minutes=120)),  # end + grace is exactly the allowance
        (240, timedelta(minutes=270)),  # the longest session: its end plus the 30-minute grace
    ],
)
def test_the_window_closes_at_the_later_of_allowance_and_end_plus_grace(doctor, patient, duration, closes_after):
    session = ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=START, duration_minutes=duration
    )

    assert join_window_bounds(session) == (OPENS, START + closes_after)


@pytest.mark.parametrize(
    ("at", "can_join", "reason"),
    [
        (START + timedelta(hours=2), True, None),  # where the window of a short session closes
        (START + timedelta(hours=3), True, None),
        (START + timedelta(minutes=270) - SECOND, True, None),
        (START + timedelta(minutes=270), False, "WINDOW_CLOSED"),
    ],
)
def test_a_240_minute_session_can_be_joined_until_its_end_plus_grace(doctor, patient, at, can_join, reason):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=START, duration_minutes=240)

    decision = join_decision(session=session, user=patient, now=at)

    assert (decision.can_join, decision.reason, decision.closes_at) == (
        can_join,
        reason,
        START + timedelta(minutes=270),
    )


def test_can_join_endpoint_lets_a_240_minute_session_in_at_three_hours(doctor, patient):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=START, duration_minutes=240)

    with time_machine.travel(START + timedelta(hours=3), tick=False):
        body = client_for(patient).get(f"/api/v1/sessions/{session.pk}/can-join/").json()

    assert (body["can_join"], body["window"]["closes_at"]) == (True, "2026-03-05T19:30:00Z")


def test_a_full_decision(ready, patient):
    assert join_decision(session=ready, user=patient, now=OPENS) == JoinDecision(
        can_join=True,
        reason=None,
        minutes_until_start=15,
        session_status="confirmed",
        payment_status="paid",
        opens_at=OPENS,
        closes_at=CLOSES,
    )


@pytest.mark.parametrize(
    ("at", "can_join", "reason"),
    [
        (OPENS - SECOND, False, "TOO_EARLY"),
        (OPENS, True, None),
        (CLOSES - SECOND, True, None),
        (CLOSES, False, "WINDOW_CLOSED"),
    ],
)
@pytest.mark.parametrize("who", ["doctor", "patient"])
def test_the_window_boundaries(ready, who, at, can_join, reason):
    decision = join_decision(session=ready, user=getattr(ready, who), now=at)

    assert (decision.can_join, decision.reason) == (can_join, reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": SessionStatus.CANCELLED}, "SESSION_CANCELLED"),
        ({"status": SessionStatus.COMPLETED}, "SESSION_COMPLETED"),
        ({"status": SessionStatus.NO_SHOW}, "WINDOW_CLOSED"),
        ({"status": SessionStatus.REQUESTED}, "NOT_CONFIRMED"),
        ({"payment_status": PaymentStatus.PENDING}, "PAYMENT_PENDING"),
        ({"payment_status": PaymentStatus.FAILED}, "PAYMENT_PENDING"),
        ({"payment_status": PaymentStatus.REFUNDED}, "PAYMENT_PENDING"),
    ],
)
@pytest.mark.parametrize("at", [OPENS - SECOND, OPENS, CLOSES - SECOND, CLOSES])
def test_state_reasons_hold_on_both_sides_of_both_boundaries(doctor, patient, changes, reason, at):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=START, **changes)

    decision = join_decision(session=session, user=patient, now=at)

    assert (decision.can_join, decision.reason) == (False, reason)


@pytest.mark.parametrize("at", [OPENS - SECOND, OPENS, CLOSES - SECOND, CLOSES])
def test_a_non_participant_never_joins(ready, staff, outsider, at):
    assert join_decision(session=ready, user=staff, now=at).reason == "NOT_PARTICIPANT"
    assert join_decision(session=ready, user=outsider, now=at).reason == "NOT_PARTICIPANT"


@pytest.mark.parametrize(
    ("at", "can_join"), [(OPENS - SECOND, False), (OPENS, True), (CLOSES - SECOND, True), (CLOSES, False)]
)
def test_a_session_in_progress_can_be_rejoined_inside_the_window(doctor, patient, at, can_join):
    session = ConfirmedPaidSessionFactory(
        doctor=doctor, patient=patient, scheduled_start=START, status=SessionStatus.IN_PROGRESS
    )

    assert join_decision(session=session, user=doctor, now=at).can_join is can_join


@pytest.mark.parametrize(
    ("at", "minutes"),
    [(START - timedelta(minutes=20), 20), (START - timedelta(seconds=30), 1), (START, 0), (CLOSES, 0)],
)
def test_minutes_until_start_round_up_and_stop_at_zero(ready, patient, at, minutes):
    assert join_decision(session=ready, user=patient, now=at).minutes_until_start == minutes


# --- The endpoint --------------------------------------------------------------------------------


def _can_join(user, session, at):
    with time_machine.travel(at, tick=False):
        return client_for(user).get(f"/api/v1/sessions/{session.pk}/can-join/")


@pytest.mark.parametrize(
    ("at", "can_join", "reason"),
    [
        (OPENS - SECOND, False, "TOO_EARLY"),
        (OPENS, True, None),
        (CLOSES - SECOND, True, None),
        (CLOSES, False, "WINDOW_CLOSED"),
    ],
)
def test_can_join_endpoint_at_the_boundaries(ready, patient, at, can_join, reason):
    response = _can_join(patient, ready, at)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["can_join"], body["reason"]) == (can_join, reason)
    assert body["window"] == {"opens_at": "2026-03-05T14:45:00Z", "closes_at": "2026-03-05T17:00:00Z"}
    assert (body["session_status"], body["payment_status"]) == ("confirmed", "paid")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": SessionStatus.CANCELLED}, "SESSION_CANCELLED"),
        ({"status": SessionStatus.COMPLETED}, "SESSION_COMPLETED"),
        ({"status": SessionStatus.REQUESTED}, "NOT_CONFIRMED"),
        ({"payment_status": PaymentStatus.PENDING}, "PAYMENT_PENDING"),
    ],
)
def test_can_join_endpoint_gives_the_state_reasons(doctor, patient, changes, reason):
    session = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient, scheduled_start=START, **changes)

    body = _can_join(doctor, session, START).json()

    assert (body["can_join"], body["reason"]) == (False, reason)


def test_staff_see_the_session_but_are_not_participants(ready, staff):
    body = _can_join(staff, ready, START).json()

    assert (body["can_join"], body["reason"]) == (False, "NOT_PARTICIPANT")


def test_another_patient_gets_not_found(ready, outsider):
    assert_error(_can_join(outsider, ready, START), 404, "NOT_FOUND")


def test_an_unknown_session_is_not_found(patient_client):
    response = patient_client.get("/api/v1/sessions/00000000-0000-4000-8000-000000000000/can-join/")

    assert_error(response, 404, "NOT_FOUND")


def test_a_malformed_session_id_is_not_found(patient_client):
    assert_error(patient_client.get("/api/v1/sessions/not-a-uuid/can-join/"), 404, "NOT_FOUND")


def test_requested_session_at_its_start_is_not_confirmed(doctor, patient):
    session = SessionFactory(doctor=doctor, patient=patient, scheduled_start=START)

    assert join_decision(session=session, user=patient, now=START).reason == "NOT_CONFIRMED"

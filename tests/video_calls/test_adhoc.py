"""Ad-hoc calls over the API: initiate, accept, decline (declined/busy), cancel, hang up, and every
refusal in the error shape."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from sessions.join_window import join_window_bounds
from sessions.models import SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.sessions.factories import SessionFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, event_types, open_session
from video_calls.models import (
    Call,
    CallEvent,
    CallEventType,
    CallParticipant,
    CallStatus,
    EndReason,
    ParticipantStatus,
)
from video_calls.services.credentials import turn_credential


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def care(doctor, patient):
    """The persona doctor and patient share a session, so they may ring each other."""
    return open_session(doctor, patient, starts_in_minutes=60 * 24)


@pytest.fixture
def ringing(care, doctor, doctor_client, patient):
    response = doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "media": "voice"})
    assert response.status_code == 201, response.content
    return Call.objects.get(pk=response.json()["id"])


def test_initiate_rings_the_callee_and_tells_both(
    care, doctor, doctor_client, patient, django_capture_on_commit_callbacks
):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(patient)
    recorder.listen_user(doctor)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "media": "voice"})

    # Then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "ringing"
    assert body["kind"] == "ad_hoc"
    assert body["media"] == "voice"
    assert len(body["room_name"]) >= 22  # at least 128 random bits, URL-safe
    statuses = {p["user"]["id"]: p["status"] for p in body["participants"]}
    assert statuses == {str(doctor.pk): "admitted", str(patient.pk): "invited"}
    [initiated] = recorder.for_user(patient)
    assert initiated["type"] == "call.initiated"
    assert initiated["data"]["call_id"] == body["id"]
    assert initiated["data"]["caller"] == {"id": str(doctor.pk), "role": "doctor"}
    assert event_types(recorder.for_user(doctor)) == ["call.initiated"]
    assert list(CallEvent.objects.filter(call_id=body["id"]).values_list("type", flat=True)) == ["initiated"]


def test_initiate_answers_the_callers_ice_servers(care, doctor, doctor_client, patient, settings):
    # Given
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478"]
    settings.CALL_TURN_SECRET = "secret"
    settings.CALL_TURN_TTL_SECONDS = 600

    # When
    response = doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk)})

    # Then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "ringing"
    stun, turn = body["ice_servers"]
    assert stun == {"urls": list(settings.CALL_STUN_URLS)}
    expires = int(NOW.timestamp()) + 600
    assert turn["username"] == f"{expires}:{doctor.pk}"  # the caller's, not the callee's
    assert turn["credential"] == turn_credential(username=turn["username"], secret="secret")
    assert body["ice_expires_at"] == "2026-03-02T09:10:00Z"


def test_initiate_for_a_session_caps_the_callers_ice_at_the_window_close(doctor, patient, doctor_client, settings):
    # Given: the session's window closes before the TURN lifetime is over
    session = open_session(doctor, patient)
    settings.CALL_TURN_TTL_SECONDS = 60 * 60 * 24
    closes_at = join_window_bounds(session)[1]

    # When
    response = doctor_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "session_id": str(session.pk)}
    )

    # Then
    assert response.status_code == 201, response.content
    assert response.json()["ice_expires_at"] == closes_at.isoformat().replace("+00:00", "Z")


def test_accept_connects_both_and_returns_credentials(ringing, patient, patient_client, doctor, settings):
    # Given
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478"]
    settings.CALL_TURN_SECRET = "secret"

    # When
    response = patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/")

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["call"]["status"] == "ongoing"
    assert body["participant_status"] == "joined"
    assert body["waiting"] is False
    assert body["websocket_url"] == settings.WEBSOCKET_PUBLIC_URL
    assert body["ice_servers"][1]["username"].endswith(f":{patient.pk}")
    assert body["agora"] is None
    ringing.refresh_from_db()
    assert ringing.accepted_at == NOW
    assert ringing.started_at == NOW
    joined = CallParticipant.objects.filter(call=ringing, status=ParticipantStatus.JOINED)
    assert set(joined.values_list("user_id", flat=True)) == {doctor.pk, patient.pk}
    # A voice call starts with cameras off.
    assert not joined.filter(video_enabled=True).exists()


def test_caller_cannot_accept_their_own_call(ringing, doctor_client):
    assert_error(doctor_client.post(f"/api/v1/calls/{ringing.pk}/accept/"), 403, "NOT_CALLEE")


def test_outsider_cannot_see_the_call(ringing, outsider_client):
    for action in ("accept", "decline", "cancel", "hangup", "join", "leave", "end"):
        assert_error(outsider_client.post(f"/api/v1/calls/{ringing.pk}/{action}/"), 404, "CALL_NOT_FOUND")


def test_unknown_call_is_not_found(patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{uuid.uuid4()}/accept/"), 404, "CALL_NOT_FOUND")


def test_malformed_call_id_is_not_found(patient_client):
    assert_error(patient_client.post("/api/v1/calls/not-a-uuid/accept/"), 404, "NOT_FOUND")


@pytest.mark.parametrize("reason", ["declined", "busy"])
def test_decline_with_reason(ringing, patient, patient_client, doctor, reason, django_capture_on_commit_callbacks):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(doctor)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(f"/api/v1/calls/{ringing.pk}/decline/", {"reason": reason})

    # Then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "declined"
    assert response.json()["end_reason"] == reason
    [declined] = recorder.for_user(doctor)
    assert declined["type"] == "call.declined"
    assert declined["data"]["reason"] == reason
    assert CallParticipant.objects.get(call=ringing, user=patient).status == ParticipantStatus.DECLINED


def test_decline_with_an_unknown_reason_is_invalid(ringing, patient_client):
    error = assert_error(
        patient_client.post(f"/api/v1/calls/{ringing.pk}/decline/", {"reason": "bored"}), 400, "VALIDATION_ERROR"
    )
    assert "reason" in error["details"]


def test_accept_after_decline_is_a_conflict(ringing, patient_client):
    # Given
    patient_client.post(f"/api/v1/calls/{ringing.pk}/decline/")

    # When
    response = patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/")

    # Then
    error = assert_error(response, 409, "INVALID_CALL_STATE")
    assert error["details"]["status"] == "declined"


def test_cancel_by_caller_only(ringing, doctor_client, patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{ringing.pk}/cancel/"), 403, "NOT_CALLER")

    response = doctor_client.post(f"/api/v1/calls/{ringing.pk}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["end_reason"] == EndReason.CALLER_CANCELLED
    assert_error(patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/"), 409, "INVALID_CALL_STATE")


def test_hangup_while_ringing_is_a_cancel_by_the_caller(ringing, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{ringing.pk}/hangup/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"


def test_hangup_while_ringing_is_a_decline_by_the_callee(ringing, patient_client):
    response = patient_client.post(f"/api/v1/calls/{ringing.pk}/hangup/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "declined"


def test_hangup_completes_an_ongoing_call_with_server_times(
    ringing, patient_client, doctor_client, doctor, patient, django_capture_on_commit_callbacks
):
    # Given an accepted call, 90 seconds later
    patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/")
    recorder = EventRecorder()
    recorder.listen_user(patient)

    # When
    with (
        time_machine.travel(NOW.replace(minute=1, second=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = doctor_client.post(f"/api/v1/calls/{ringing.pk}/hangup/")
    with time_machine.travel(NOW.replace(minute=1, second=30), tick=False):
        # read at the clock it was sent at: the encrypted channel layer refuses messages from the future
        [ended] = recorder.for_user(patient)

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert body["duration_seconds"] == 90
    assert body["end_reason"] == "hangup"
    assert {p["status"] for p in body["participants"]} == {"left"}
    assert {p["connected_seconds"] for p in body["participants"]} == {90}
    assert ended["type"] == "call.ended"
    assert ended["data"]["duration_seconds"] == 90
    types = list(CallEvent.objects.filter(call=ringing).values_list("type", flat=True))
    assert types == ["initiated", "accepted", "joined", "joined", "ended"]
    assert_error(doctor_client.post(f"/api/v1/calls/{ringing.pk}/hangup/"), 409, "INVALID_CALL_STATE")


def test_leaving_a_one_to_one_call_ends_it(ringing, patient_client):
    patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/")

    response = patient_client.post(f"/api/v1/calls/{ringing.pk}/leave/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"


def test_rejoining_an_ongoing_call_returns_fresh_credentials(ringing, patient_client):
    patient_client.post(f"/api/v1/calls/{ringing.pk}/accept/")

    response = patient_client.post(f"/api/v1/calls/{ringing.pk}/join/")

    assert response.status_code == 200, response.content
    assert response.json()["participant_status"] == "joined"


def test_a_ringing_call_cannot_be_joined(ringing, patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{ringing.pk}/join/"), 409, "INVALID_CALL_STATE")


def test_cannot_call_yourself(doctor, doctor_client):
    response = doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(doctor.pk)})

    error = assert_error(response, 400, "CANNOT_CALL_SELF")
    assert error["details"] == {"callee_id": [{"message": "You cannot call yourself.", "code": "self"}]}


def test_a_session_call_rings_the_sessions_other_participant_only(doctor, doctor_client, patient):
    """Its details are field errors in the documented ``{message, code}`` shape."""
    other_patient = PatientFactory()
    SessionFactory(doctor=doctor, patient=other_patient)
    session = SessionFactory(doctor=doctor, patient=patient, scheduled_start=NOW + timedelta(days=2))

    response = doctor_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(other_patient.pk), "session_id": str(session.pk)}
    )

    error = assert_error(response, 400, "CALLEE_NOT_IN_SESSION")
    assert [item["code"] for item in error["details"]["callee_id"]] == ["not_in_session"]


def test_patient_cannot_ring_a_stranger(patient_client, outsider):
    response = patient_client.post("/api/v1/calls/initiate/", {"callee_id": str(outsider.pk)})

    assert_error(response, 404, "USER_NOT_FOUND")


def test_patient_cannot_ring_a_doctor_they_have_no_session_with(patient_client):
    stranger = DoctorFactory()

    response = patient_client.post("/api/v1/calls/initiate/", {"callee_id": str(stranger.pk)})

    assert_error(response, 404, "USER_NOT_FOUND")


@pytest.mark.parametrize("caller", ["doctor", "patient"])
def test_a_pair_whose_only_session_was_cancelled_cannot_ring_each_other(doctor, patient, caller):
    # Given their only session was cancelled before it took place
    open_session(doctor, patient, starts_in_minutes=60 * 24, status=SessionStatus.CANCELLED)
    callee = patient if caller == "doctor" else doctor

    # When either rings the other
    response = client_for(doctor if caller == "doctor" else patient).post(
        "/api/v1/calls/initiate/", {"callee_id": str(callee.pk)}
    )

    # Then the other is not found, and nothing rings
    assert_error(response, 404, "USER_NOT_FOUND")
    assert not Call.objects.exists()


@pytest.mark.parametrize("status", [SessionStatus.REQUESTED, SessionStatus.COMPLETED, SessionStatus.NO_SHOW])
def test_a_session_that_was_not_cancelled_lets_the_doctor_ring_the_patient(doctor, patient, doctor_client, status):
    open_session(doctor, patient, starts_in_minutes=60 * 24, status=status)

    response = doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk)})

    assert response.status_code == 201, response.content


def test_staff_linking_a_session_see_it_but_are_not_its_participant(doctor, patient, staff_client):
    # Staff see every session, so it is found; joining its window is for its participants.
    session = open_session(doctor, patient)

    response = staff_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "session_id": str(session.pk)}
    )

    assert_error(response, 403, "NOT_PARTICIPANT")


def test_unknown_callee_is_not_found(doctor_client):
    assert_error(doctor_client.post("/api/v1/calls/initiate/", {"callee_id": str(uuid.uuid4())}), 404, "USER_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"callee_id": "nope"},
        {"callee_id": str(uuid.uuid4()), "media": "hologram"},
        {"callee_id": ["x"]},
        {"callee_id": str(uuid.uuid4()), "session_id": "2024-13-45"},
    ],
)
def test_bad_initiate_input(doctor_client, body):
    assert_error(doctor_client.post("/api/v1/calls/initiate/", body, format="json"), 400, "VALIDATION_ERROR")


def test_busy_callee_is_refused(ringing, care, staff_client, patient):
    assert_error(staff_client.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk)}), 409, "CALLEE_BUSY")


def test_call_linked_to_a_session_obeys_its_window(doctor, patient, doctor_client):
    # Given a session tomorrow: its window is not open
    session = open_session(doctor, patient, starts_in_minutes=60 * 24)

    # When
    response = doctor_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "session_id": str(session.pk)}
    )

    # Then
    error = assert_error(response, 409, "TOO_EARLY")
    assert error["details"]["reason"] == "TOO_EARLY"


def test_call_linked_to_someone_elses_session_is_not_found(doctor, doctor_client, patient, care):
    other = open_session(DoctorFactory(), PatientFactory())

    response = doctor_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "session_id": str(other.pk)}
    )

    assert_error(response, 404, "SESSION_NOT_FOUND")


def test_accepting_a_session_call_records_the_session_join(doctor, patient, doctor_client, patient_client):
    # Given a session whose window is open
    session = open_session(doctor, patient)
    call_id = doctor_client.post(
        "/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "session_id": str(session.pk)}
    ).json()["id"]

    # When
    response = patient_client.post(f"/api/v1/calls/{call_id}/accept/")

    # Then
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == "in_progress"
    assert session.actual_start == NOW


def test_staff_may_ring_anyone(staff_client, outsider):
    response = staff_client.post("/api/v1/calls/initiate/", {"callee_id": str(outsider.pk)})

    assert response.status_code == 201, response.content


def test_callee_sees_the_call_in_events_of_a_client_for_them(ringing, patient):
    # The callee's own client (not the persona fixture) can answer too: tokens are per user.
    response = client_for(patient).post(f"/api/v1/calls/{ringing.pk}/accept/")

    assert response.status_code == 200, response.content
    assert Call.objects.get(pk=ringing.pk).status == CallStatus.ONGOING
    assert CallEvent.objects.filter(call=ringing, type=CallEventType.ACCEPTED).count() == 1

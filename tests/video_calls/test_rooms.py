"""Session rooms over the API: get-or-create, the join gates (window, participant, passcode,
capacity), leave, end with server-computed times, room settings, media state and the participant
list."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from sessions.models import PaymentStatus, SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, event_types, open_session
from video_calls.models import Call, CallEvent, CallParticipant, CallStatus, ParticipantStatus


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def session(doctor, patient):
    return open_session(doctor, patient)


@pytest.fixture
def room(session, doctor_client) -> Call:
    response = doctor_client.post(f"/api/v1/sessions/{session.pk}/room/")
    assert response.status_code == 201, response.content
    return Call.objects.get(pk=response.json()["id"])


def _join(client, room, **body):
    return client.post(f"/api/v1/calls/{room.pk}/join/", body, format="json")


@pytest.fixture
def both_joined(room, doctor, doctor_client, patient, patient_client):
    """The doctor joined, admitted the patient, and the patient joined."""
    assert _join(doctor_client, room).status_code == 200
    assert _join(patient_client, room).status_code == 202
    doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")
    assert _join(patient_client, room).status_code == 200
    return room


# --- Room -------------------------------------------------------------------------------------


def test_room_is_created_once_per_session(session, doctor, patient, doctor_client, patient_client):
    # When
    created = doctor_client.post(f"/api/v1/sessions/{session.pk}/room/")
    again = patient_client.post(f"/api/v1/sessions/{session.pk}/room/")

    # Then
    assert created.status_code == 201, created.content
    assert again.status_code == 200, again.content
    body = created.json()
    assert again.json()["id"] == body["id"]
    assert body["kind"] == "session"
    assert body["status"] == "waiting"
    assert body["host_id"] == str(doctor.pk)
    assert body["settings"] == {
        "max_participants": 2,
        "has_passcode": False,
        "allow_join_before_host": False,
        "waiting_room_enabled": True,
        "chat_enabled": True,
        "screen_share_enabled": True,
        "mute_on_join": False,
        "recording_enabled": False,
        "auto_recording": False,
    }
    roles = {p["user"]["id"]: (p["role"], p["is_host"]) for p in body["participants"]}
    assert roles == {str(doctor.pk): ("doctor", True), str(patient.pk): ("patient", False)}
    assert Call.objects.filter(session=session).count() == 1


def test_room_get_before_creation_is_not_found(session, patient_client):
    assert_error(patient_client.get(f"/api/v1/sessions/{session.pk}/room/"), 404, "ROOM_NOT_FOUND")


def test_room_get_after_creation(room, session, patient_client):
    response = patient_client.get(f"/api/v1/sessions/{session.pk}/room/")

    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(room.pk)


def test_room_of_someone_elses_session_is_not_found(session, outsider_client):
    assert_error(outsider_client.post(f"/api/v1/sessions/{session.pk}/room/"), 404, "SESSION_NOT_FOUND")
    assert_error(outsider_client.get(f"/api/v1/sessions/{session.pk}/room/"), 404, "SESSION_NOT_FOUND")


def test_room_of_unknown_session_is_not_found(doctor_client):
    assert_error(doctor_client.post(f"/api/v1/sessions/{uuid.uuid4()}/room/"), 404, "SESSION_NOT_FOUND")


def test_no_room_for_a_cancelled_session(session, doctor_client):
    session.status = SessionStatus.CANCELLED
    session.save()

    assert_error(doctor_client.post(f"/api/v1/sessions/{session.pk}/room/"), 409, "SESSION_CANCELLED")


def test_staff_may_open_the_room(session, staff_client):
    assert staff_client.post(f"/api/v1/sessions/{session.pk}/room/").status_code == 201


def test_a_doctor_in_the_skip_list_gets_rooms_without_waiting_room(session, doctor, doctor_client, settings):
    settings.CALL_WAITING_ROOM_SKIP_DOCTOR_IDS = [str(doctor.pk)]

    response = doctor_client.post(f"/api/v1/sessions/{session.pk}/room/")

    assert response.json()["settings"]["waiting_room_enabled"] is False


# --- Join -------------------------------------------------------------------------------------


def test_doctor_joins_first(room, session, doctor, doctor_client, settings, django_capture_on_commit_callbacks):
    # Given
    settings.AGORA_APP_ID = "0123456789abcdef0123456789abcdef"
    settings.AGORA_APP_CERTIFICATE = "fedcba9876543210fedcba9876543210"
    recorder = EventRecorder()
    recorder.listen_call(room)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _join(doctor_client, room)

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["call"]["status"] == "ongoing"
    assert body["participant_status"] == "joined"
    assert body["ice_servers"][0]["urls"]
    assert body["agora"]["channel"] == room.room_name
    assert body["agora"]["token"].startswith("006")
    # The session's window closes 2 h after its start; the token expires 1 h from now, earlier.
    assert body["agora"]["expires_at"] == "2026-03-02T10:00:00Z"
    assert body["websocket_url"] == "ws://localhost:8000/ws/"
    room.refresh_from_db()
    assert room.started_at == NOW
    session.refresh_from_db()
    assert session.status == SessionStatus.IN_PROGRESS
    assert session.actual_start == NOW
    [joined] = recorder.for_call(room)
    assert joined["type"] == "call.participant_joined"
    assert joined["data"]["participant"]["user"] == {"id": str(doctor.pk), "role": "doctor"}


def test_joining_twice_is_a_reconnect(room, doctor_client):
    _join(doctor_client, room)

    response = _join(doctor_client, room)

    assert response.status_code == 200, response.content
    assert CallEvent.objects.filter(call=room, type="joined").count() == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"scheduled_start": NOW + timedelta(hours=2)}, "TOO_EARLY"),
        ({"scheduled_start": NOW - timedelta(hours=3)}, "WINDOW_CLOSED"),
        ({"payment_status": PaymentStatus.PENDING}, "PAYMENT_PENDING"),
        ({"status": SessionStatus.REQUESTED}, "NOT_CONFIRMED"),
        ({"status": SessionStatus.CANCELLED}, "SESSION_CANCELLED"),
        ({"status": SessionStatus.COMPLETED}, "SESSION_COMPLETED"),
    ],
)
def test_join_refusals_carry_the_window_reason(room, session, doctor_client, change, code):
    # Given
    for field, value in change.items():
        setattr(session, field, value)
    session.blocked_until = session.scheduled_start + timedelta(hours=1)
    session.save()

    # When
    response = _join(doctor_client, room)

    # Then
    error = assert_error(response, 409, code)
    assert error["details"]["reason"] == code
    assert CallParticipant.objects.get(call=room, role="doctor").status == ParticipantStatus.INVITED


def test_staff_who_is_not_on_the_list_cannot_join(room, staff_client):
    assert_error(_join(staff_client, room), 403, "NOT_PARTICIPANT")


def test_outsider_cannot_join(room, outsider_client):
    assert_error(_join(outsider_client, room), 404, "CALL_NOT_FOUND")


def test_passcode_is_hashed_and_required(room, doctor_client, patient_client):
    # Given
    response = doctor_client.patch(f"/api/v1/calls/{room.pk}/settings/", {"passcode": "4711"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["settings"]["has_passcode"] is True
    room.refresh_from_db()
    assert "4711" not in room.passcode_hash

    # Then
    assert_error(_join(patient_client, room), 403, "INVALID_PASSCODE")
    assert_error(_join(patient_client, room, passcode="0000"), 403, "INVALID_PASSCODE")
    assert _join(patient_client, room, passcode="4711").status_code == 202
    # The host needs no passcode.
    assert _join(doctor_client, room).status_code == 200


def test_room_full(both_joined, doctor_client, patient):
    # Given an interpreter invited (limit 3), then the host lowers the limit to who is connected
    interpreter = PatientFactory()
    doctor_client.post(f"/api/v1/calls/{both_joined.pk}/invitations/", {"user_id": str(interpreter.pk)})
    response = doctor_client.patch(
        f"/api/v1/calls/{both_joined.pk}/settings/", {"max_participants": 2, "waiting_room_enabled": False}
    )
    assert response.status_code == 200, response.content

    # When
    response = _join(client_for(interpreter), both_joined)

    # Then
    error = assert_error(response, 409, "ROOM_FULL")
    assert error["details"] == {"max_participants": 2}


def test_without_waiting_room_the_patient_waits_only_for_the_host(room, doctor_client, patient_client):
    # Given
    doctor_client.patch(f"/api/v1/calls/{room.pk}/settings/", {"waiting_room_enabled": False})

    # When the patient comes first, then the doctor
    early = _join(patient_client, room)
    _join(doctor_client, room)
    later = _join(patient_client, room)

    # Then
    assert early.status_code == 202
    assert early.json()["ice_servers"] is None
    assert later.status_code == 200, later.content


def test_allow_join_before_host(room, doctor_client, patient_client):
    doctor_client.patch(
        f"/api/v1/calls/{room.pk}/settings/", {"waiting_room_enabled": False, "allow_join_before_host": True}
    )

    response = _join(patient_client, room)

    assert response.status_code == 200, response.content
    assert response.json()["call"]["status"] == "ongoing"


# --- Leave and end ----------------------------------------------------------------------------


def test_leave_keeps_the_room_open(both_joined, patient, patient_client, django_capture_on_commit_callbacks):
    recorder = EventRecorder()
    recorder.listen_call(both_joined)

    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(f"/api/v1/calls/{both_joined.pk}/leave/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ongoing"
    assert CallParticipant.objects.get(call=both_joined, user=patient).status == ParticipantStatus.LEFT
    [left] = recorder.for_call(both_joined)
    assert left["type"] == "call.participant_left"
    assert left["data"]["reason"] == "left"


def test_leave_when_not_in_the_call(room, patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{room.pk}/leave/"), 409, "INVALID_PARTICIPANT_STATE")


def test_only_the_host_ends_the_call(both_joined, patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{both_joined.pk}/end/"), 403, "NOT_HOST")


def test_end_completes_call_and_session_with_server_times(
    room, session, doctor, doctor_client, patient, patient_client, django_capture_on_commit_callbacks
):
    # Given the doctor joins at 09:00, the patient is admitted and joins at 09:02
    _join(doctor_client, room)
    _join(patient_client, room)
    doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        _join(patient_client, room)
    recorder = EventRecorder()
    recorder.listen_user(patient)

    # When the doctor ends it at 09:40 (signed in again: access tokens last 15 minutes)
    with time_machine.travel(NOW + timedelta(minutes=40), tick=False):
        doctor_client = client_for(doctor)
        with django_capture_on_commit_callbacks(execute=True):
            response = doctor_client.post(f"/api/v1/calls/{room.pk}/end/")
        # read while the clock is still at 09:40: a message the encrypted channel layer sealed
        # then is refused by a clock 40 minutes earlier, as one from the future
        ended = [event for event in recorder.for_user(patient) if event["type"] == "call.ended"]

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert body["end_reason"] == "host_ended"
    assert body["duration_seconds"] == 40 * 60
    connected = {p["user"]["id"]: p["connected_seconds"] for p in body["participants"]}
    assert connected == {str(doctor.pk): 40 * 60, str(patient.pk): 38 * 60}
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED
    assert session.actual_start == NOW
    assert session.actual_end == NOW + timedelta(minutes=40)
    assert ended[0]["data"]["end_reason"] == "host_ended"
    assert_error(client_for(doctor).post(f"/api/v1/calls/{room.pk}/end/"), 409, "INVALID_CALL_STATE")
    assert_error(_join(patient_client, room), 409, "INVALID_CALL_STATE")


def test_ending_before_the_patient_came_leaves_the_session_for_the_no_show_sweep(room, session, doctor_client):
    _join(doctor_client, room)

    response = doctor_client.post(f"/api/v1/calls/{room.pk}/end/")

    assert response.json()["status"] == "completed"
    session.refresh_from_db()
    assert session.status == SessionStatus.IN_PROGRESS


def test_ending_a_room_nobody_joined_cancels_it(room, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/end/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == CallStatus.CANCELLED


def test_staff_may_end_any_room(both_joined, staff_client):
    response = staff_client.post(f"/api/v1/calls/{both_joined.pk}/end/")

    assert response.status_code == 200, response.content
    assert response.json()["end_reason"] == "staff_ended"


# --- Settings, media, participants ------------------------------------------------------------


def test_settings_are_host_only(room, patient_client):
    assert_error(patient_client.patch(f"/api/v1/calls/{room.pk}/settings/", {"chat_enabled": False}), 403, "NOT_HOST")


@pytest.mark.parametrize("body", [{"max_participants": 1}, {"max_participants": 10**9}, {"mute_on_join": "maybe"}])
def test_bad_settings_are_rejected(room, doctor_client, body):
    assert_error(
        doctor_client.patch(f"/api/v1/calls/{room.pk}/settings/", body, format="json"), 400, "VALIDATION_ERROR"
    )


def test_limit_above_the_setting_is_rejected(room, doctor_client, settings):
    settings.CALL_MAX_PARTICIPANTS = 4

    response = doctor_client.patch(f"/api/v1/calls/{room.pk}/settings/", {"max_participants": 5})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "max_participants" in error["details"]


def test_media_state_update_is_told_to_the_room(
    both_joined, patient, patient_client, django_capture_on_commit_callbacks
):
    recorder = EventRecorder()
    recorder.listen_call(both_joined)

    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.patch(
            f"/api/v1/calls/{both_joined.pk}/media/", {"audio_enabled": False, "screen_sharing": True}
        )

    assert response.status_code == 200, response.content
    assert response.json()["audio_enabled"] is False
    assert response.json()["screen_sharing"] is True
    [updated] = recorder.for_call(both_joined)
    assert updated["type"] == "media.updated"
    assert updated["data"]["user_id"] == str(patient.pk)
    assert updated["data"]["audio_enabled"] is False


def test_screen_sharing_can_be_turned_off_by_the_host(both_joined, doctor_client, patient_client):
    doctor_client.patch(f"/api/v1/calls/{both_joined.pk}/settings/", {"screen_share_enabled": False})

    response = patient_client.patch(f"/api/v1/calls/{both_joined.pk}/media/", {"screen_sharing": True})

    assert_error(response, 403, "SCREEN_SHARE_DISABLED")


def test_media_state_needs_a_connected_participant(both_joined, patient_client):
    patient_client.post(f"/api/v1/calls/{both_joined.pk}/leave/")

    response = patient_client.patch(f"/api/v1/calls/{both_joined.pk}/media/", {"audio_enabled": True})

    assert_error(response, 409, "INVALID_PARTICIPANT_STATE")


def test_media_state_needs_a_field(both_joined, patient_client):
    assert_error(patient_client.patch(f"/api/v1/calls/{both_joined.pk}/media/", {}), 400, "VALIDATION_ERROR")


def test_media_of_a_room_not_started(room, patient_client):
    response = patient_client.patch(f"/api/v1/calls/{room.pk}/media/", {"audio_enabled": True})

    assert_error(response, 409, "INVALID_CALL_STATE")


def test_participant_list(both_joined, doctor, patient_client, outsider_client):
    response = patient_client.get(f"/api/v1/calls/{both_joined.pk}/participants/")

    assert response.status_code == 200, response.content
    hosts = [p["user"]["id"] for p in response.json() if p["is_host"]]
    assert hosts == [str(doctor.pk)]
    assert {p["status"] for p in response.json()} == {"joined"}
    assert_error(outsider_client.get(f"/api/v1/calls/{both_joined.pk}/participants/"), 404, "CALL_NOT_FOUND")


def test_every_join_and_leave_writes_an_event(both_joined, doctor_client):
    doctor_client.post(f"/api/v1/calls/{both_joined.pk}/end/")

    types = event_types(
        [{"type": t} for t in CallEvent.objects.filter(call=both_joined).values_list("type", flat=True)]
    )
    assert types == ["joined", "checked_in", "admitted", "joined", "ended"]

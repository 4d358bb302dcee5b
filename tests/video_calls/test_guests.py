"""Guests and group consultations: invitations, declining, the host passing on, and removal."""

import uuid

import pytest
import time_machine

from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, open_session
from video_calls.models import Call, CallEvent, CallParticipant, ParticipantStatus


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def room(doctor, patient, doctor_client) -> Call:
    session = open_session(doctor, patient)
    return Call.objects.get(pk=doctor_client.post(f"/api/v1/sessions/{session.pk}/room/").json()["id"])


@pytest.fixture
def relative():
    return PatientFactory()


def _invite(client, call, user):
    return client.post(f"/api/v1/calls/{call.pk}/invitations/", {"user_id": str(user.pk)})


def test_doctor_invites_a_family_member(room, doctor_client, relative, django_capture_on_commit_callbacks):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(relative)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(doctor_client, room, relative)

    # Then
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "guest"
    assert response.json()["status"] == "invited"
    room.refresh_from_db()
    assert room.max_participants == 3
    [invited] = recorder.for_user(relative)
    assert invited["type"] == "call.invited"
    assert invited["data"]["call_id"] == str(room.pk)


def test_guest_joins_through_the_waiting_room_on_the_doctors_window(room, doctor_client, relative):
    # Given
    _invite(doctor_client, room, relative)
    guest = client_for(relative)
    doctor_client.post(f"/api/v1/calls/{room.pk}/join/")

    # When
    waiting = guest.post(f"/api/v1/calls/{room.pk}/join/")
    doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{relative.pk}/admit/")
    joined = guest.post(f"/api/v1/calls/{room.pk}/join/")

    # Then
    assert waiting.status_code == 202, waiting.content
    assert joined.status_code == 200, joined.content


def test_only_the_host_invites(room, patient_client, relative):
    assert_error(_invite(patient_client, room, relative), 403, "NOT_HOST")


def test_invite_unknown_user(room, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/invitations/", {"user_id": str(uuid.uuid4())})

    assert_error(response, 404, "USER_NOT_FOUND")


def test_invite_someone_already_listed(room, doctor_client, patient):
    assert_error(_invite(doctor_client, room, patient), 409, "ALREADY_PARTICIPANT")


def test_invitations_stop_at_the_maximum(room, doctor_client, settings):
    settings.CALL_MAX_PARTICIPANTS = 3
    assert _invite(doctor_client, room, PatientFactory()).status_code == 201

    assert_error(_invite(doctor_client, room, PatientFactory()), 409, "ROOM_FULL")


def test_invitee_declines(room, doctor, doctor_client, relative, django_capture_on_commit_callbacks):
    # Given
    _invite(doctor_client, room, relative)
    recorder = EventRecorder()
    recorder.listen_user(doctor)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(relative).post(f"/api/v1/calls/{room.pk}/invitation/decline/")

    # Then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "declined"
    assert [event["type"] for event in recorder.for_user(doctor)] == ["call.invitation_declined"]
    assert CallEvent.objects.filter(call=room, type="invite_declined").count() == 1


def test_decline_without_invitation(room, patient_client):
    assert_error(patient_client.post(f"/api/v1/calls/{room.pk}/invitation/decline/"), 409, "INVALID_PARTICIPANT_STATE")


def test_staff_create_a_group_consultation(staff, staff_client, doctor, patient):
    response = staff_client.post(
        "/api/v1/calls/group/",
        {"title": "Case review", "invitee_ids": [str(doctor.pk), str(patient.pk)], "passcode": "2468"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "group"
    assert body["host_id"] == str(staff.pk)
    assert body["settings"]["max_participants"] == 3
    assert body["settings"]["has_passcode"] is True
    roles = {p["user"]["id"]: (p["role"], p["status"]) for p in body["participants"]}
    assert roles == {
        str(staff.pk): ("staff", "invited"),
        str(doctor.pk): ("doctor", "invited"),
        str(patient.pk): ("patient", "invited"),
    }


def test_patients_do_not_create_group_consultations(patient_client, doctor):
    response = patient_client.post("/api/v1/calls/group/", {"invitee_ids": [str(doctor.pk)]}, format="json")

    assert_error(response, 403, "CLINICIANS_ONLY")


@pytest.mark.parametrize(
    "body", [{}, {"invitee_ids": []}, {"invitee_ids": ["x"]}, {"invitee_ids": [str(uuid.uuid4())], "media": "fax"}]
)
def test_bad_group_input(staff_client, body):
    assert_error(staff_client.post("/api/v1/calls/group/", body, format="json"), 400, "VALIDATION_ERROR")


def test_group_with_unknown_invitee(staff_client):
    response = staff_client.post("/api/v1/calls/group/", {"invitee_ids": [str(uuid.uuid4())]}, format="json")

    assert_error(response, 404, "USER_NOT_FOUND")


def test_host_passes_to_the_next_clinician(
    staff, staff_client, doctor, doctor_client, django_capture_on_commit_callbacks
):
    # Given a group call with the staff host and a doctor connected
    second = DoctorFactory()
    call_id = staff_client.post(
        "/api/v1/calls/group/", {"invitee_ids": [str(doctor.pk), str(second.pk)]}, format="json"
    ).json()["id"]
    staff_client.post(f"/api/v1/calls/{call_id}/join/")
    doctor_client.post(f"/api/v1/calls/{call_id}/join/")
    with time_machine.travel(NOW.replace(second=5), tick=False):
        client_for(second).post(f"/api/v1/calls/{call_id}/join/")
    recorder = EventRecorder()
    recorder.listen_user(second)

    # When the host leaves
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/api/v1/calls/{call_id}/leave/")

    # Then the clinician present longest hosts, and everyone is told
    call = Call.objects.get(pk=call_id)
    assert call.host_id == doctor.pk
    changed = [event for event in recorder.for_user(second) if event["type"] == "call.host_changed"]
    assert changed[0]["data"]["host"] == {"id": str(doctor.pk), "role": "doctor"}
    assert CallEvent.objects.filter(call=call, type="host_changed", subject=doctor).count() == 1
    # The new host can run the call.
    assert doctor_client.post(f"/api/v1/calls/{call_id}/end/").status_code == 200


def test_host_removes_a_participant(room, doctor_client, relative, django_capture_on_commit_callbacks):
    # Given the guest is in the call
    _invite(doctor_client, room, relative)
    doctor_client.post(f"/api/v1/calls/{room.pk}/join/")
    guest = client_for(relative)
    guest.post(f"/api/v1/calls/{room.pk}/join/")
    doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{relative.pk}/admit/")
    guest.post(f"/api/v1/calls/{room.pk}/join/")
    recorder = EventRecorder()
    recorder.listen_user(relative)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{relative.pk}/remove/")

    # Then
    assert response.status_code == 200, response.content
    assert CallParticipant.objects.get(call=room, user=relative).status == ParticipantStatus.REMOVED
    assert [event["type"] for event in recorder.for_user(relative)] == ["call.participant_removed"]
    assert_error(guest.post(f"/api/v1/calls/{room.pk}/join/"), 403, "PARTICIPANT_REMOVED")


def test_remove_is_host_only(room, patient_client, doctor):
    response = patient_client.post(f"/api/v1/calls/{room.pk}/participants/{doctor.pk}/remove/")

    assert_error(response, 403, "NOT_HOST")


def test_host_cannot_remove_themselves(room, doctor, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{doctor.pk}/remove/")

    assert_error(response, 409, "CANNOT_REMOVE_SELF")

"""The waiting room: check-in without credentials, the clinician's queue, admit, send back, and
the waiting patient's view of the host."""

import uuid

import pytest
import time_machine

from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, open_session
from video_calls.models import Call, CallParticipant, ParticipantStatus


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def session(doctor, patient):
    return open_session(doctor, patient)


@pytest.fixture
def room(session, doctor_client) -> Call:
    return Call.objects.get(pk=doctor_client.post(f"/api/v1/sessions/{session.pk}/room/").json()["id"])


def _join(client, room):
    return client.post(f"/api/v1/calls/{room.pk}/join/")


def test_patient_checks_in_and_gets_no_credentials(
    room, session, doctor, patient, patient_client, django_capture_on_commit_callbacks
):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(doctor)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _join(patient_client, room)

    # Then
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["waiting"] is True
    assert body["participant_status"] == "waiting"
    assert body["ice_servers"] is None
    assert body["ice_expires_at"] is None
    assert body["agora"] is None
    [updated] = recorder.for_user(doctor)
    assert updated["type"] == "waiting_room.updated"
    assert updated["data"]["action"] == "checked_in"
    assert updated["data"]["session_id"] == str(session.pk)
    assert updated["data"]["participant"] == {"id": str(patient.pk), "role": "patient"}


def test_doctor_sees_the_queue(room, session, patient, patient_client, doctor_client):
    _join(patient_client, room)

    response = doctor_client.get("/api/v1/calls/waiting-room/")

    assert response.status_code == 200, response.content
    [entry] = response.json()["results"]
    assert entry["call_id"] == str(room.pk)
    assert entry["session_id"] == str(session.pk)
    assert entry["user"]["id"] == str(patient.pk)
    assert entry["user"]["name"] == "Alice Patient"
    assert entry["waiting_since"] == "2026-03-02T09:00:00Z"
    assert entry["scheduled_start"] == "2026-03-02T09:05:00Z"


def test_queue_query_count_does_not_grow(room, patient_client, doctor, doctor_client, django_assert_num_queries):
    _join(patient_client, room)
    for day in range(1, 4):
        other = open_session(doctor, PatientFactory(), starts_in_minutes=day * 24 * 60)
        other_room = doctor_client.post(f"/api/v1/sessions/{other.pk}/room/").json()["id"]
        CallParticipant.objects.filter(call_id=other_room, role="patient").update(
            status=ParticipantStatus.WAITING, waiting_since=NOW
        )

    # Authentication (1) + count (1) + page with users, calls and sessions joined (1) + audit entry (1)
    with django_assert_num_queries(4):
        response = doctor_client.get("/api/v1/calls/waiting-room/")

    assert response.json()["count"] == 4


def test_patients_have_no_queue(patient_client):
    assert_error(patient_client.get("/api/v1/calls/waiting-room/"), 403, "CLINICIANS_ONLY")


def test_someone_elses_queue_is_empty(room, patient_client, client_for_other_doctor):
    _join(patient_client, room)

    assert client_for_other_doctor.get("/api/v1/calls/waiting-room/").json()["count"] == 0


@pytest.fixture
def client_for_other_doctor():
    return client_for(DoctorFactory())


def test_admit_lets_the_patient_reach_the_media(
    room, doctor_client, patient, patient_client, django_capture_on_commit_callbacks
):
    # Given
    _join(doctor_client, room)
    _join(patient_client, room)
    recorder = EventRecorder()
    recorder.listen_user(patient)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")

    # Then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "admitted"
    [admitted] = recorder.for_user(patient)
    assert admitted["type"] == "waiting_room.admitted"
    joined = _join(patient_client, room)
    assert joined.status_code == 200, joined.content
    assert joined.json()["ice_servers"]


def test_only_the_host_admits(room, patient, patient_client):
    _join(patient_client, room)

    response = patient_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")

    assert_error(response, 403, "NOT_HOST")


def test_admit_someone_not_waiting(room, patient, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")

    assert_error(response, 409, "INVALID_PARTICIPANT_STATE")


def test_admit_unknown_participant(room, doctor_client):
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{uuid.uuid4()}/admit/")

    assert_error(response, 404, "PARTICIPANT_NOT_FOUND")


def test_send_back_withdraws_the_admission(room, doctor, doctor_client, patient, patient_client):
    # Given the patient is in the call
    _join(doctor_client, room)
    _join(patient_client, room)
    doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/admit/")
    _join(patient_client, room)

    # When
    response = doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{patient.pk}/send-back/")

    # Then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "waiting"
    assert _join(patient_client, room).status_code == 202
    assert_error(
        doctor_client.post(f"/api/v1/calls/{room.pk}/participants/{doctor.pk}/send-back/"), 409, "CANNOT_SEND_BACK"
    )


def test_waiting_patient_sees_the_host_status(room, doctor, doctor_client, patient_client):
    # Given
    _join(patient_client, room)

    # When the host is offline, then in the call
    away = patient_client.get(f"/api/v1/calls/{room.pk}/waiting-room/")
    _join(doctor_client, room)
    in_call = patient_client.get(f"/api/v1/calls/{room.pk}/waiting-room/")

    # Then
    assert away.status_code == 200, away.content
    assert away.json() == {
        "call_id": str(room.pk),
        "participant_status": "waiting",
        "waiting_since": "2026-03-02T09:00:00Z",
        "position": 1,
        "host_status": "offline",
    }
    assert in_call.json()["host_status"] == "in_call"


def test_waiting_patient_sees_the_host_online_or_away_from_their_presence(room, doctor, patient_client):
    # Given the doctor is connected (a socket open) but not in a call
    from presence.services import presence_connection_open, presence_set_status

    _join(patient_client, room)
    presence_connection_open(user=doctor, channel_name="doctor-laptop")

    # When they are online, then step away
    online = patient_client.get(f"/api/v1/calls/{room.pk}/waiting-room/").json()["host_status"]
    presence_set_status(user=doctor, status="away")
    away = patient_client.get(f"/api/v1/calls/{room.pk}/waiting-room/").json()["host_status"]

    # Then
    assert (online, away) == ("online", "away")


def test_waiting_patient_sees_the_host_busy_elsewhere(room, doctor, patient_client, staff_client):
    # Given the doctor is connected to another call
    _join(patient_client, room)
    call_id = staff_client.post("/api/v1/calls/initiate/", {"callee_id": str(doctor.pk)}).json()["id"]
    client_for(doctor).post(f"/api/v1/calls/{call_id}/accept/")

    # Then
    assert patient_client.get(f"/api/v1/calls/{room.pk}/waiting-room/").json()["host_status"] == "busy"


def test_waiting_status_of_someone_elses_call(room, outsider_client):
    assert_error(outsider_client.get(f"/api/v1/calls/{room.pk}/waiting-room/"), 404, "CALL_NOT_FOUND")

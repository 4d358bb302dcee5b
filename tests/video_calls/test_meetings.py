"""Group consultations as meetings (references 000, 002, 004): doctors set them up, the host
changes their details and settings (limited once they started), staff end any call, and the
participant limit has one definition. Joining with a display name, media state and recording
consent is in test_meetings_join.py."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory, StaffFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, event_types, open_session
from video_calls.models import Call, CallStatus, EndReason
from video_calls.services.adhoc import call_accept, call_initiate

START = NOW + timedelta(days=1)
END = START + timedelta(hours=1)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def colleague(db):
    return DoctorFactory(first_name="James", last_name="Wilson")


@pytest.fixture
def their_patient(doctor, patient):
    """The persona patient, in a care relationship with the persona doctor."""
    open_session(doctor, patient)
    return patient


def _create(client, invitees, **fields):
    body = {"invitee_ids": [str(user.pk) for user in invitees], **fields}
    return client.post("/api/v1/calls/group/", body, format="json")


def _settings(client, call_id, **fields):
    return client.patch(f"/api/v1/calls/{call_id}/settings/", fields, format="json")


def _field_error(error, field, code):
    """A service's field error reads like a serializer's: ``{field: [{message, code}]}``."""
    [item] = error["details"][field]
    assert set(item) == {"message", "code"}, item
    assert item["message"]
    assert item["code"] == code, item


@pytest.fixture
def meeting(doctor, doctor_client, colleague, their_patient) -> dict:
    """A doctor's group consultation with a colleague and their patient, not started."""
    response = _create(
        doctor_client,
        [colleague, their_patient],
        title="Case review",
        description="Second opinion on the scan.",
        scheduled_start=START.isoformat(),
        scheduled_end=END.isoformat(),
    )
    assert response.status_code == 201, response.content
    return response.json()


def _start(call_id, *users):
    """Clinicians (who never wait) connect, agreeing to a recording if there is one: the call is
    ongoing."""
    for user in users:
        joined = client_for(user).post(f"/api/v1/calls/{call_id}/join/", {"recording_consent": True}, format="json")
        assert joined.status_code == 200, joined.content


# --- Doctors create group consultations ----------------------------------------------------------


def test_a_doctor_creates_a_group_consultation_and_hosts_it(
    doctor, doctor_client, colleague, their_patient, django_capture_on_commit_callbacks
):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(their_patient)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _create(
            doctor_client,
            [colleague, their_patient],
            title="Case review",
            description="Second opinion on the scan.",
            scheduled_start=START.isoformat(),
            scheduled_end=END.isoformat(),
            recording_enabled=True,
            auto_recording=True,
        )

    # Then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "group"
    assert body["host_id"] == str(doctor.pk)
    assert body["description"] == "Second opinion on the scan."
    assert body["scheduled_start"] == "2026-03-03T09:00:00Z"
    assert body["scheduled_end"] == "2026-03-03T10:00:00Z"
    assert body["settings"]["recording_enabled"] is True
    assert body["settings"]["auto_recording"] is True
    roles = {p["user"]["id"]: p["role"] for p in body["participants"]}
    assert roles == {str(doctor.pk): "doctor", str(colleague.pk): "doctor", str(their_patient.pk): "patient"}
    assert event_types(recorder.for_user(their_patient)) == ["call.invited"]


def test_a_doctor_cannot_invite_a_patient_who_is_not_theirs(doctor_client, colleague, outsider):
    response = _create(doctor_client, [colleague, outsider])

    error = assert_error(response, 404, "USER_NOT_FOUND")
    assert error["details"] == {"invitee_ids": [str(outsider.pk)]}
    assert not Call.objects.exists()


def test_staff_still_invite_anyone(staff_client, outsider):
    assert _create(staff_client, [outsider]).status_code == 201


def test_anonymous_cannot_create_a_group_consultation(anon_client, doctor):
    assert_error(_create(anon_client, [doctor]), 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"scheduled_start": (NOW - timedelta(minutes=1)).isoformat()}, "scheduled_start", "in_past"),
        ({"scheduled_start": START.isoformat(), "scheduled_end": START.isoformat()}, "scheduled_end", "before_start"),
        (
            {"scheduled_start": START.isoformat(), "scheduled_end": (START + timedelta(hours=5)).isoformat()},
            "scheduled_end",
            "too_long",
        ),
        ({"auto_recording": True}, "auto_recording", "needs_recording"),
        ({"max_participants": 2}, "max_participants", "out_of_range"),
    ],
)
def test_bad_meeting_details_are_field_errors(doctor_client, colleague, their_patient, fields, field, code):
    response = _create(doctor_client, [colleague, their_patient], **fields)

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), field, code)
    assert not Call.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [{"scheduled_start": "tomorrow"}, {"description": "x" * 2001}, {"recording_enabled": "maybe"}],
)
def test_malformed_meeting_details(doctor_client, colleague, fields):
    assert_error(_create(doctor_client, [colleague], **fields), 400, "VALIDATION_ERROR")


def test_the_host_does_not_invite_themselves(doctor, doctor_client, colleague):
    response = _create(doctor_client, [colleague, doctor])

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), "invitee_ids", "includes_host")


# --- The host updates details and settings -------------------------------------------------------


def test_the_host_updates_details_and_settings_and_everyone_is_told(
    meeting, doctor_client, colleague, their_patient, django_capture_on_commit_callbacks
):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(their_patient)
    new_start, new_end = START + timedelta(hours=2), END + timedelta(hours=2, minutes=30)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _settings(
            doctor_client,
            meeting["id"],
            title="Case review (moved)",
            description="",
            scheduled_start=new_start.isoformat(),
            scheduled_end=new_end.isoformat(),
            max_participants=5,
            recording_enabled=True,
            auto_recording=True,
            chat_enabled=False,
        )

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Case review (moved)"
    assert body["description"] == ""
    assert body["scheduled_start"] == "2026-03-03T11:00:00Z"
    assert body["scheduled_end"] == "2026-03-03T12:30:00Z"
    assert body["settings"]["max_participants"] == 5
    assert body["settings"]["recording_enabled"] is True
    assert body["settings"]["chat_enabled"] is False
    [event] = recorder.for_user(their_patient)
    assert event["type"] == "call.settings_updated"
    data = event["data"]
    assert data["changed"] == [
        "auto_recording",
        "chat_enabled",
        "description",
        "max_participants",
        "recording_enabled",
        "scheduled_end",
        "scheduled_start",
        "title",
    ]
    assert data["scheduled_start"] == new_start.isoformat()
    assert data["recording_enabled"] is True
    assert data["auto_recording"] is True
    assert "title" not in data and "description" not in data  # free text stays out of the channel layer


def test_clearing_the_planned_times(meeting, doctor_client):
    response = _settings(doctor_client, meeting["id"], scheduled_start=None, scheduled_end=None)

    assert response.status_code == 200, response.content
    assert response.json()["scheduled_start"] is None
    assert response.json()["scheduled_end"] is None


def test_staff_may_update_any_room(meeting, staff_client):
    response = _settings(staff_client, meeting["id"], title="Checked by the clinic")

    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Checked by the clinic"


@pytest.mark.parametrize("who", ["colleague", "their_patient"])
def test_participants_who_are_not_the_host_cannot_update(request, meeting, who):
    client = client_for(request.getfixturevalue(who))

    assert_error(_settings(client, meeting["id"], title="Mine now"), 403, "NOT_HOST")
    assert Call.objects.get(pk=meeting["id"]).title == "Case review"


def test_someone_not_on_the_call_cannot_see_it(meeting, outsider_client):
    assert_error(_settings(outsider_client, meeting["id"], title="x"), 404, "CALL_NOT_FOUND")


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"scheduled_start": (NOW - timedelta(hours=1)).isoformat()}, "scheduled_start", "in_past"),
        ({"scheduled_end": (START - timedelta(minutes=5)).isoformat()}, "scheduled_end", "before_start"),
        ({"auto_recording": True}, "auto_recording", "needs_recording"),
    ],
)
def test_bad_updates_are_field_errors(meeting, doctor_client, fields, field, code):
    response = _settings(doctor_client, meeting["id"], **fields)

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), field, code)


@pytest.mark.parametrize(
    "fields", [{"title": "x" * 201}, {"scheduled_end": "soon"}, {"auto_recording": "maybe"}, {"description": None}]
)
def test_malformed_updates(meeting, doctor_client, fields):
    assert_error(_settings(doctor_client, meeting["id"], **fields), 400, "VALIDATION_ERROR")


def test_turning_recording_off_turns_automatic_recording_off(meeting, doctor_client):
    _settings(doctor_client, meeting["id"], recording_enabled=True, auto_recording=True)

    response = _settings(doctor_client, meeting["id"], recording_enabled=False)

    assert response.status_code == 200, response.content
    assert response.json()["settings"]["auto_recording"] is False


def test_a_session_rooms_times_are_its_sessions(doctor, patient, doctor_client):
    session = open_session(doctor, patient)
    room = doctor_client.post(f"/api/v1/sessions/{session.pk}/room/").json()

    response = _settings(doctor_client, room["id"], scheduled_start=START.isoformat(), title="Follow-up")

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), "scheduled_start", "session_schedule")
    assert _settings(doctor_client, room["id"], title="Follow-up").status_code == 200


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"scheduled_start": (START + timedelta(hours=1)).isoformat()}, ["scheduled_start"]),
        ({"recording_enabled": True}, ["recording_enabled"]),
        ({"recording_enabled": True, "auto_recording": True}, ["auto_recording", "recording_enabled"]),
    ],
)
def test_once_started_the_start_and_turning_recording_on_are_refused(
    meeting, doctor, colleague, doctor_client, fields, refused
):
    _start(meeting["id"], doctor, colleague)

    error = assert_error(_settings(doctor_client, meeting["id"], **fields), 409, "INVALID_CALL_STATE")

    assert error["details"] == {"status": "ongoing", "fields": refused}
    call = Call.objects.get(pk=meeting["id"])
    assert call.scheduled_start == START
    assert call.recording_enabled is False


def test_once_started_the_rest_still_changes(meeting, doctor, colleague, doctor_client):
    # Given an ongoing call that records
    _settings(doctor_client, meeting["id"], recording_enabled=True)
    _start(meeting["id"], doctor, colleague)
    later_end = END + timedelta(minutes=30)

    # When the host renames it, extends it, stops the recording and re-sends the unchanged start
    response = _settings(
        doctor_client,
        meeting["id"],
        title="Case review, part 2",
        scheduled_start=START.isoformat(),
        scheduled_end=later_end.isoformat(),
        recording_enabled=False,
        max_participants=4,
    )

    # Then
    assert response.status_code == 200, response.content
    call = Call.objects.get(pk=meeting["id"])
    assert (call.title, call.scheduled_end, call.recording_enabled) == ("Case review, part 2", later_end, False)


def test_an_ended_call_cannot_change(meeting, doctor, doctor_client):
    _start(meeting["id"], doctor)
    doctor_client.post(f"/api/v1/calls/{meeting['id']}/end/")

    error = assert_error(_settings(doctor_client, meeting["id"], title="After"), 409, "INVALID_CALL_STATE")
    assert error["details"] == {"status": "completed"}


# --- Staff end any call ---------------------------------------------------------------------------


@pytest.fixture
def ongoing_adhoc(doctor, patient):
    open_session(doctor, patient)
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call


def test_staff_end_an_ad_hoc_call_they_are_not_on(
    ongoing_adhoc, staff, staff_client, doctor, patient, django_capture_on_commit_callbacks
):
    # Given
    recorder = EventRecorder()
    recorder.listen_user(doctor)
    recorder.listen_user(patient)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/api/v1/calls/{ongoing_adhoc.pk}/end/")

    # Then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"
    assert response.json()["end_reason"] == "staff_ended"
    ongoing_adhoc.refresh_from_db()
    assert ongoing_adhoc.ended_by_id == staff.pk
    for user in (doctor, patient):
        [ended] = [event for event in recorder.for_user(user) if event["type"] == "call.ended"]
        assert ended["data"]["end_reason"] == "staff_ended"
        assert ended["data"]["ended_by"] == {"id": str(staff.pk), "role": "staff"}


def test_staff_end_a_room_they_are_not_on(meeting, doctor, staff_client):
    _start(meeting["id"], doctor)

    response = staff_client.post(f"/api/v1/calls/{meeting['id']}/end/")

    assert response.status_code == 200, response.content
    assert response.json()["end_reason"] == EndReason.STAFF_ENDED


def test_a_ringing_call_is_not_ended_by_staff(doctor, patient, staff_client):
    open_session(doctor, patient)
    ringing = call_initiate(caller=doctor, callee_id=patient.pk)

    error = assert_error(staff_client.post(f"/api/v1/calls/{ringing.pk}/end/"), 409, "INVALID_CALL_STATE")

    assert error["details"] == {"status": "ringing"}
    ringing.refresh_from_db()
    assert ringing.status == CallStatus.RINGING


def test_others_cannot_end_an_ad_hoc_call_they_are_not_on(ongoing_adhoc, outsider_client):
    assert_error(outsider_client.post(f"/api/v1/calls/{ongoing_adhoc.pk}/end/"), 404, "CALL_NOT_FOUND")


def test_an_invited_patient_cannot_end_a_room(meeting, doctor, their_patient):
    _start(meeting["id"], doctor)

    assert_error(client_for(their_patient).post(f"/api/v1/calls/{meeting['id']}/end/"), 403, "NOT_HOST")


def test_end_of_an_unknown_call(staff_client):
    assert_error(staff_client.post(f"/api/v1/calls/{uuid.uuid4()}/end/"), 404, "CALL_NOT_FOUND")


# --- One participant cap -------------------------------------------------------------------------


def test_the_api_refuses_a_limit_over_the_cap(meeting, doctor_client):
    response = _settings(doctor_client, meeting["id"], max_participants=500)

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), "max_participants", "out_of_range")


def test_the_cap_follows_the_setting_everywhere(meeting, doctor_client, settings):
    settings.CALL_MAX_PARTICIPANTS = 12

    assert _settings(doctor_client, meeting["id"], max_participants=12).status_code == 200
    _field_error(
        assert_error(_settings(doctor_client, meeting["id"], max_participants=13), 400, "VALIDATION_ERROR"),
        "max_participants",
        "out_of_range",
    )


def test_the_limit_cannot_drop_below_who_is_connected(meeting, doctor, colleague, doctor_client, settings):
    # Given three people connected
    extra = DoctorFactory()
    _settings(doctor_client, meeting["id"], max_participants=4)
    doctor_client.post(f"/api/v1/calls/{meeting['id']}/invitations/", {"user_id": str(extra.pk)}, format="json")
    _start(meeting["id"], doctor, colleague, extra)

    # When the host asks for two places
    response = _settings(doctor_client, meeting["id"], max_participants=2)

    # Then the service's refusal has the serializer's shape
    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), "max_participants", "out_of_range")


def test_too_many_invitees_for_the_cap(staff_client, settings):
    settings.CALL_MAX_PARTICIPANTS = 3
    invitees = [PatientFactory(), PatientFactory(), StaffFactory()]

    response = _create(staff_client, invitees)

    _field_error(assert_error(response, 400, "VALIDATION_ERROR"), "max_participants", "out_of_range")


# --- The schema describes the new fields and codes -----------------------------------------------


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _operation(schema, path, method):
    return schema["paths"][f"/api/v1/calls/{{call_id}}/{path}/" if path else "/api/v1/calls/group/"][method]


def _body_fields(schema, operation):
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return set(schema["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"])


@pytest.mark.parametrize(
    ("path", "method", "fields", "codes"),
    [
        (
            "",
            "post",
            {"description", "scheduled_start", "scheduled_end", "recording_enabled", "auto_recording"},
            {"400": ["out_of_range", "includes_host", "in_past", "needs_recording"], "403": ["CLINICIANS_ONLY"]},
        ),
        (
            "settings",
            "patch",
            {"title", "description", "scheduled_start", "scheduled_end", "recording_enabled", "auto_recording"},
            {"400": ["session_schedule", "too_long"], "403": ["NOT_HOST"], "409": ["INVALID_CALL_STATE"]},
        ),
        (
            "join",
            "post",
            {"display_name", "audio_enabled", "video_enabled", "recording_consent"},
            {"400": ["VOICE_CALL"], "409": ["RECORDING_CONSENT_REQUIRED", "ROOM_FULL"]},
        ),
        ("end", "post", set(), {"403": ["NOT_HOST", "NOT_PARTICIPANT"], "409": ["INVALID_CALL_STATE"]}),
    ],
)
def test_the_schema_describes_the_meeting_fields_and_codes(schema, path, method, fields, codes):
    operation = _operation(schema, path, method)

    if fields:
        assert fields <= _body_fields(schema, operation)
    for status, expected in codes.items():
        description = operation["responses"][status]["description"]
        assert all(code in description for code in expected), (status, description)


def test_the_schema_shows_recording_and_display_names(schema):
    components = schema["components"]["schemas"]

    assert {"recording_enabled", "auto_recording"} <= set(components["CallSettings"]["properties"])
    assert {"description", "scheduled_start", "scheduled_end"} <= set(components["Call"]["properties"])
    assert "display_name" in components["CallParticipant"]["required"]

"""Joining a meeting (references 002 and 004): the display name and media state a join asks for
or the user's meeting defaults, and the consent a recorded call needs, kept as a record."""

import uuid

import pytest
import time_machine

from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, StaffFactory
from tests.video_calls.call_helpers import NOW, EventRecorder, open_session
from video_calls.models import Call, CallParticipant, RecordingConsent
from video_calls.services.guests import group_consultation_create


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def colleague(db):
    return DoctorFactory(first_name="James", last_name="Wilson")


def _meeting(host, *invitees, **fields) -> Call:
    """A group consultation patients enter without waiting (the waiting room is tested elsewhere)."""
    fields = {"waiting_room_enabled": False, "allow_join_before_host": True, **fields}
    return group_consultation_create(user=host, invitee_ids=[user.pk for user in invitees], **fields)


def _join(user, call, **fields):
    return client_for(user).post(f"/api/v1/calls/{call.pk}/join/", fields, format="json")


def _participant(call, user) -> CallParticipant:
    return CallParticipant.objects.get(call=call, user=user)


# --- Display name and media state ----------------------------------------------------------------


def test_join_with_a_display_name_and_media_state(doctor, colleague, django_capture_on_commit_callbacks):
    # Given
    call = _meeting(doctor, colleague)
    recorder = EventRecorder()
    recorder.listen_call(call)

    # When
    with django_capture_on_commit_callbacks(execute=True):
        response = _join(colleague, call, display_name="Dr W.", audio_enabled=False, video_enabled=False)

    # Then the state is stored where media state lives, shown in the lists and sent
    assert response.status_code == 200, response.content
    mine = next(p for p in response.json()["call"]["participants"] if p["user"]["id"] == str(colleague.pk))
    assert (mine["display_name"], mine["audio_enabled"], mine["video_enabled"]) == ("Dr W.", False, False)
    listed = client_for(doctor).get(f"/api/v1/calls/{call.pk}/participants/").json()
    assert next(p for p in listed if p["user"]["id"] == str(colleague.pk))["display_name"] == "Dr W."
    [joined] = [event for event in recorder.for_call(call) if event["type"] == "call.participant_joined"]
    participant = joined["data"]["participant"]
    assert (participant["audio_enabled"], participant["video_enabled"]) == (False, False)
    assert "display_name" not in participant  # event payloads carry no names


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({}, (True, True)),
        ({"default_audio_enabled": False}, (False, True)),
        ({"auto_join_audio": False}, (False, True)),
        ({"default_video_enabled": False}, (True, False)),
    ],
)
def test_a_join_without_media_fields_uses_the_users_meeting_defaults(doctor, colleague, defaults, expected):
    for name, value in defaults.items():
        setattr(colleague, name, value)
    colleague.save()
    call = _meeting(doctor, colleague)

    response = _join(colleague, call)

    assert response.status_code == 200, response.content
    participant = _participant(call, colleague)
    assert (participant.audio_enabled, participant.video_enabled) == expected


def test_the_join_overrides_the_defaults(doctor, colleague):
    colleague.default_audio_enabled = colleague.default_video_enabled = False
    colleague.save()
    call = _meeting(doctor, colleague)

    _join(colleague, call, audio_enabled=True, video_enabled=True)

    participant = _participant(call, colleague)
    assert (participant.audio_enabled, participant.video_enabled) == (True, True)


def test_without_a_display_name_the_users_own_is_shown(doctor, colleague):
    colleague.display_name = "Jimmy"
    colleague.save()
    call = _meeting(doctor, colleague)
    _join(doctor, call, display_name="The host")

    _join(colleague, call)

    names = {
        p["user"]["id"]: p["display_name"]
        for p in client_for(doctor).get(f"/api/v1/calls/{call.pk}/participants/").json()
    }
    assert names == {str(doctor.pk): "The host", str(colleague.pk): "Jimmy"}


def test_a_rejoin_without_a_display_name_goes_back_to_the_users_own(doctor, colleague):
    call = _meeting(doctor, colleague)
    _join(colleague, call, display_name="Dr W.")
    client_for(colleague).post(f"/api/v1/calls/{call.pk}/leave/")

    _join(colleague, call)

    assert _participant(call, colleague).display_name == ""
    listed = client_for(colleague).get(f"/api/v1/calls/{call.pk}/participants/").json()
    assert next(p for p in listed if p["user"]["id"] == str(colleague.pk))["display_name"] == "James Wilson"


def test_mute_on_join_wins_over_the_join(doctor, colleague):
    call = _meeting(doctor, colleague, mute_on_join=True)

    _join(colleague, call, audio_enabled=True)

    assert _participant(call, colleague).audio_enabled is False


def test_a_voice_call_refuses_video(doctor, colleague):
    call = _meeting(doctor, colleague, media="voice")

    error = assert_error(_join(colleague, call, video_enabled=True), 400, "VOICE_CALL")

    assert error["details"] == {"video_enabled": [{"message": "This is a voice call.", "code": "voice_call"}]}
    assert _participant(call, colleague).status == "invited"


def test_a_voice_call_joined_with_video_defaults_has_none(doctor, colleague):
    call = _meeting(doctor, colleague, media="voice")

    assert _join(colleague, call).status_code == 200
    assert _participant(call, colleague).video_enabled is False


@pytest.mark.parametrize(
    "fields",
    [{"display_name": ""}, {"display_name": "x" * 151}, {"audio_enabled": "loud"}, {"recording_consent": "maybe"}],
)
def test_malformed_join_fields(doctor, colleague, fields):
    call = _meeting(doctor, colleague)

    assert_error(_join(colleague, call, **fields), 400, "VALIDATION_ERROR")
    assert _participant(call, colleague).status == "invited"


def test_the_waiting_room_shows_the_name_asked_for(doctor, patient):
    open_session(doctor, patient)
    call = group_consultation_create(user=doctor, invitee_ids=[patient.pk])  # the waiting room is on

    response = _join(patient, call, display_name="Alice P.")

    assert response.status_code == 202, response.content
    assert _participant(call, patient).display_name == "Alice P."


# --- Recording consent ---------------------------------------------------------------------------


def test_a_recorded_call_refuses_a_join_without_consent(doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True, auto_recording=True)

    for fields in ({}, {"recording_consent": False}):
        error = assert_error(_join(colleague, call, **fields), 409, "RECORDING_CONSENT_REQUIRED")
        assert error["details"] == {"recording_enabled": True, "auto_recording": True}

    assert _participant(call, colleague).status == "invited"
    assert not RecordingConsent.objects.exists()


def test_consent_is_kept_who_when_and_for_which_call(doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True)

    response = _join(colleague, call, recording_consent=True)

    assert response.status_code == 200, response.content
    consent = RecordingConsent.objects.get()
    assert (consent.call_id, consent.user_id, consent.consented_at) == (call.pk, colleague.pk, NOW)


def test_consent_is_asked_once_per_call(doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True)
    _join(colleague, call, recording_consent=True)
    client_for(colleague).post(f"/api/v1/calls/{call.pk}/leave/")

    rejoined = _join(colleague, call)

    assert rejoined.status_code == 200, rejoined.content
    assert RecordingConsent.objects.filter(call=call, user=colleague).count() == 1


def test_consent_given_in_the_waiting_room_holds_after_admission(doctor, patient):
    open_session(doctor, patient)
    call = group_consultation_create(user=doctor, invitee_ids=[patient.pk], recording_enabled=True)
    _join(doctor, call, recording_consent=True)
    assert _join(patient, call, recording_consent=True).status_code == 202
    client_for(doctor).post(f"/api/v1/calls/{call.pk}/participants/{patient.pk}/admit/")

    joined = _join(patient, call)

    assert joined.status_code == 200, joined.content
    assert RecordingConsent.objects.filter(call=call).count() == 2


def test_the_host_consents_too(doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True)

    assert_error(_join(doctor, call), 409, "RECORDING_CONSENT_REQUIRED")


def test_no_consent_is_kept_when_the_call_is_not_recorded(doctor, colleague):
    call = _meeting(doctor, colleague)

    assert _join(colleague, call, recording_consent=True).status_code == 200
    assert not RecordingConsent.objects.exists()


def test_a_refused_join_keeps_no_consent(doctor, colleague):
    # Given a recorded call whose two places are taken, and one more invitee
    third = DoctorFactory()
    call = _meeting(doctor, colleague, third, recording_enabled=True)
    Call.objects.filter(pk=call.pk).update(max_participants=2)
    _join(doctor, call, recording_consent=True)
    _join(colleague, call, recording_consent=True)

    # When
    response = _join(third, call, recording_consent=True)

    # Then
    assert_error(response, 409, "ROOM_FULL")
    assert not RecordingConsent.objects.filter(user=third).exists()


def test_recording_settings_are_shown_in_the_call(doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True)

    body = _join(colleague, call, recording_consent=True).json()

    assert body["call"]["settings"]["recording_enabled"] is True
    assert body["call"]["settings"]["auto_recording"] is False


def test_join_of_an_unknown_call(colleague):
    assert_error(client_for(colleague).post(f"/api/v1/calls/{uuid.uuid4()}/join/"), 404, "CALL_NOT_FOUND")


# --- The admin shows consents, read-only ---------------------------------------------------------


@pytest.fixture
def admin_client(db, client):
    client.force_login(StaffFactory(is_superuser=True))
    return client


def test_the_admin_shows_consents_read_only(admin_client, doctor, colleague):
    call = _meeting(doctor, colleague, recording_enabled=True)
    _join(colleague, call, recording_consent=True)
    consent = RecordingConsent.objects.get()

    on_the_call = admin_client.get(f"/admin/video_calls/call/{call.pk}/change/")
    listed = admin_client.get("/admin/video_calls/recordingconsent/")
    shown = admin_client.get(f"/admin/video_calls/recordingconsent/{consent.pk}/change/")
    added = admin_client.get("/admin/video_calls/recordingconsent/add/")
    deleted = admin_client.post(f"/admin/video_calls/recordingconsent/{consent.pk}/delete/", {"post": "yes"})
    edited = admin_client.post(
        f"/admin/video_calls/recordingconsent/{consent.pk}/change/", {"consented_at": "2020-01-01"}
    )

    assert on_the_call.status_code == 200
    assert "Recording consents" in on_the_call.content.decode()
    assert listed.status_code == 200
    assert str(call.pk) in listed.content.decode()
    assert shown.status_code == 200  # view only
    assert added.status_code == 403
    assert deleted.status_code == 403
    assert edited.status_code == 403
    consent.refresh_from_db()
    assert consent.consented_at == NOW

"""Media credentials: TURN (coturn REST-API scheme), Agora RTC tokens, and their expiry bound to
the session's join window."""

import base64
import hashlib
import hmac
import struct
from datetime import timedelta

import pytest
import time_machine
from agora_token_builder.AccessToken import AccessToken, kJoinChannel

from tests.video_calls.call_helpers import NOW, open_session
from video_calls.models import Call, CallKind, CallStatus
from video_calls.services.credentials import (
    agora_token,
    agora_uid,
    call_ice_configuration,
    ice_configuration,
    media_credentials,
)
from video_calls.services.rooms import call_join, session_room_get_or_create

TURN_SECRET = "turn-shared-secret-for-tests"
APP_ID = "0123456789abcdef0123456789abcdef"
APP_CERTIFICATE = "fedcba9876543210fedcba9876543210"


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def turn(settings):
    settings.CALL_STUN_URLS = ["stun:stun.example.test:3478"]
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478?transport=udp", "turns:turn.example.test:5349"]
    settings.CALL_TURN_SECRET = TURN_SECRET
    settings.CALL_TURN_TTL_SECONDS = 600


@pytest.fixture
def agora(settings):
    settings.AGORA_APP_ID = APP_ID
    settings.AGORA_APP_CERTIFICATE = APP_CERTIFICATE
    settings.AGORA_TOKEN_TTL_SECONDS = 3600


def test_turn_credential_recomputes_from_the_shared_secret(turn, patient):
    # When
    ice = ice_configuration(user_id=patient.pk)

    # Then
    stun, relay = ice.ice_servers
    assert stun == {"urls": ["stun:stun.example.test:3478"]}
    expiry = int((NOW + timedelta(seconds=600)).timestamp())
    assert relay["username"] == f"{expiry}:{patient.pk}"
    expected = base64.b64encode(hmac.new(TURN_SECRET.encode(), relay["username"].encode(), hashlib.sha1).digest())
    assert relay["credential"] == expected.decode()
    assert relay["urls"] == ["turn:turn.example.test:3478?transport=udp", "turns:turn.example.test:5349"]
    assert ice.expires_at == NOW + timedelta(seconds=600)


def test_no_turn_entry_without_a_secret(settings, patient):
    # Given
    settings.CALL_TURN_URLS = ["turn:turn.example.test:3478"]
    settings.CALL_TURN_SECRET = ""

    # When
    ice = ice_configuration(user_id=patient.pk)

    # Then
    assert all("credential" not in server for server in ice.ice_servers)


def test_ice_servers_endpoint_returns_ephemeral_credentials(turn, patient, patient_client):
    # When
    response = patient_client.get("/api/v1/calls/ice-servers/")

    # Then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["expires_at"] == "2026-03-02T09:10:00Z"
    relay = body["ice_servers"][1]
    assert relay["username"].endswith(f":{patient.pk}")


def test_ice_servers_endpoint_needs_authentication(anon_client):
    from tests.assertions import assert_error

    assert_error(anon_client.get("/api/v1/calls/ice-servers/"), 401, "NOT_AUTHENTICATED")


def _agora_privileges(token: str) -> dict[int, int]:
    parsed = AccessToken()
    assert parsed.fromString(token)
    return parsed.messages


def test_agora_token_has_version_app_id_and_expiry(agora, patient):
    # When
    issued = agora_token(channel="room-abc", user_id=patient.pk)

    # Then
    assert issued.token.startswith("006")
    assert issued.token[3 : 3 + 32] == APP_ID
    expiry = int((NOW + timedelta(hours=1)).timestamp())
    assert _agora_privileges(issued.token)[kJoinChannel] == expiry
    assert issued.expires_at == NOW + timedelta(hours=1)
    assert issued.channel == "room-abc"
    assert issued.uid == agora_uid(patient.pk)
    assert issued.app_id == APP_ID


def test_no_agora_token_without_the_settings(settings, patient):
    # Given
    settings.AGORA_APP_ID = APP_ID
    settings.AGORA_APP_CERTIFICATE = ""

    # Then
    assert agora_token(channel="room-abc", user_id=patient.pk) is None


def test_agora_uid_is_stable_and_in_range(patient, doctor):
    assert agora_uid(patient.pk) == agora_uid(str(patient.pk))
    assert agora_uid(patient.pk) != agora_uid(doctor.pk)
    assert 1 <= agora_uid(patient.pk) <= 2**32 - 1
    # It fits Agora's unsigned 32-bit field.
    struct.pack("<I", agora_uid(patient.pk))


def test_credentials_never_outlive_the_join_window(settings, turn, agora, doctor, patient):
    # Given a session whose window closes 20 minutes from now, and TTLs longer than that
    settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER = 120
    settings.CALL_TURN_TTL_SECONDS = 24 * 3600
    session = open_session(doctor, patient, starts_in_minutes=-100)
    call = Call.objects.create(
        kind=CallKind.SESSION, session=session, status=CallStatus.WAITING, initiated_by=doctor, host=doctor
    )
    closes_at = NOW + timedelta(minutes=20)

    # When
    credentials = media_credentials(call=call, user_id=patient.pk)

    # Then
    assert credentials.ice.expires_at == closes_at
    assert credentials.ice.ice_servers[1]["username"] == f"{int(closes_at.timestamp())}:{patient.pk}"
    assert credentials.agora.expires_at == closes_at
    assert _agora_privileges(credentials.agora.token)[kJoinChannel] == int(closes_at.timestamp())
    assert credentials.agora.channel == call.room_name


def test_a_ringing_callers_ice_servers_obey_the_window_and_the_ttl(settings, turn, doctor, patient):
    # Given a ringing call of a session whose window closes in 20 minutes, and one with no session
    settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER = 120
    settings.CALL_TURN_TTL_SECONDS = 24 * 3600
    session = open_session(doctor, patient, starts_in_minutes=-100)
    linked = Call.objects.create(
        kind=CallKind.AD_HOC, session=session, status=CallStatus.RINGING, initiated_by=doctor, host=doctor
    )
    unlinked = Call.objects.create(kind=CallKind.AD_HOC, status=CallStatus.RINGING, initiated_by=doctor, host=doctor)

    # When
    capped = call_ice_configuration(call=linked, user_id=doctor.pk)
    free = call_ice_configuration(call=unlinked, user_id=doctor.pk)

    # Then
    closes_at = NOW + timedelta(minutes=20)
    assert capped.expires_at == closes_at
    assert capped.ice_servers[1]["username"] == f"{int(closes_at.timestamp())}:{doctor.pk}"
    assert free.expires_at == NOW + timedelta(hours=24)


def test_a_240_minute_session_joined_three_hours_in_gets_credentials_past_start_plus_two_hours(
    settings, turn, agora, doctor, patient
):
    # Given a 240-minute session that started three hours ago (its window closes at its end plus
    # the grace, 90 minutes from now) and TTLs longer than that
    settings.CALL_WAITING_ROOM_ENABLED = False
    settings.CALL_TURN_TTL_SECONDS = 24 * 3600
    settings.AGORA_TOKEN_TTL_SECONDS = 24 * 3600
    session = open_session(doctor, patient, starts_in_minutes=-180, duration_minutes=240)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    closes_at = session.scheduled_start + timedelta(minutes=240 + settings.JOIN_WINDOW_GRACE_MINUTES_AFTER_END)

    # When the doctor and then the patient join
    call_join(call=room, user=doctor)
    joined = call_join(call=room, user=patient)

    # Then the join succeeds and its credentials last until the window's close
    assert joined.credentials is not None
    assert joined.credentials.ice.expires_at == closes_at
    assert joined.credentials.agora.expires_at == closes_at
    assert closes_at > session.scheduled_start + timedelta(hours=2)
    assert closes_at == NOW + timedelta(minutes=90)

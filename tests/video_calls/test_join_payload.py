"""The join's answer built by hand (video_calls/serializers.py ``join_payload``) is exactly what
the serializers give (``join_payload_serialized``, the documented shape), key for key and in the
same order, for calls in every state the answer describes; and the routes read from the join's
participants (``call_routes_of``) are ``call_routes``."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from tests.factories import PatientFactory
from tests.realtime.test_signaling import _ongoing_call
from tests.video_calls.factories import CallFactory, CallParticipantFactory
from video_calls.models import Call, CallStatus, EndReason, ParticipantRole, ParticipantStatus
from video_calls.selectors.calls import call_with_participants, call_with_participants_of
from video_calls.selectors.routes import call_routes, call_routes_of
from video_calls.serializers import CallSerializer, JoinResponseSerializer, call_payload, join_payload
from video_calls.services.access import JoinResult, joined_result

pytestmark = pytest.mark.django_db


def join_payload_serialized(result: JoinResult, call: Call) -> dict[str, Any]:
    """The same answer through the serializers (``JoinResponseSerializer``): what ``join_payload``
    must equal."""
    credentials = result.credentials
    agora = credentials.agora if credentials else None
    return JoinResponseSerializer(
        {
            "call": call,
            "participant_status": result.participant.status,
            "waiting": credentials is None,
            "ice_servers": credentials.ice.ice_servers if credentials else None,
            "ice_expires_at": credentials.ice.expires_at if credentials else None,
            "websocket_url": settings.WEBSOCKET_PUBLIC_URL,
            "agora": agora.__dict__ if agora else None,
        }
    ).data


def _same(built, serialized) -> None:
    assert json.dumps(built) == json.dumps(serialized)


def test_an_ongoing_call_answers_as_the_serializers_do(doctor, patient):
    call = _ongoing_call(doctor, patient)
    CallParticipantFactory(call=call, user=PatientFactory(display_name="Aunt"), role=ParticipantRole.GUEST)
    call = call_with_participants(call_id=call.pk)
    participant = call.participants.get(user=patient)
    result = joined_result(call=call, participant=participant, now=timezone.now())

    _same(join_payload(result, call), join_payload_serialized(result, call))
    assert join_payload(result, call)["call"]["participants"][0]["user"]["id"]


def test_a_waiting_participant_and_an_ended_call_answer_as_the_serializers_do(doctor, patient):
    now = timezone.now()
    call = CallFactory(
        initiated_by=doctor,
        host=doctor,
        status=CallStatus.COMPLETED,
        title="Follow-up",
        description="",
        passcode_hash=make_password("1234"),
        scheduled_start=now - timedelta(hours=1),
        scheduled_end=None,
        started_at=now - timedelta(minutes=50),
        ended_at=now,
        duration_seconds=3000,
        end_reason=EndReason.HANGUP,
    )
    waiting = CallParticipantFactory(
        call=call, user=patient, role=ParticipantRole.PATIENT, status=ParticipantStatus.WAITING, waiting_since=now
    )
    CallParticipantFactory(call=call, user=doctor, role=ParticipantRole.DOCTOR, status=ParticipantStatus.LEFT)
    call = call_with_participants(call_id=call.pk)
    result = JoinResult(call=call, participant=waiting, credentials=None)

    built = join_payload(result, call)
    _same(built, join_payload_serialized(result, call))
    assert built["waiting"] is True and built["ice_servers"] is None
    assert built["call"]["end_reason"] == "hangup" and built["call"]["settings"]["has_passcode"] is True
    _same(call_payload(call), CallSerializer(call).data)


def test_an_unset_end_reason_is_null_as_in_the_serializer(doctor, patient):
    call = call_with_participants(call_id=_ongoing_call(doctor, patient).pk)

    assert call_payload(call)["end_reason"] is None
    _same(call_payload(call), CallSerializer(call).data)


def test_agora_credentials_answer_as_the_serializers_do(doctor, patient, settings):
    settings.AGORA_APP_ID = "0123456789abcdef0123456789abcdef"
    settings.AGORA_APP_CERTIFICATE = "fedcba9876543210fedcba9876543210"
    call = call_with_participants(call_id=_ongoing_call(doctor, patient).pk)
    result = joined_result(call=call, participant=call.participants.get(user=doctor), now=timezone.now())

    assert result.credentials.agora is not None
    _same(join_payload(result, call), join_payload_serialized(result, call))


def test_routes_from_the_joins_participants_are_call_routes(doctor, patient):
    call = _ongoing_call(doctor, patient)
    from presence.models import PresenceConnection

    now = timezone.now()
    PresenceConnection.objects.create(user=doctor, channel_name="d1", opened_at=now, last_heartbeat_at=now, call=call)
    PresenceConnection.objects.create(user=doctor, channel_name="d2", opened_at=now, last_heartbeat_at=now)
    CallParticipantFactory(call=call, user=PatientFactory(), role=ParticipantRole.GUEST, status=ParticipantStatus.LEFT)

    read = call_with_participants_of(type(call).objects.get(pk=call.pk))
    assert call_routes_of(read) == call_routes(call_id=call.pk)
    assert call_routes_of(read)[str(doctor.pk)] == ["d1"]

    type(call).objects.filter(pk=call.pk).update(status=CallStatus.COMPLETED)
    ended = call_with_participants_of(type(call).objects.get(pk=call.pk))
    assert call_routes_of(ended) == call_routes(call_id=call.pk) == {}

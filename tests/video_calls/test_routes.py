"""Where signaling for a call goes (video_calls.selectors.routes): only to participants who are
joined to an ongoing call, on the connections they joined it on."""

import pytest

from presence.services import presence_connection_enter_call, presence_connection_open
from tests.factories import DoctorFactory
from tests.video_calls.factories import CallFactory, CallParticipantFactory
from video_calls.models import CallKind, CallStatus, ParticipantRole, ParticipantStatus
from video_calls.selectors.routes import call_routes

pytestmark = pytest.mark.django_db


def _with_connection(call, status: str):
    """A participant in ``status`` whose socket still points at the call, as a connection does
    after its user was sent back, removed or left over REST."""
    participant = CallParticipantFactory(call=call, status=status)
    channel_name = f"{status}-channel"
    presence_connection_open(user=participant.user, channel_name=channel_name)
    presence_connection_enter_call(channel_name=channel_name, call_id=call.pk)
    return participant


@pytest.fixture
def room():
    doctor = DoctorFactory()
    call = CallFactory(kind=CallKind.GROUP, initiated_by=doctor, host=doctor)
    CallParticipantFactory(call=call, user=doctor, role=ParticipantRole.DOCTOR)
    presence_connection_open(user=doctor, channel_name="host-channel")
    presence_connection_enter_call(channel_name="host-channel", call_id=call.pk)
    return call


def test_only_joined_participants_are_routed(room):
    not_joined = [
        _with_connection(room, status)
        for status in (ParticipantStatus.WAITING, ParticipantStatus.ADMITTED, ParticipantStatus.REMOVED)
    ] + [_with_connection(room, ParticipantStatus.LEFT), _with_connection(room, ParticipantStatus.INVITED)]

    routes = call_routes(call_id=room.pk)

    assert routes == {str(room.host_id): ["host-channel"]}
    assert not {str(participant.user_id) for participant in not_joined} & set(routes)


def test_a_joined_participant_without_a_socket_in_the_call_is_routed_nowhere(room):
    over_rest = CallParticipantFactory(call=room, status=ParticipantStatus.JOINED)

    routes = call_routes(call_id=room.pk)

    assert routes[str(over_rest.user_id)] == []


@pytest.mark.parametrize("status", [CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.WAITING])
def test_a_call_that_is_not_ongoing_has_no_routes(room, status):
    type(room).objects.filter(pk=room.pk).update(status=status)

    assert call_routes(call_id=room.pk) == {}

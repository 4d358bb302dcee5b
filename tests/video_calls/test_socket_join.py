"""What joining over the socket costs the database (video_calls/consumers.py ``_join``): on the
hour every participant of every call joins at once."""

import pytest
from django.utils import timezone

from presence.models import PresenceConnection
from tests.factories import PatientFactory
from tests.realtime.test_signaling import _ongoing_call
from tests.video_calls.factories import CallParticipantFactory
from video_calls.consumers import _join
from video_calls.models import ParticipantRole

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("guests", [0, 4])
def test_joining_costs_the_same_queries_however_big_the_call(doctor, patient, guests, django_assert_num_queries):
    call = _ongoing_call(doctor, patient)
    for _ in range(guests):
        CallParticipantFactory(call=call, user=PatientFactory(), role=ParticipantRole.GUEST)
    now = timezone.now()
    PresenceConnection.objects.create(user=doctor, channel_name="doctor-tab", opened_at=now, last_heartbeat_at=now)

    # the call found and locked; savepoint, the participant, release; this connection enters the
    # call; its participants and their users (the call as the join read it, not again); the
    # routes' connections (who is joined comes with the participants)
    with django_assert_num_queries(7):
        payload, routes = _join(user=doctor, call_id=call.pk, passcode="", channel_name="doctor-tab")

    assert len(payload["call"]["participants"]) == 2 + guests
    assert routes[str(doctor.pk)] == ["doctor-tab"]

"""The call admin: changelist with filters, detail with participants inline, and the "end call"
action, which goes through the state machine (participants told, session completed)."""

import pytest
import time_machine

from sessions.models import SessionStatus
from tests.factories import StaffFactory
from tests.video_calls.call_helpers import NOW, open_session
from tests.video_calls.factories import CallFactory
from video_calls.models import Call, CallStatus, EndReason
from video_calls.services.rooms import call_join, session_room_get_or_create

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/video_calls/call/"


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def admin_client(client):
    client.force_login(StaffFactory(is_superuser=True))
    return client


@pytest.fixture
def ongoing_room(doctor, patient, settings):
    settings.CALL_WAITING_ROOM_ENABLED = False
    session = open_session(doctor, patient)
    room, _ = session_room_get_or_create(user=doctor, session_id=session.pk)
    call_join(call=room, user=doctor)
    call_join(call=room, user=patient)
    return room


def test_changelist_filters_and_detail(admin_client, ongoing_room):
    listed = admin_client.get(CHANGELIST, {"status__exact": "ongoing", "kind__exact": "session"})
    detail = admin_client.get(f"{CHANGELIST}{ongoing_room.pk}/change/")

    assert listed.status_code == 200
    assert str(ongoing_room.pk) in listed.content.decode()
    assert detail.status_code == 200
    assert "participants" in detail.content.decode()


def test_end_call_action_goes_through_the_state_machine(admin_client, ongoing_room):
    response = admin_client.post(
        CHANGELIST, {"action": "end_calls", "_selected_action": [str(ongoing_room.pk)]}, follow=True
    )

    assert response.status_code == 200
    ongoing_room.refresh_from_db()
    assert ongoing_room.status == CallStatus.COMPLETED
    assert ongoing_room.end_reason == EndReason.STAFF_ENDED
    assert ongoing_room.session.status == SessionStatus.COMPLETED
    assert "Ended 1 call(s)." in response.content.decode()


def test_end_call_action_leaves_finished_calls_alone(admin_client, ongoing_room):
    Call.objects.filter(pk=ongoing_room.pk).update(status=CallStatus.COMPLETED)

    response = admin_client.post(
        CHANGELIST, {"action": "end_calls", "_selected_action": [str(ongoing_room.pk)]}, follow=True
    )

    assert "were not live" in response.content.decode()


def _change_form(call, **fields) -> dict:
    """The call's change form as the admin posts it (its inlines are empty)."""
    data = {
        "title": call.title,
        "description": call.description,
        "max_participants": call.max_participants,
        "waiting_room_enabled": "on",
        "chat_enabled": "on",
        "screen_share_enabled": "on",
        **fields,
    }
    for prefix in ("participants", "recording_consents", "events"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000})
    return data


@pytest.mark.parametrize(("limit", "accepted"), [(8, True), (9, False), (500, False), (1, False)])
def test_the_admin_form_applies_the_apis_participant_cap(admin_client, limit, accepted):
    call = CallFactory(kind="group", status=CallStatus.WAITING)

    response = admin_client.post(f"{CHANGELIST}{call.pk}/change/", _change_form(call, max_participants=limit))

    call.refresh_from_db()
    assert (call.max_participants == limit) is accepted
    if accepted:
        assert response.status_code == 302, response.content
    else:
        assert response.status_code == 200
        assert "Between 2 and 8." in response.content.decode()


def test_the_admin_cap_follows_the_setting(admin_client, settings):
    settings.CALL_MAX_PARTICIPANTS = 12
    call = CallFactory(kind="group", status=CallStatus.WAITING)

    response = admin_client.post(f"{CHANGELIST}{call.pk}/change/", _change_form(call, max_participants=12))

    assert response.status_code == 302, response.content
    call.refresh_from_db()
    assert call.max_participants == 12

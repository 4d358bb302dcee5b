"""Presence: counted across connections, shared only along care relationships, swept when
heartbeats stop."""

import pytest
import time_machine
from channels.db import database_sync_to_async

from presence.models import PresenceConnection, PresenceStatus, UserPresence
from presence.services import presence_connection_close, presence_connection_open, presence_sweep
from sessions.models import Session
from tests.assertions import assert_error
from tests.factories import DoctorFactory
from tests.realtime.conftest import open_socket, receive, request
from tests.sessions.factories import SessionFactory


def book(doctor, patient) -> Session:
    return SessionFactory(doctor=doctor, patient=patient)


def status_of(user) -> str:
    return UserPresence.objects.get(user=user).status


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_user_goes_offline_only_when_the_last_connection_closes(patient):
    laptop = await open_socket(patient)
    phone = await open_socket(patient)

    await laptop.disconnect()
    after_one = await database_sync_to_async(status_of)(patient)
    await phone.disconnect()
    after_both = await database_sync_to_async(status_of)(patient)

    assert after_one == PresenceStatus.ONLINE
    assert after_both == PresenceStatus.OFFLINE


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_presence_changes_reach_the_patients_doctor_and_not_other_patients(patient, doctor, outsider):
    await database_sync_to_async(book)(doctor, patient)
    doctor_socket = await open_socket(doctor)
    outsider_socket = await open_socket(outsider)

    patient_socket = await open_socket(patient)

    event = await receive(doctor_socket)
    assert event["type"] == "presence.updated"
    assert event["data"]["user_id"] == str(patient.pk)
    assert event["data"]["status"] == "online"
    assert await outsider_socket.receive_nothing(timeout=0.3)
    for socket in (doctor_socket, outsider_socket, patient_socket):
        await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_choosing_a_status_over_the_socket_tells_the_users_other_connections(patient):
    laptop = await open_socket(patient)
    phone = await open_socket(patient)

    reply = await request(laptop, {"type": "presence.set", "id": "s", "data": {"status": "away"}})
    seen_by_phone = await receive(phone)
    echoed_to_laptop = await receive(laptop)

    assert reply["type"] == "ack"
    assert reply["data"]["status"] == "away"
    assert seen_by_phone["type"] == "presence.updated"
    assert seen_by_phone["data"]["status"] == "away"
    assert echoed_to_laptop["data"]["status"] == "away"
    await laptop.disconnect()
    await phone.disconnect()


@pytest.mark.django_db
def test_sweep_drops_connections_whose_heartbeats_stopped(patient, doctor, settings):
    with time_machine.travel("2026-11-24 10:00:00Z", tick=False) as clock:
        presence_connection_open(user=patient, channel_name="stale-channel")
        clock.shift(settings.PRESENCE_TIMEOUT_SECONDS - 1)
        presence_connection_open(user=doctor, channel_name="fresh-channel")
        clock.shift(2)

        dropped = presence_sweep()

    assert dropped == 1
    assert list(PresenceConnection.objects.values_list("channel_name", flat=True)) == ["fresh-channel"]
    assert status_of(patient) == PresenceStatus.OFFLINE
    assert status_of(doctor) == PresenceStatus.ONLINE


@pytest.mark.django_db
def test_sweep_is_idempotent(patient, settings):
    with time_machine.travel("2026-11-24 10:00:00Z", tick=False) as clock:
        presence_connection_open(user=patient, channel_name="stale-channel")
        clock.shift(settings.PRESENCE_TIMEOUT_SECONDS + 1)

        first, second = presence_sweep(), presence_sweep()

    assert (first, second) == (1, 0)


@pytest.mark.django_db
def test_do_not_disturb_wins_over_online(patient_client, patient):
    presence_connection_open(user=patient, channel_name="c1")

    response = patient_client.put("/api/v1/presence/me/", {"status": "dnd"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "dnd"
    assert response.json()["chosen_status"] == "dnd"


@pytest.mark.django_db
def test_chosen_status_applies_only_while_connected(patient_client):
    response = patient_client.put("/api/v1/presence/me/", {"status": "away"}, format="json")

    assert response.json() | {"last_seen_at": None} == {
        "user_id": response.json()["user_id"],
        "status": "offline",
        "chosen_status": "away",
        "last_seen_at": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["busy", "offline", "sleeping", 3, None])
def test_only_online_away_and_dnd_can_be_chosen(patient_client, status):
    response = patient_client.put("/api/v1/presence/me/", {"status": status}, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.django_db
def test_presence_needs_authentication(anon_client):
    assert_error(anon_client.get("/api/v1/presence/me/"), 401, "NOT_AUTHENTICATED")


@pytest.mark.django_db
def test_a_patients_presence_is_hidden_from_other_patients(outsider_client, patient):
    response = outsider_client.get(f"/api/v1/presence/{patient.pk}/")

    assert_error(response, 404, "USER_NOT_FOUND")


@pytest.mark.django_db
def test_a_doctor_sees_the_presence_of_their_patient(doctor_client, doctor, patient):
    book(doctor, patient)
    presence_connection_open(user=patient, channel_name="c1")

    response = doctor_client.get(f"/api/v1/presence/{patient.pk}/")

    assert response.status_code == 200
    assert response.json()["status"] == "online"


@pytest.mark.django_db
def test_a_doctor_does_not_see_patients_of_other_doctors(doctor_client, patient):
    book(DoctorFactory(), patient)

    assert_error(doctor_client.get(f"/api/v1/presence/{patient.pk}/"), 404, "USER_NOT_FOUND")


@pytest.mark.django_db
def test_unknown_user_presence_is_not_found(patient_client):
    response = patient_client.get("/api/v1/presence/00000000-0000-0000-0000-000000000000/")

    assert_error(response, 404, "USER_NOT_FOUND")


@pytest.mark.django_db
def test_patients_list_the_verified_doctors_online(patient_client, doctor):
    unverified = DoctorFactory(doctor_profile__is_verified=False)
    DoctorFactory()  # verified but offline
    presence_connection_open(user=doctor, channel_name="c1")
    presence_connection_open(user=unverified, channel_name="c2")

    response = patient_client.get("/api/v1/presence/doctors/")

    assert response.status_code == 200
    assert [row["user_id"] for row in response.json()["results"]] == [str(doctor.pk)]
    assert response.json()["results"][0]["status"] == "online"


@pytest.mark.django_db
def test_ticket_endpoint_needs_authentication(anon_client):
    assert_error(anon_client.post("/api/v1/realtime/tickets/"), 401, "NOT_AUTHENTICATED")


@pytest.mark.django_db
def test_ticket_endpoint_answers_a_ticket_and_the_url(patient_client, settings):
    response = patient_client.post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == settings.REALTIME_TICKET_TTL_SECONDS
    assert body["url"].endswith(f"?ticket={body['ticket']}")


@pytest.mark.django_db
def test_being_in_a_call_makes_a_connected_user_busy_until_it_ends(doctor, patient, django_capture_on_commit_callbacks):
    from video_calls.services.adhoc import call_accept, call_hangup, call_initiate

    book(doctor, patient)
    presence_connection_open(user=doctor, channel_name="doctor-laptop")
    call = call_initiate(caller=doctor, callee_id=patient.pk)

    with django_capture_on_commit_callbacks(execute=True):
        call_accept(call=call, user=patient)
    during = status_of(doctor)
    with django_capture_on_commit_callbacks(execute=True):
        call_hangup(call=call, user=doctor)
    after = status_of(doctor)

    assert (during, after) == (PresenceStatus.BUSY, PresenceStatus.ONLINE)


@pytest.mark.django_db
def test_sweep_tells_the_patients_doctor_they_went_offline(
    doctor, patient, settings, django_capture_on_commit_callbacks
):
    from tests.video_calls.call_helpers import EventRecorder, event_types

    book(doctor, patient)
    with time_machine.travel("2026-11-24 10:00:00Z", tick=False) as clock:
        presence_connection_open(user=patient, channel_name="patient-phone")
        recorder = EventRecorder()
        recorder.listen_user(doctor)
        clock.shift(settings.PRESENCE_TIMEOUT_SECONDS + 1)

        with django_capture_on_commit_callbacks(execute=True):
            presence_sweep()
        # Read inside the travel: the channel layer stamps messages with an expiry from the
        # (travelled) clock, and outside it they may already have expired.
        events = recorder.for_user(doctor)

    assert event_types(events) == ["presence.updated"]
    assert events[0]["data"]["user_id"] == str(patient.pk)
    assert events[0]["data"]["status"] == "offline"


@pytest.mark.django_db
def test_opening_a_connection_is_a_fixed_handful_of_queries(doctor, patient, django_assert_num_queries):
    """Every socket that connects does this, all at once on the hour."""
    book(doctor, patient)
    presence_connection_open(user=patient, channel_name="earlier")
    presence_connection_close(user=patient, channel_name="earlier")

    # savepoint; insert; the presence row, locked; in a call? (a connection it has: the one just
    # inserted); the new status; the care relations to tell; release
    with django_assert_num_queries(7):
        presence_connection_open(user=patient, channel_name="now")

    assert status_of(patient) == PresenceStatus.ONLINE

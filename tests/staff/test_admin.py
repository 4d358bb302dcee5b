"""The clinic's admin site: branding, the dashboard on the index, times in the staff member's
zone, "View site", and the internal tables hidden or read-only."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from presence.models import PresenceConnection
from tests.factories import DoctorProfileFactory, StaffFactory
from tests.sessions.factories import SessionFactory
from tests.video_calls.factories import CallFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def superuser():
    return StaffFactory(first_name="Ada", last_name="Admin", is_superuser=True)


@pytest.fixture
def admin_browser(superuser) -> Client:
    browser = Client()
    browser.force_login(superuser)
    return browser


def test_index_is_branded_and_shows_the_dashboard(admin_browser, settings):
    settings.CLINIC_NAME = "Northside Clinic"
    with time_machine.travel(NOW, tick=False):
        CallFactory()
        SessionFactory(scheduled_start=NOW + timedelta(hours=1))
        response = admin_browser.get("/admin/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<title>Northside Clinic: today | Northside Clinic admin</title>" in page
    assert "Northside Clinic administration" in page
    assert 'id="staff-dashboard"' in page
    assert '<th scope="row">Calls active now</th><td>1</td>' in page
    assert '<th scope="row">Sessions today</th><td>1</td>' in page
    assert 'href="/api/docs/"' in page  # "View site"
    assert "Django administration" not in page


def test_token_tables_are_hidden(admin_browser):
    page = admin_browser.get("/admin/").content.decode()

    assert "token_blacklist" not in page
    assert admin_browser.get("/admin/token_blacklist/outstandingtoken/").status_code == 404


def test_presence_connections_are_read_only(admin_browser, patient):
    connection = PresenceConnection.objects.create(
        user=patient, channel_name="specific.x", opened_at=NOW, last_heartbeat_at=NOW
    )

    assert admin_browser.get("/admin/presence/presenceconnection/add/").status_code == 403
    change_page = admin_browser.get(f"/admin/presence/presenceconnection/{connection.pk}/change/").content.decode()
    assert 'name="_save"' not in change_page


def test_admin_times_are_in_the_staff_members_zone(patient, settings):
    # given a staff member whose profile says Berlin, and the clinic in UTC
    settings.CLINIC_TIME_ZONE = "UTC"
    clinician = StaffFactory(is_superuser=True)
    DoctorProfileFactory(user=clinician, time_zone="Europe/Berlin")
    browser = Client()
    browser.force_login(clinician)
    PresenceConnection.objects.create(user=patient, channel_name="specific.y", opened_at=NOW, last_heartbeat_at=NOW)

    page = browser.get("/admin/presence/presenceconnection/").content.decode()
    index = browser.get("/admin/").content.decode()

    # 15:00 UTC is 16:00 in Berlin
    assert "4 p.m." in page or "16:00" in page
    assert "times shown in Europe/Berlin" in index
    assert "administration · times in Europe/Berlin" in page


def test_calls_list_names_people_in_a_fixed_number_of_queries(admin_browser, django_assert_max_num_queries):
    from tests.video_calls.factories import CallParticipantFactory

    for _ in range(5):
        call = CallFactory()
        CallParticipantFactory(call=call, user=call.initiated_by)
        CallParticipantFactory(call=call)
    named = CallParticipantFactory(call=call).user

    with django_assert_max_num_queries(12):
        page = admin_browser.get("/admin/video_calls/call/").content.decode()

    assert named.shown_name in page
    assert f">{str(call.pk)[:8]}</a></th>" in page  # the row's link: a short id, not a wrapping UUID

"""No health data in logs or task arguments. A patient's name and the free text they write (a
booking's reason, a message body) carry a marker; the main flows run with every log line
captured (root logger and every configured logger at DEBUG, the production JSON format) and
every task's arguments recorded as they are sent; the marker is in none of them."""

import io
import logging
from datetime import timedelta

import pytest
from celery.app.task import Task
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import PatientProfile
from core.logging import RequestIdFilter, structured_formatter
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory, StaffFactory

pytestmark = pytest.mark.django_db

MARKER = "Zq7MarkerXv3"


@pytest.fixture
def all_log_output(monkeypatch, people_with_marker):
    """Every record any logger emits once the test's data is made (factory_boy's own debug
    lines name what it builds), formatted as production writes it."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(structured_formatter("json"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    monkeypatch.setattr(root, "level", logging.DEBUG)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            monkeypatch.setattr(logger, "level", logging.NOTSET)
            monkeypatch.setattr(logger, "disabled", False)
    logging.disable(logging.NOTSET)
    try:
        yield output
    finally:
        root.removeHandler(handler)


@pytest.fixture
def sent_task_arguments(monkeypatch):
    """The arguments of every task queued, as given to ``apply_async`` (``delay`` goes through it)."""
    sent: list[str] = []
    original = Task.apply_async

    def recording(self, args=None, kwargs=None, *rest, **options):
        sent.append(repr((self.name, args, kwargs, options)))
        return original(self, args, kwargs, *rest, **options)

    monkeypatch.setattr(Task, "apply_async", recording)
    return sent


@pytest.fixture
def people_with_marker(db):
    return (
        DoctorFactory(),
        PatientFactory(first_name=f"Ann{MARKER}", last_name=f"Lee{MARKER}"),
        StaffFactory(is_staff=True, is_superuser=True),
    )


def test_the_main_flows_log_and_queue_no_health_data(
    people_with_marker, all_log_output, sent_task_arguments, client, django_capture_on_commit_callbacks
):
    doctor, patient, staff = people_with_marker
    # What the flows do after commit (notifications, tasks queued) runs as it would in production.
    after_commit = django_capture_on_commit_callbacks(execute=True)
    after_commit.__enter__()
    as_patient, as_doctor = client_for(patient), client_for(doctor)
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    # Booking, with the reason a patient writes.
    booking = {"doctor_id": str(doctor.pk), "scheduled_start": start.isoformat(), "reason": f"Chest pain {MARKER}"}
    session = as_patient.post("/api/v1/sessions/", booking)
    assert session.status_code == 201, session.json()
    assert as_doctor.post(f"/api/v1/sessions/{session.json()['id']}/confirm/").status_code == 200

    # A call: rung, accepted, joined.
    ringing = as_doctor.post("/api/v1/calls/initiate/", {"callee_id": str(patient.pk), "media": "video"})
    assert ringing.status_code == 201, ringing.json()
    call_url = f"/api/v1/calls/{ringing.json()['id']}"
    assert as_patient.post(f"{call_url}/accept/").status_code == 200
    assert as_patient.post(f"{call_url}/join/", {}).status_code == 200

    # Messages both ways, and a failed send (a validation error is logged nowhere with its body).
    sent = as_patient.post("/api/v1/messages/", {"user_id": str(doctor.pk), "body": f"My {MARKER} symptoms"})
    assert sent.status_code == 201, sent.json()
    reply = {"conversation_id": sent.json()["conversation_id"], "body": f"Noted {MARKER}"}
    assert as_doctor.post("/api/v1/messages/", reply).status_code == 201
    assert as_doctor.post("/api/v1/messages/", {"body": f"Nowhere {MARKER}"}).status_code == 400
    assert as_patient.get("/api/v1/conversations/").status_code == 200

    # A password reset asked for: its email goes out through a task, which takes the user's id.
    forgot = APIClient().post("/api/v1/auth/password/forgot/", {"email": patient.email})
    assert forgot.status_code in (200, 202), forgot.json()

    # An admin edit of the patient's profile, and the admin's list that shows their name.
    client.force_login(staff)
    profile = PatientProfile.objects.get(user=patient)
    change = f"/admin/accounts/patientprofile/{profile.pk}/change/"
    assert client.get(change).status_code == 200
    edited = client.post(change, {"user": str(patient.pk), "date_of_birth": "1980-02-03", "time_zone": "Europe/Paris"})
    assert edited.status_code == 302, edited.content[:2000]
    assert MARKER in client.get("/admin/accounts/user/").content.decode()  # the flows did handle it

    after_commit.__exit__(None, None, None)

    logged = all_log_output.getvalue()
    assert logged  # the capture works: the flows log (requests, queued tasks)
    assert MARKER not in logged
    assert sent_task_arguments
    assert not [arguments for arguments in sent_task_arguments if MARKER in arguments]

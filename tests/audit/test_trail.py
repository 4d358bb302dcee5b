"""Every kind of access to health data leaves one audit entry: reads, lists, writes, downloads,
admin pages, the trail itself; refused attempts too; and an action that rolls back takes its
entry with it."""

import uuid

import pytest
from django.db import transaction
from django.test import Client

from audit.models import AuditEntry
from messaging.models import Message
from tests.conftest import client_for
from tests.factories import StaffFactory
from tests.messaging.attachment_support import PDF, downloaded, upload
from tests.messaging.conftest import send
from tests.video_calls.factories import CallFactory, CallParticipantFactory, SessionFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (audit test)"


def entries() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list("action", "object_type", "object_id", "outcome", "status_code")
    )


def only_entry() -> AuditEntry:
    [entry] = AuditEntry.objects.all()
    return entry


def test_reading_a_session_records_who_what_and_where_from(patient, doctor):
    session = SessionFactory(patient=patient, doctor=doctor)
    client = client_for(patient)

    response = client.get(f"/api/v1/sessions/{session.pk}/", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 200
    entry = only_entry()
    assert (entry.actor_id, entry.action, entry.object_type, entry.object_id, entry.outcome) == (
        patient.pk,
        "read",
        "session",
        str(session.pk),
        "allowed",
    )
    assert (entry.ip_address, entry.user_agent, entry.route, entry.method) == (
        "203.0.113.7",
        BROWSER,
        "session-detail",
        "GET",
    )
    assert entry.path == f"/api/v1/sessions/{session.pk}/"
    assert entry.occurred_at.utcoffset().total_seconds() == 0


def test_a_list_is_one_entry_naming_every_record_it_showed(patient, doctor):
    sessions = SessionFactory.create_batch(3, patient=patient, doctor=doctor)

    response = client_for(doctor).get("/api/v1/sessions/?page_size=2")

    assert response.status_code == 200
    entry = only_entry()
    assert (entry.action, entry.object_type, entry.record_type) == ("list", "session", "session")
    shown = [row["id"] for row in response.json()["results"]]
    assert entry.record_ids == shown and len(shown) == 2
    assert set(shown) <= {str(session.pk) for session in sessions}


def test_call_details_and_participants_are_recorded(patient, doctor):
    call = CallFactory(initiated_by=doctor)
    CallParticipantFactory(call=call, user=doctor)
    CallParticipantFactory(call=call, user=patient)
    client = client_for(patient)

    client.get(f"/api/v1/calls/{call.pk}/")
    client.get(f"/api/v1/calls/{call.pk}/participants/")

    assert [(action, kind, object_id) for action, kind, object_id, *_ in entries()] == [
        ("read", "call", str(call.pk)),
        ("list", "call", str(call.pk)),
    ]


def test_messages_listed_sent_read_and_deleted_are_each_recorded(direct, patient, doctor):
    earlier = send(doctor, direct, "Your results are in")
    client = client_for(patient)

    listed = client.get(f"/api/v1/conversations/{direct.pk}/messages/")
    sent = client.post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "Thanks"})
    read = client.post(f"/api/v1/messages/{earlier.pk}/read/")
    deleted = client.delete(f"/api/v1/messages/{sent.json()['id']}/")

    assert [listed.status_code, sent.status_code, read.status_code, deleted.status_code] == [200, 201, 200, 204]
    assert entries() == [
        ("list", "conversation", str(direct.pk), "allowed", 200),
        ("create", "message", sent.json()["id"], "allowed", 201),
        ("update", "message", str(earlier.pk), "allowed", 200),
        ("delete", "message", sent.json()["id"], "allowed", 204),
    ]
    assert AuditEntry.objects.get(action="list").record_ids == [str(earlier.pk)]


def test_an_attachment_download_is_recorded(patient, attachment_root, settings):
    settings.SECURE_CONTENT_TYPE_NOSNIFF = False
    attachment = upload(patient)

    response = client_for(patient).get(f"/api/v1/attachments/{attachment.pk}/download/")

    assert downloaded(response) == PDF
    assert entries() == [("download", "attachment", str(attachment.pk), "allowed", 200)]


def test_profiles_read_and_changed_are_recorded(patient, doctor):
    SessionFactory(patient=patient, doctor=doctor)

    client_for(patient).get("/api/v1/me/")
    client_for(patient).patch("/api/v1/me/", {"first_name": "Alicia"})
    client_for(doctor).get(f"/api/v1/patients/{patient.pk}/")

    assert [(action, kind, object_id) for action, kind, object_id, *_ in entries()] == [
        ("read", "profile", ""),
        ("update", "profile", ""),
        ("read", "profile", str(patient.pk)),
    ]


def test_an_admin_edit_and_view_are_recorded(patient):
    superuser = StaffFactory(is_superuser=True)
    browser = Client()
    browser.force_login(superuser)
    page = f"/admin/accounts/user/{patient.pk}/change/"

    browser.get(page)
    browser.get("/admin/accounts/user/")

    [read, listed] = AuditEntry.objects.order_by("id")
    assert (read.actor_id, read.action, read.object_type, read.object_id) == (
        superuser.pk,
        "read",
        "accounts.user",
        str(patient.pk),
    )
    assert (listed.action, str(patient.pk) in listed.record_ids) == ("list", True)


def test_an_admin_change_is_recorded_with_the_change_itself(patient):
    profile = patient.patient_profile
    browser = Client()
    browser.force_login(StaffFactory(is_superuser=True))
    page = f"/admin/accounts/patientprofile/{profile.pk}/change/"
    form = browser.get(page).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}

    saved = browser.post(page, {**data, "time_zone": "America/Chicago"})
    refused = browser.post(page, {**data, "time_zone": "Not/AZone"})

    assert saved.status_code == 302
    assert refused.status_code == 200  # the form again, with its error
    profile.refresh_from_db()
    assert profile.time_zone == "America/Chicago"
    assert [(action, kind, object_id, outcome) for action, kind, object_id, outcome, _ in entries()] == [
        ("read", "accounts.patientprofile", str(profile.pk), "allowed"),
        ("update", "accounts.patientprofile", str(profile.pk), "allowed"),
        ("update", "accounts.patientprofile", str(profile.pk), "failed"),
    ]


def test_reading_and_exporting_the_trail_are_recorded(staff):
    client = client_for(staff)

    client.get("/api/v1/audit/entries/")
    export = client.get("/api/v1/audit/entries/export/")
    b"".join(export.streaming_content)

    assert [(action, kind) for action, kind, *_ in entries()] == [("list", "audit_entry"), ("export", "audit_entry")]


# --- Refused attempts ------------------------------------------------------------------------


def test_someone_elses_session_is_a_denied_attempt(patient, doctor, outsider):
    session = SessionFactory(patient=patient, doctor=doctor)

    response = client_for(outsider).get(f"/api/v1/sessions/{session.pk}/")

    assert response.status_code == 404
    entry = only_entry()
    assert (entry.actor_id, entry.action, entry.object_id, entry.outcome, entry.status_code) == (
        outsider.pk,
        "read",
        str(session.pk),
        "denied",
        404,
    )


def test_a_refused_write_is_recorded_although_nothing_it_did_is_kept(direct, outsider):
    response = client_for(outsider).post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "hi"})

    assert response.status_code == 404
    assert Message.objects.count() == 0
    assert entries() == [("create", "message", "", "denied", 404)]


def test_an_attempt_without_a_token_is_recorded_without_an_actor(anon_client):
    anon_client.get(f"/api/v1/sessions/{uuid.uuid4()}/")

    entry = only_entry()
    assert (entry.actor_id, entry.outcome, entry.status_code) == (None, "denied", 401)


def test_a_non_staff_member_reading_the_trail_is_denied(patient):
    response = client_for(patient).get("/api/v1/audit/entries/")

    assert response.status_code == 403
    assert entries() == [("list", "audit_entry", "", "denied", 403)]


def test_invalid_input_is_a_failed_attempt(patient, doctor):
    response = client_for(patient).post("/api/v1/sessions/", {"doctor_id": "not-a-uuid"})

    assert response.status_code == 400
    assert entries() == [("create", "session", "", "failed", 400)]


def test_routes_without_health_data_leave_no_entry(patient_client):
    patient_client.get("/api/v1/doctors/")
    patient_client.get("/api/v1/presence/me/")

    assert entries() == []


# --- Same transaction --------------------------------------------------------------------------


def test_an_action_rolled_back_leaves_no_entry(direct, patient):
    with pytest.raises(RuntimeError), transaction.atomic():
        response = client_for(patient).post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "x"})
        assert response.status_code == 201
        assert AuditEntry.objects.count() == 1
        raise RuntimeError("the surrounding transaction fails")

    assert Message.objects.count() == 0
    assert entries() == []


@pytest.mark.django_db(transaction=True)
def test_an_entry_that_cannot_be_written_takes_the_action_with_it(care, patient, doctor, monkeypatch):
    """Outside any test transaction: the request's own transaction holds both writes."""
    from messaging.services.conversations import conversation_direct_open

    direct, _ = conversation_direct_open(user=patient, other_id=doctor.pk)
    refusals = []

    def refuse(**fields):
        refusals.append(fields["action"])
        if fields["outcome"] == "allowed":
            raise RuntimeError("the audit insert failed")
        return AuditEntry.objects.create(**{k: v for k, v in fields.items() if k != "actor"})

    monkeypatch.setattr("audit.middleware.audit_record", refuse)
    client = client_for(patient)
    client.raise_request_exception = False

    response = client.post("/api/v1/messages/", {"conversation_id": str(direct.pk), "body": "never stored"})

    assert response.status_code == 500
    assert Message.objects.count() == 0
    assert refusals == ["create"]


@pytest.mark.parametrize("page_size", [1, 20])
def test_a_listed_page_is_one_insert_whatever_its_size(patient, doctor, page_size, django_assert_num_queries):
    SessionFactory.create_batch(20, patient=patient, doctor=doctor)
    client = client_for(doctor)

    with django_assert_num_queries(4):  # authentication, count, page, one audit insert
        response = client.get("/api/v1/sessions/", {"page_size": page_size})

    assert len(AuditEntry.objects.get().record_ids) == len(response.json()["results"]) == page_size


def test_an_outage_leaves_no_entry_and_no_second_wait(patient, doctor, monkeypatch):
    """A dependency down answers 503 at once; the trail does not try a write the database may
    not take (core/outages.py)."""
    from django.db import InterfaceError

    session = SessionFactory(patient=patient, doctor=doctor)

    def database_down(**selector_arguments):
        raise InterfaceError("connection refused")

    monkeypatch.setattr("sessions.selectors.session_get_for_user", database_down)

    response = client_for(patient).get(f"/api/v1/sessions/{session.pk}/")

    assert response.status_code == 503
    assert entries() == []


def test_written_entries_are_counted_once_committed(patient, monkeypatch, django_capture_on_commit_callbacks):
    from core import metrics

    counted = []
    monkeypatch.setattr(metrics.audit_rows_written, "inc", lambda amount=1: counted.append(amount))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_for(patient).get("/api/v1/me/")
    assert counted == []  # not before the commit
    for callback in callbacks:
        callback()

    assert counted == [1]

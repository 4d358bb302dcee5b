"""Who sees whose presence: along the care relationship of the sessions app (a shared session
that was not cancelled), for the REST reads and for ``presence.updated`` events alike."""

import pytest

from presence.services import presence_connection_open
from sessions.models import SessionStatus
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, StaffFactory
from tests.sessions.factories import SessionFactory
from tests.video_calls.call_helpers import EventRecorder, event_types

pytestmark = pytest.mark.django_db

COUNTING = [SessionStatus.REQUESTED, SessionStatus.CONFIRMED, SessionStatus.COMPLETED, SessionStatus.NO_SHOW]


def presence_path(user) -> str:
    return f"/api/v1/presence/{user.pk}/"


def connect_and_record(user, *, listeners, django_capture_on_commit_callbacks) -> dict:
    """``user`` opens a connection; what each listener's connections heard of it."""
    recorder = EventRecorder()
    for listener in listeners:
        recorder.listen_user(listener)
    with django_capture_on_commit_callbacks(execute=True):
        presence_connection_open(user=user, channel_name=f"{user.pk}-laptop")
    return {listener.pk: event_types(recorder.for_user(listener)) for listener in listeners}


# --- A cancelled session is no care relationship ---------------------------------------------


def test_a_doctor_whose_only_session_was_cancelled_cannot_read_the_patients_presence(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient, status=SessionStatus.CANCELLED)

    response = client_for(doctor).get(presence_path(patient))

    assert_error(response, 404, "USER_NOT_FOUND")


@pytest.mark.parametrize("status", COUNTING)
def test_a_doctor_with_a_session_that_was_not_cancelled_reads_the_patients_presence(doctor, patient, status):
    SessionFactory(doctor=doctor, patient=patient, status=status)

    response = client_for(doctor).get(presence_path(patient))

    assert response.status_code == 200
    assert response.json()["user_id"] == str(patient.pk)


def test_a_cancelled_session_next_to_a_current_one_keeps_the_relationship(doctor, patient):
    SessionFactory(doctor=doctor, patient=patient, status=SessionStatus.CANCELLED)
    SessionFactory(doctor=doctor, patient=patient, status=SessionStatus.CONFIRMED)

    assert client_for(doctor).get(presence_path(patient)).status_code == 200


def test_a_doctor_whose_only_session_was_cancelled_hears_nothing_of_the_patient(
    doctor, patient, django_capture_on_commit_callbacks
):
    # Given a doctor whose session with the patient was cancelled, and one who still has a session
    current_doctor = DoctorFactory()
    SessionFactory(doctor=doctor, patient=patient, status=SessionStatus.CANCELLED)
    SessionFactory(doctor=current_doctor, patient=patient, status=SessionStatus.CONFIRMED)

    # When the patient comes online
    heard = connect_and_record(
        patient,
        listeners=[doctor, current_doctor],
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )

    # Then only the doctor in a care relationship is told
    assert heard == {doctor.pk: [], current_doctor.pk: ["presence.updated"]}


# --- Staff presence is for staff -------------------------------------------------------------


def test_a_patient_cannot_read_a_staff_members_presence(patient, staff):
    SessionFactory(patient=patient, status=SessionStatus.CONFIRMED)

    assert_error(client_for(patient).get(presence_path(staff)), 404, "USER_NOT_FOUND")


def test_a_doctor_cannot_read_a_staff_members_presence(doctor, staff):
    assert_error(client_for(doctor).get(presence_path(staff)), 404, "USER_NOT_FOUND")


def test_staff_read_each_others_presence(staff):
    colleague = StaffFactory()

    assert client_for(colleague).get(presence_path(staff)).status_code == 200


def test_a_staff_members_presence_reaches_no_patient(patient, staff, django_capture_on_commit_callbacks):
    SessionFactory(patient=patient, status=SessionStatus.CONFIRMED)

    heard = connect_and_record(
        staff, listeners=[patient, staff], django_capture_on_commit_callbacks=django_capture_on_commit_callbacks
    )

    assert heard == {patient.pk: [], staff.pk: ["presence.updated"]}

"""Contacts: the care team from sessions plus the people a user added among those they may add;
an added contact may be messaged, a removed one no longer."""

import pytest

from messaging.models import Contact
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import DoctorFactory, PatientFactory
from tests.messaging.conftest import send

pytestmark = pytest.mark.django_db


def test_the_care_team_is_listed_without_being_added(care, patient_client, doctor):
    body = patient_client.get("/api/v1/contacts/").json()

    assert [(c["id"], c["in_care_team"], c["added_at"]) for c in body["results"]] == [(str(doctor.pk), True, None)]


def test_a_patient_adds_a_verified_doctor_and_may_then_message_them(patient, patient_client):
    doctor = DoctorFactory(last_name="Zhivago")

    added = patient_client.post("/api/v1/contacts/", {"user_id": str(doctor.pk)})
    again = patient_client.post("/api/v1/contacts/", {"user_id": str(doctor.pk)})
    sent = patient_client.post("/api/v1/messages/", {"user_id": str(doctor.pk), "body": "Do you take new patients?"})

    assert (added.status_code, again.status_code, sent.status_code) == (201, 200, 201)
    assert (added.json()["in_care_team"], added.json()["added_at"] is not None) == (False, True)
    assert Contact.objects.filter(owner=patient).count() == 1
    # and the doctor may answer in that conversation
    reply = client_for(doctor).post(
        "/api/v1/messages/", {"conversation_id": sent.json()["conversation_id"], "body": "Yes, book a session."}
    )
    assert reply.status_code == 201


@pytest.mark.parametrize(
    "who, target",
    [
        ("patient", "unverified_doctor"),
        ("patient", "other_patient"),
        ("doctor", "unrelated_patient"),
    ],
)
def test_people_outside_what_a_role_may_add_are_not_found(patient, doctor, who, target):
    targets = {
        "unverified_doctor": lambda: DoctorFactory(doctor_profile__is_verified=False),
        "other_patient": PatientFactory,
        "unrelated_patient": PatientFactory,
    }
    person = targets[target]()
    owner = {"patient": patient, "doctor": doctor}[who]

    response = client_for(owner).post("/api/v1/contacts/", {"user_id": str(person.pk)})

    assert_error(response, 404, "USER_NOT_FOUND")


def test_a_doctor_adds_another_doctor_and_staff_add_anyone(doctor, staff, outsider):
    colleague = DoctorFactory()

    assert client_for(doctor).post("/api/v1/contacts/", {"user_id": str(colleague.pk)}).status_code == 201
    assert client_for(staff).post("/api/v1/contacts/", {"user_id": str(outsider.pk)}).status_code == 201


def test_adding_oneself_is_refused(patient_client, patient):
    assert_error(patient_client.post("/api/v1/contacts/", {"user_id": str(patient.pk)}), 400, "CANNOT_ADD_SELF")


def test_a_removed_contact_can_no_longer_be_messaged(patient, patient_client):
    doctor = DoctorFactory()
    patient_client.post("/api/v1/contacts/", {"user_id": str(doctor.pk)})
    conversation = patient_client.post("/api/v1/conversations/", {"user_id": str(doctor.pk)}).json()

    removed = patient_client.delete(f"/api/v1/contacts/{doctor.pk}/")
    removed_again = patient_client.delete(f"/api/v1/contacts/{doctor.pk}/")
    sent = patient_client.post("/api/v1/messages/", {"conversation_id": conversation["id"], "body": "Hello?"})

    assert removed.status_code == 204
    assert_error(removed_again, 404, "CONTACT_NOT_FOUND")
    assert_error(sent, 403, "MESSAGING_NOT_ALLOWED")
    assert patient_client.get("/api/v1/contacts/").json()["count"] == 0


def test_the_care_team_keeps_messaging_whatever_the_contacts(direct, patient, doctor):
    send(patient, direct, "still here")  # no contact rows at all: the session is enough

    assert not Contact.objects.exists()

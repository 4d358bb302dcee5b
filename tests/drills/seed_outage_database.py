"""Seeds the throwaway database of the PostgreSQL drill (run as a separate process, with the
drill's settings and ``DATABASE_URL``): a doctor and a patient in a care relationship. Prints
their ids and access tokens as JSON."""

import json

import django

django.setup()

from accounts.tokens import token_pair_for  # noqa: E402
from tests.factories import DoctorFactory, PatientFactory  # noqa: E402
from tests.sessions.factories import SessionFactory  # noqa: E402

doctor, patient = DoctorFactory(), PatientFactory()
SessionFactory(doctor=doctor, patient=patient)
print(
    json.dumps(
        {
            "doctor_id": str(doctor.pk),
            "patient_id": str(patient.pk),
            "doctor_token": token_pair_for(doctor)["access"],
            "patient_token": token_pair_for(patient)["access"],
        }
    )
)

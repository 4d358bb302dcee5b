"""factory_boy factories for the domain models. Users share one pre-hashed password so that
building them does not run Argon2 each time; tests that sign in use ``PASSWORD``."""

import factory
from django.contrib.auth.hashers import make_password

from accounts.models import DoctorProfile, PatientProfile, Role, User

PASSWORD = "Correct-horse-7"
_PASSWORD_HASH = make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = _PASSWORD_HASH
    email_verified = True


class PatientFactory(UserFactory):
    role = Role.PATIENT
    patient_profile = factory.RelatedFactory("tests.factories.PatientProfileFactory", factory_related_name="user")


class DoctorFactory(UserFactory):
    role = Role.DOCTOR
    doctor_profile = factory.RelatedFactory("tests.factories.DoctorProfileFactory", factory_related_name="user")


class StaffFactory(UserFactory):
    role = Role.STAFF
    is_staff = True


class PatientProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientProfile

    user = factory.SubFactory(UserFactory, role=Role.PATIENT)
    time_zone = "Europe/Berlin"


class DoctorProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoctorProfile

    user = factory.SubFactory(UserFactory, role=Role.DOCTOR)
    specialty = "Family Medicine"
    license_number = factory.Sequence(lambda n: f"LIC-{n:06d}")
    consultation_fee = "75.00"
    time_zone = "America/New_York"
    is_verified = True

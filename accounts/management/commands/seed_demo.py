"""Create the demo accounts (idempotent) and print their logins.

Refuses to run with ``DEBUG`` off unless ``--force`` is given: demo passwords are public.
"""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import DoctorProfile, PatientProfile, Role, User

DEMO_PASSWORD = "Demo-pass-2026"

DEMO_USERS = [
    {"email": "staff@demo.clinic", "first_name": "Sam", "last_name": "Staff", "role": Role.STAFF},
    {
        "email": "dr.house@demo.clinic",
        "first_name": "Gregory",
        "last_name": "House",
        "role": Role.DOCTOR,
        "doctor": {
            "specialty": "Internal Medicine",
            "license_number": "DEMO-MD-0001",
            "fee": "80.00",
            "tz": "America/New_York",
        },
    },
    {
        "email": "dr.quinn@demo.clinic",
        "first_name": "Michaela",
        "last_name": "Quinn",
        "role": Role.DOCTOR,
        "doctor": {
            "specialty": "Family Medicine",
            "license_number": "DEMO-MD-0002",
            "fee": "60.00",
            "tz": "Europe/London",
        },
    },
    {
        "email": "alice@demo.clinic",
        "first_name": "Alice",
        "last_name": "Patient",
        "role": Role.PATIENT,
        "tz": "Europe/Berlin",
    },
    {
        "email": "bob@demo.clinic",
        "first_name": "Bob",
        "last_name": "Patient",
        "role": Role.PATIENT,
        "tz": "America/Chicago",
    },
]


class Command(BaseCommand):
    help = "Create demo staff, doctors and patients (idempotent) and print their logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    @transaction.atomic
    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("Demo accounts have public passwords: run with DEBUG on, or pass --force.")
        for spec in DEMO_USERS:
            user, created = User.objects.get_or_create(
                email=spec["email"],
                defaults={
                    "first_name": spec["first_name"],
                    "last_name": spec["last_name"],
                    "role": spec["role"],
                    "email_verified": True,
                    "is_staff": spec["role"] == Role.STAFF,
                    "is_superuser": spec["role"] == Role.STAFF,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            if "doctor" in spec:
                doctor = spec["doctor"]
                DoctorProfile.objects.get_or_create(
                    user=user,
                    defaults={
                        "specialty": doctor["specialty"],
                        "license_number": doctor["license_number"],
                        "consultation_fee": Decimal(doctor["fee"]),
                        "time_zone": doctor["tz"],
                        "is_verified": True,
                        "bio": f"Demo {doctor['specialty'].lower()} doctor.",
                    },
                )
            elif spec["role"] == Role.PATIENT:
                PatientProfile.objects.get_or_create(user=user, defaults={"time_zone": spec["tz"]})

        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
        for spec in DEMO_USERS:
            self.stdout.write(f"  {spec['role']:<8} {spec['email']}")

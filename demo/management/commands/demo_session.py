"""Book a consultation between a demo doctor and a demo patient that can be joined now, as the
API would: the patient books it, the doctor confirms it, staff record the payment.

    python manage.py seed_demo && python manage.py demo_session

Then sign in at ``/demo/`` as both (two browsers, or a normal and a private window). Refuses to
run with ``DEBUG`` off unless ``--force`` is given, as ``seed_demo`` does.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from core.exceptions import ApplicationError
from sessions.services.booking import session_book
from sessions.services.lifecycle import session_confirm
from sessions.services.payments import session_mark_paid


class Command(BaseCommand):
    help = "Book, confirm and pay a session between a demo doctor and patient that starts in a few minutes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--doctor", default="dr.house@demo.clinic", help="The doctor's email.")
        parser.add_argument("--patient", default="alice@demo.clinic", help="The patient's email.")
        parser.add_argument(
            "--in-minutes", type=int, default=2, help="Minutes until the start (the window opens before)."
        )
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, doctor: str, patient: str, in_minutes: int, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("This books sessions for demo accounts: run with DEBUG on, or pass --force.")
        doctor_user = self._user(doctor, Role.DOCTOR)
        patient_user = self._user(patient, Role.PATIENT)
        staff_user = User.objects.filter(role=Role.STAFF, is_active=True).order_by("date_joined").first()
        if staff_user is None:
            raise CommandError("No staff account records the payment: run `manage.py seed_demo` first.")
        start = (timezone.now() + timedelta(minutes=in_minutes)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        try:
            with transaction.atomic():
                session = session_book(requested_by=patient_user, doctor_id=doctor_user.pk, scheduled_start=start)
                session = session_confirm(session=session, user=doctor_user)
                session = session_mark_paid(session=session, user=staff_user, note="Demo session")
        except ApplicationError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        self.stdout.write(
            f"Session {session.pk}: {doctor_user.email} with {patient_user.email} at "
            f"{session.scheduled_start:%Y-%m-%d %H:%M} UTC, confirmed and paid; its join window is open."
        )

    def _user(self, email: str, role: str) -> User:
        user = User.objects.filter(email=email.lower(), role=role, is_active=True).first()
        if user is None:
            raise CommandError(f"No active {role} {email}: run `manage.py seed_demo` first, or name another.")
        return user

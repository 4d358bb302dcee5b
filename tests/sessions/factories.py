"""Factories for sessions and payments. A session's blocked range follows its start, duration and
the buffer setting, as ``session_book`` computes it."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.conf import settings
from django.utils import timezone

from sessions.models import Payment, PaymentKind, PaymentSource, PaymentStatus, Session, SessionStatus
from tests.factories import DoctorFactory, PatientFactory


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    doctor = factory.SubFactory(DoctorFactory)
    patient = factory.SubFactory(PatientFactory)
    scheduled_start = factory.LazyFunction(lambda: (timezone.now() + timedelta(days=3)).replace(microsecond=0))
    duration_minutes = 50
    blocked_until = factory.LazyAttribute(
        lambda s: s.scheduled_start + timedelta(minutes=s.duration_minutes + settings.SESSION_BUFFER_MINUTES)
    )
    status = SessionStatus.REQUESTED
    price = Decimal("75.00")
    currency = "USD"


class ConfirmedPaidSessionFactory(SessionFactory):
    status = SessionStatus.CONFIRMED
    payment_status = PaymentStatus.PAID


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    session = factory.SubFactory(SessionFactory)
    kind = PaymentKind.CHARGE
    status = PaymentStatus.PAID
    amount = Decimal("75.00")
    currency = "USD"
    source = PaymentSource.STAFF

"""Booked consultations ("sessions") between a doctor and a patient, and their payments.

A session blocks its doctor's and its patient's calendars from ``scheduled_start`` to
``blocked_until`` (the scheduled end plus the booking buffer in force when it was booked or last
rescheduled). Storing the blocked range, rather than recomputing it from a setting, is what lets
PostgreSQL enforce "no overlap including the buffer" with an exclusion constraint (migration
0003): a constraint cannot read a Django setting, but it can compare stored columns.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models


class SessionStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    CONFIRMED = "confirmed", "Confirmed"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    REFUNDED = "refunded", "Refunded"
    FAILED = "failed", "Failed"


class SessionType(models.TextChoices):
    INITIAL = "initial", "Initial consultation"
    FOLLOW_UP = "follow_up", "Follow-up"


class NoShowParty(models.TextChoices):
    PATIENT = "patient", "Patient"
    DOCTOR = "doctor", "Doctor"
    BOTH = "both", "Both"


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sessions_as_doctor")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sessions_as_patient")
    scheduled_start = models.DateTimeField(db_index=True)
    duration_minutes = models.PositiveSmallIntegerField()
    blocked_until = models.DateTimeField(
        help_text="Scheduled end plus the booking buffer in force when booked; the calendars of both "
        "participants are blocked from the start until this instant.",
    )
    session_type = models.CharField(max_length=16, choices=SessionType.choices, default=SessionType.INITIAL)
    reason = models.TextField("reason for visit", blank=True, default="")
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.REQUESTED)
    payment_status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    doctor_joined_at = models.DateTimeField(null=True, blank=True, help_text="The doctor's first join of the call.")
    patient_joined_at = models.DateTimeField(null=True, blank=True, help_text="The patient's first join of the call.")
    no_show_party = models.CharField(max_length=8, choices=NoShowParty.choices, blank=True, default="")
    refund_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when a paid session is cancelled or the doctor did not show: the payment is due back.",
    )
    cancellation_reason = models.TextField(blank=True, default="")
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-scheduled_start"]
        indexes = [
            models.Index(fields=["doctor", "scheduled_start"]),
            models.Index(fields=["patient", "scheduled_start"]),
            models.Index(fields=["status", "scheduled_start"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(blocked_until__gt=models.F("scheduled_start")),
                name="consultations_session_blocked_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(doctor=models.F("patient")),
                name="consultations_session_distinct_participants",
            ),
        ]

    def __str__(self) -> str:
        return f"Session {self.id} ({self.status})"

    @property
    def scheduled_end(self) -> datetime:
        return self.scheduled_start + timedelta(minutes=self.duration_minutes)

    def is_participant(self, user) -> bool:
        return user.pk is not None and user.pk in (self.doctor_id, self.patient_id)


class PaymentKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"


class PaymentSource(models.TextChoices):
    PROVIDER = "provider", "Payment provider webhook"
    STAFF = "staff", "Recorded by staff"


class Payment(models.Model):
    """One payment attempt (or refund) for a session: a failed card and the retry that succeeded
    are two rows, so the history survives; the session's ``payment_status`` is the summary."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=8, choices=PaymentKind.choices, default=PaymentKind.CHARGE)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=16, choices=PaymentSource.choices)
    provider_payment_id = models.CharField(max_length=255, blank=True, default="")
    provider_event_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The webhook event that recorded this attempt; unique, so a replayed event changes nothing.",
    )
    note = models.CharField(max_length=500, blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "-created_at"])]
        constraints = [
            # Staff-recorded payments have no event id; every provider event is recorded once.
            models.UniqueConstraint(
                fields=["provider_event_id"],
                condition=~models.Q(provider_event_id=""),
                name="consultations_payment_event_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.kind} {self.status})"

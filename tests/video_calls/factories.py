"""factory_boy factories for calls, their participants, events and quality samples.

They write rows directly (no state machine), so tests can set up any moment of a call's life:
a completed call with durations, a participant who already left, a week-old missed call.
``created_at`` is ``auto_now_add``: travel in time (time_machine) to date a call, or update it
after creation.
"""

from datetime import timedelta

import factory
from django.utils import timezone

from sessions.models import Session
from tests.factories import DoctorFactory, PatientFactory
from video_calls.models import (
    Call,
    CallEvent,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallQualitySample,
    CallStatus,
    ParticipantRole,
    ParticipantStatus,
)


class SessionFactory(factory.django.DjangoModelFactory):
    """A booked session, days apart from the previous one so bookings never overlap."""

    class Meta:
        model = Session

    doctor = factory.SubFactory(DoctorFactory)
    patient = factory.SubFactory(PatientFactory)
    scheduled_start = factory.Sequence(lambda n: timezone.now() + timedelta(days=n + 1))
    duration_minutes = 50
    blocked_until = factory.LazyAttribute(lambda s: s.scheduled_start + timedelta(minutes=s.duration_minutes + 10))


class CallFactory(factory.django.DjangoModelFactory):
    """An ad-hoc video call that rang and is now ongoing, started by a doctor."""

    class Meta:
        model = Call

    kind = CallKind.AD_HOC
    media = CallMedia.VIDEO
    status = CallStatus.ONGOING
    initiated_by = factory.SubFactory(DoctorFactory)
    host = factory.SelfAttribute("initiated_by")

    class Params:
        completed = factory.Trait(
            status=CallStatus.COMPLETED,
            accepted_at=factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20)),
            started_at=factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20)),
            ended_at=factory.LazyFunction(timezone.now),
            duration_seconds=1200,
            end_reason="hangup",
        )


class CallParticipantFactory(factory.django.DjangoModelFactory):
    """A patient connected to the call right now."""

    class Meta:
        model = CallParticipant

    call = factory.SubFactory(CallFactory)
    user = factory.SubFactory(PatientFactory)
    role = ParticipantRole.PATIENT
    status = ParticipantStatus.JOINED
    first_joined_at = factory.LazyFunction(timezone.now)
    joined_at = factory.SelfAttribute("first_joined_at")


class CallEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallEvent

    call = factory.SubFactory(CallFactory)
    type = CallEventType.INITIATED
    at = factory.LazyFunction(timezone.now)


class CallQualitySampleFactory(factory.django.DjangoModelFactory):
    """A sample of a healthy connection from ``participant``."""

    class Meta:
        model = CallQualitySample

    participant = factory.SubFactory(CallParticipantFactory)
    call = factory.SelfAttribute("participant.call")
    recorded_at = factory.LazyFunction(timezone.now)
    rtt_ms = 45
    packet_loss_percent = "0.20"
    jitter_ms = 8
    audio_bitrate_kbps = 64
    video_bitrate_kbps = 2500
    resolution_width = 1280
    resolution_height = 720
    frame_rate = "30.00"
    cpu_percent = "25.50"
    memory_mb = 512
    audio_quality = "good"
    video_quality = "excellent"

"""Calls, their participants, a row per lifecycle transition, and per-participant quality samples.

A call is the room of a booked session (one per session), an ad-hoc call from a caller to a
callee that rings first, or a group consultation that a doctor or staff member sets up with
several invitees. Status changes happen only in ``video_calls.services``, as conditional updates,
so concurrent actions resolve to one winner. When a call is recorded (by the media platform), each
participant's consent is kept here (``RecordingConsent``).
"""

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def new_room_name() -> str:
    """192 random bits, URL-safe: a room cannot be guessed."""
    return secrets.token_urlsafe(24)


class CallKind(models.TextChoices):
    SESSION = "session", "Session room"
    AD_HOC = "ad_hoc", "Ad-hoc call"
    GROUP = "group", "Group consultation"


class CallMedia(models.TextChoices):
    VIDEO = "video", "Video"
    VOICE = "voice", "Voice"


class CallStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for participants"
    RINGING = "ringing", "Ringing"
    ONGOING = "ongoing", "Ongoing"
    COMPLETED = "completed", "Completed"
    DECLINED = "declined", "Declined"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# The fewest places a call has: its host and one more.
MIN_PARTICIPANTS = 2


def participant_cap() -> int:
    """The most places any call may have (``CALL_MAX_PARTICIPANTS``). Read when a limit is
    checked, not at import, so the model, the admin form, the API and the services all apply the
    setting in force (and no migration records its value)."""
    return settings.CALL_MAX_PARTICIPANTS


def validate_participant_limit(value: int) -> None:
    """A call's ``max_participants`` lies between ``MIN_PARTICIPANTS`` and ``participant_cap()``:
    the model field's validator, hence the admin form's, and the API serializers'."""
    cap = participant_cap()
    if not MIN_PARTICIPANTS <= value <= cap:
        raise ValidationError(
            "Between %(lowest)s and %(cap)s.", code="out_of_range", params={"lowest": MIN_PARTICIPANTS, "cap": cap}
        )


LIVE_CALL_STATUSES = (CallStatus.WAITING, CallStatus.RINGING, CallStatus.ONGOING)
# A room (session or group call) can be joined, administered or ended while it is in these.
ROOM_STATUSES = (CallStatus.WAITING, CallStatus.ONGOING)


class EndReason(models.TextChoices):
    HANGUP = "hangup", "Hung up"
    HOST_ENDED = "host_ended", "Ended by the host"
    STAFF_ENDED = "staff_ended", "Ended by staff"
    WINDOW_CLOSED = "window_closed", "Join window closed"
    NO_PARTICIPANTS = "no_participants", "Nobody connected"
    MAX_DURATION = "max_duration", "Maximum duration reached"
    SESSION_CANCELLED = "session_cancelled", "Session cancelled"
    RING_TIMEOUT = "ring_timeout", "Nobody answered"
    DECLINED = "declined", "Declined"
    BUSY = "busy", "Callee busy"
    CALLER_CANCELLED = "caller_cancelled", "Cancelled by the caller"


# The call's on/off settings, as the host changes them (``call_settings_update``) and every
# answer and event carrying the settings shows them.
CALL_SETTING_FLAGS = (
    "allow_join_before_host",
    "waiting_room_enabled",
    "chat_enabled",
    "screen_share_enabled",
    "mute_on_join",
    "recording_enabled",
    "auto_recording",
)


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=CallKind.choices)
    media = models.CharField(max_length=8, choices=CallMedia.choices, default=CallMedia.VIDEO)
    session = models.ForeignKey(
        "consultations.Session", on_delete=models.PROTECT, null=True, blank=True, related_name="calls"
    )
    room_name = models.CharField(max_length=64, unique=True, default=new_room_name, editable=False)
    status = models.CharField(max_length=16, choices=CallStatus.choices, db_index=True)
    initiated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="calls_initiated")
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls_hosted"
    )
    title = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(max_length=2000, blank=True, default="")
    # A group consultation's planned times, set by its host (reference 004's meetings). Shown and
    # sent, not enforced: a session room's times are its session's, and no sweep reads these.
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)

    # Per-call settings (references 002 and 004).
    max_participants = models.PositiveSmallIntegerField(default=2, validators=[validate_participant_limit])
    passcode_hash = models.CharField(max_length=128, blank=True, default="")
    allow_join_before_host = models.BooleanField(default=False)
    waiting_room_enabled = models.BooleanField(default=True)
    chat_enabled = models.BooleanField(default=True)
    screen_share_enabled = models.BooleanField(default=True)
    mute_on_join = models.BooleanField(default=False)
    # The media platform records; joining a call with recording enabled needs the participant's
    # consent (``RecordingConsent``). ``auto_recording``: the platform starts recording at the start.
    recording_enabled = models.BooleanField(default=False)
    auto_recording = models.BooleanField(default=False)

    # Lifecycle times, set by the server only.
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="First participant joined.")
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    end_reason = models.CharField(max_length=24, choices=EndReason.choices, blank=True, default="")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=models.Q(kind="session"),
                name="video_calls_one_room_per_session",
            ),
            models.CheckConstraint(
                condition=models.Q(auto_recording=False) | models.Q(recording_enabled=True),
                name="video_calls_auto_recording_needs_recording",
            ),
            models.CheckConstraint(
                condition=models.Q(scheduled_start__isnull=True)
                | models.Q(scheduled_end__isnull=True)
                | models.Q(scheduled_end__gt=models.F("scheduled_start")),
                name="video_calls_scheduled_end_after_start",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id} ({self.status})"


class ParticipantRole(models.TextChoices):
    DOCTOR = "doctor", "Doctor"
    PATIENT = "patient", "Patient"
    STAFF = "staff", "Staff"
    GUEST = "guest", "Guest"


class ParticipantStatus(models.TextChoices):
    INVITED = "invited", "Invited"
    DECLINED = "declined", "Declined"
    WAITING = "waiting", "In the waiting room"
    ADMITTED = "admitted", "Admitted"
    JOINED = "joined", "In the call"
    LEFT = "left", "Left"
    REMOVED = "removed", "Removed by the host"


class CallParticipant(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="call_participations")
    role = models.CharField(max_length=16, choices=ParticipantRole.choices)
    status = models.CharField(max_length=16, choices=ParticipantStatus.choices, default=ParticipantStatus.INVITED)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    invited_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    admitted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the participant may reach the media (admitted, or needed no admission); "
        "cleared when the host sends them back to the waiting room.",
    )
    first_joined_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True, help_text="Latest join.")
    left_at = models.DateTimeField(null=True, blank=True, help_text="Latest leave.")
    connected_seconds = models.PositiveIntegerField(default=0, help_text="Sum over every join-leave span.")
    display_name = models.CharField(
        max_length=150, blank=True, default="", help_text="Name asked for at the latest join; blank: the user's own."
    )
    audio_enabled = models.BooleanField(default=True)
    video_enabled = models.BooleanField(default=True)
    screen_sharing = models.BooleanField(default=False)

    class Meta:
        ordering = ["call", "id"]
        constraints = [models.UniqueConstraint(fields=["call", "user"], name="video_calls_one_row_per_participant")]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.call_id} ({self.status})"


class CallEventType(models.TextChoices):
    INITIATED = "initiated", "Initiated"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled"
    JOINED = "joined", "Participant joined"
    LEFT = "left", "Participant left"
    INVITED = "invited", "Participant invited"
    INVITE_DECLINED = "invite_declined", "Invitation declined"
    CHECKED_IN = "checked_in", "Checked in to the waiting room"
    ADMITTED = "admitted", "Admitted from the waiting room"
    SENT_BACK = "sent_back", "Sent back to the waiting room"
    REMOVED = "removed", "Participant removed"
    HOST_CHANGED = "host_changed", "Host changed"
    ENDED = "ended", "Ended"
    FAILED = "failed", "Failed"


class CallEvent(models.Model):
    """One row per lifecycle transition: the call's history, in order."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=24, choices=CallEventType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The participant the event is about, when not the actor.",
    )
    at = models.DateTimeField(db_index=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.type} at {self.at:%Y-%m-%d %H:%M:%S}"


class RecordingConsent(models.Model):
    """A participant agreed to be recorded in one call: who, when, for which call. Given with the
    first join while the call's recording is enabled, kept once per person and call, and never
    changed; the rows are evidence, so neither the call nor the user can be deleted under them."""

    call = models.ForeignKey(Call, on_delete=models.PROTECT, related_name="recording_consents")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="call_recording_consents")
    consented_at = models.DateTimeField()

    class Meta:
        ordering = ["consented_at", "id"]
        constraints = [models.UniqueConstraint(fields=["call", "user"], name="video_calls_one_consent_per_participant")]

    def __str__(self) -> str:
        return f"{self.user_id} consented to recording in {self.call_id} at {self.consented_at:%Y-%m-%d %H:%M:%S}"


class QualityGrade(models.TextChoices):
    EXCELLENT = "excellent", "Excellent"
    GOOD = "good", "Good"
    FAIR = "fair", "Fair"
    POOR = "poor", "Poor"
    BAD = "bad", "Bad"


class CallQualitySample(models.Model):
    """One participant's connection statistics at one moment, as their client measured them."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="quality_samples")
    participant = models.ForeignKey(CallParticipant, on_delete=models.CASCADE, related_name="quality_samples")
    recorded_at = models.DateTimeField(db_index=True)
    rtt_ms = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(60_000)])
    packet_loss_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    jitter_ms = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(60_000)])
    audio_bitrate_kbps = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(100_000)])
    video_bitrate_kbps = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(100_000)])
    resolution_width = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(7680)])
    resolution_height = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(4320)])
    frame_rate = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(240)]
    )
    cpu_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    memory_mb = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(1_048_576)])
    audio_quality = models.CharField(max_length=16, choices=QualityGrade.choices, blank=True, default="")
    video_quality = models.CharField(max_length=16, choices=QualityGrade.choices, blank=True, default="")

    class Meta:
        ordering = ["recorded_at", "id"]
        indexes = [models.Index(fields=["call", "participant", "recorded_at"])]

    def __str__(self) -> str:
        return f"Quality of {self.participant_id} at {self.recorded_at:%H:%M:%S}"

"""Connection-quality samples that participants' clients submit during a call, and the one rule
that turns network figures into a quality assessment (good / fair / poor).

The thresholds live here, once: the history list, the call detail, the quality list and the
``quality.recorded`` event all assess through ``quality_assess``, so a call never reads "good"
in one place and "fair" in another. docs/call-history.md states the thresholds for clients.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.models import User
from core.events import call_group, send_on_commit
from core.exceptions import Conflict, NotFound
from video_calls.models import CallParticipant, CallQualitySample, CallStatus, ParticipantStatus


class QualityAssessment(models.TextChoices):
    GOOD = "good", "Good"
    FAIR = "fair", "Fair"
    POOR = "poor", "Poor"


@dataclass(frozen=True)
class QualityLimits:
    """Upper bounds (inclusive) a figure may reach and still earn an assessment."""

    rtt_ms: float
    packet_loss_percent: float
    jitter_ms: float


# Round-trip time after ITU-T G.114 (150 ms one-way keeps conversation natural, 400 ms is the
# limit of usable); loss and jitter after the figures WebRTC stacks use to flag a degraded link.
QUALITY_THRESHOLDS: dict[str, QualityLimits] = {
    QualityAssessment.GOOD: QualityLimits(rtt_ms=150, packet_loss_percent=1, jitter_ms=30),
    QualityAssessment.FAIR: QualityLimits(rtt_ms=400, packet_loss_percent=5, jitter_ms=75),
}

# Fields of a sample the client measures; the service stores exactly these.
QUALITY_METRIC_FIELDS = (
    "rtt_ms",
    "packet_loss_percent",
    "jitter_ms",
    "audio_bitrate_kbps",
    "video_bitrate_kbps",
    "resolution_width",
    "resolution_height",
    "frame_rate",
    "cpu_percent",
    "memory_mb",
    "audio_quality",
    "video_quality",
)


def quality_assess(
    *,
    rtt_ms: float | Decimal | None,
    packet_loss_percent: float | Decimal | None,
    jitter_ms: float | Decimal | None,
) -> str | None:
    """The assessment a set of network figures earns: the best level whose every limit holds.

    A missing figure constrains nothing; with no figure at all there is nothing to assess and
    the answer is ``None`` (clients show "unknown"), not an optimistic "good".
    """
    figures = {"rtt_ms": rtt_ms, "packet_loss_percent": packet_loss_percent, "jitter_ms": jitter_ms}
    measured = {name: float(value) for name, value in figures.items() if value is not None}
    if not measured:
        return None
    for level, limits in QUALITY_THRESHOLDS.items():
        if all(value <= getattr(limits, name) for name, value in measured.items()):
            return str(level)
    return str(QualityAssessment.POOR)


def _number(value: Any) -> float | int | None:
    """Decimals become floats so the event survives every channel layer's serializer (msgpack)."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def quality_event_payload(*, sample: CallQualitySample, user_id: Any) -> dict[str, Any]:
    """What the other participants hear: network figures, grades and the assessment.

    CPU and memory use stay out: they describe the sender's device, which the others have no
    use for.
    """
    return {
        "call_id": str(sample.call_id),
        "sample_id": sample.pk,
        "user_id": str(user_id),
        "recorded_at": sample.recorded_at.isoformat().replace("+00:00", "Z"),
        "rtt_ms": sample.rtt_ms,
        "packet_loss_percent": _number(sample.packet_loss_percent),
        "jitter_ms": sample.jitter_ms,
        "audio_bitrate_kbps": sample.audio_bitrate_kbps,
        "video_bitrate_kbps": sample.video_bitrate_kbps,
        "resolution_width": sample.resolution_width,
        "resolution_height": sample.resolution_height,
        "frame_rate": _number(sample.frame_rate),
        "audio_quality": sample.audio_quality or None,
        "video_quality": sample.video_quality or None,
        "assessment": quality_assess(
            rtt_ms=sample.rtt_ms, packet_loss_percent=sample.packet_loss_percent, jitter_ms=sample.jitter_ms
        ),
    }


@transaction.atomic
def quality_sample_record(*, call_id: Any, user: User, metrics: dict[str, Any]) -> CallQualitySample:
    """Store one sample from a participant who is in the call right now, and tell the call.

    1. The caller must have a participant row in the call; anyone else (staff included: they
       may read a call's samples, but their client measured nothing in it) gets 404, so the
       answer reveals nothing about calls they are not part of.
    2. The participant must be connected (``joined``) to a call that is ``ongoing``; someone
       who left, was only invited, or waits in the waiting room has no media to measure: 409
       ``NOT_IN_CALL``.
    3. The sample is stamped with the server's clock; the client's idea of time is not trusted.
    4. ``quality.recorded`` goes to the call's group after commit.

    ``metrics`` holds already-validated values (see ``QualitySampleInputSerializer``).
    """
    participant = CallParticipant.objects.select_related("call").filter(call_id=call_id, user=user).first()
    if participant is None:
        raise NotFound("Call not found.", code="CALL_NOT_FOUND")
    call = participant.call
    if participant.status != ParticipantStatus.JOINED or call.status != CallStatus.ONGOING:
        raise Conflict(
            "Only a participant connected to an ongoing call can submit quality metrics.",
            code="NOT_IN_CALL",
            details={"call_status": call.status, "participant_status": participant.status},
        )

    values = {name: metrics[name] for name in QUALITY_METRIC_FIELDS if metrics.get(name) is not None}
    sample = CallQualitySample.objects.create(call=call, participant=participant, recorded_at=timezone.now(), **values)
    send_on_commit([call_group(call.id)], "quality.recorded", quality_event_payload(sample=sample, user_id=user.pk))
    return sample

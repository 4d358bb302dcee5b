"""Periodic sweeps (Celery beat, ``video_calls.tasks``): the server ends what clients left behind.

Each sweep selects its candidates in one query and changes them through the state machine, so
running it twice changes nothing the second time, and a call a user changes at the same moment
is either skipped (row locked, ``skip_locked``) or no longer matches.

* ringing longer than ``CALL_RING_TIMEOUT_SECONDS`` -> ``missed`` (one bulk UPDATE);
* session calls whose join window closed -> ended (``window_closed``), participants told; the
  window (``sessions.join_window``) covers the whole booked duration plus a grace period;
* rooms of cancelled sessions -> closed (``session_cancelled``);
* ongoing with nobody connected for ``CALL_EMPTY_TIMEOUT_SECONDS`` -> ended (``no_participants``);
* calls without a session ongoing longer than ``CALL_MAX_DURATION_MINUTES`` -> ended
  (``max_duration``); a session's call lasts until its window closes.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from sessions.join_window import join_window_closed
from sessions.models import SessionStatus
from video_calls.models import (
    ROOM_STATUSES,
    Call,
    CallEvent,
    CallEventType,
    CallParticipant,
    CallStatus,
    EndReason,
    ParticipantStatus,
)
from video_calls.services.common import call_ref, notify_users
from video_calls.services.lifecycle import call_finish

# One run handles at most this many calls per sweep; the next run picks up the rest.
SWEEP_BATCH = 500


@transaction.atomic
def calls_expire_ringing(*, now: datetime | None = None) -> int:
    """Ringing calls nobody answered in time become ``missed``; both sides are told, and the
    callee's history shows the missed call. Returns how many changed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CALL_RING_TIMEOUT_SECONDS)
    candidates = list(
        Call.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=CallStatus.RINGING, created_at__lte=cutoff)
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if not candidates:
        return 0
    Call.objects.filter(pk__in=candidates, status=CallStatus.RINGING).update(
        status=CallStatus.MISSED, ended_at=now, end_reason=EndReason.RING_TIMEOUT, updated_at=now
    )
    # Exactly the rows this run changed (a concurrent accept may have won one of them).
    missed = list(
        Call.objects.filter(
            pk__in=candidates, status=CallStatus.MISSED, ended_at=now, end_reason=EndReason.RING_TIMEOUT
        )
    )
    missed_ids = [call.pk for call in missed]
    CallParticipant.objects.filter(call_id__in=missed_ids, status=ParticipantStatus.ADMITTED).update(
        status=ParticipantStatus.LEFT, left_at=now
    )
    CallEvent.objects.bulk_create(
        [
            CallEvent(call=call, type=CallEventType.MISSED, at=now, data={"reason": EndReason.RING_TIMEOUT})
            for call in missed
        ]
    )
    user_ids: dict = {}
    for call_id, user_id in CallParticipant.objects.filter(call_id__in=missed_ids).values_list("call_id", "user_id"):
        user_ids.setdefault(call_id, []).append(user_id)
    for call in missed:
        notify_users(user_ids.get(call.pk, []), "call.missed", {**call_ref(call), "reason": EndReason.RING_TIMEOUT})
    return len(missed)


def _finish_each(call_ids: Iterable, *, reason: str, now: datetime) -> int:
    """End each call in its own transaction, skipping any a user is changing right now."""
    ended = 0
    for call_id in call_ids:
        with transaction.atomic():
            call = (
                Call.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("session")
                .filter(pk=call_id, status__in=ROOM_STATUSES)
                .first()
            )
            if call is None:
                continue
            call_finish(call=call, at=now, reason=reason)
            ended += 1
    return ended


def _ids(queryset: QuerySet[Call]) -> list:
    return list(queryset.values_list("pk", flat=True)[:SWEEP_BATCH])


def calls_end_window_closed(*, now: datetime | None = None) -> int:
    """Session calls whose join window has closed (``sessions.join_window``: the later of the
    start plus the allowance and the scheduled end plus the grace) end for everyone, instead of
    trusting clients to leave; their credentials expired with the window anyway. The window's
    rule is the SQL filter itself, so a batch holds only calls that are due."""
    now = now or timezone.now()
    candidates = Call.objects.filter(join_window_closed(now=now, prefix="session__"), status__in=ROOM_STATUSES)
    return _finish_each(_ids(candidates), reason=EndReason.WINDOW_CLOSED, now=now)


def calls_close_cancelled_sessions(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    candidates = Call.objects.filter(status__in=ROOM_STATUSES, session__status=SessionStatus.CANCELLED)
    return _finish_each(_ids(candidates), reason=EndReason.SESSION_CANCELLED, now=now)


def calls_end_empty(*, now: datetime | None = None) -> int:
    """Ongoing calls nobody has been connected to for the timeout: every client dropped."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CALL_EMPTY_TIMEOUT_SECONDS)
    connected = CallParticipant.objects.filter(call=OuterRef("pk"), status=ParticipantStatus.JOINED)
    candidates = (
        Call.objects.filter(status=CallStatus.ONGOING)
        .exclude(Exists(connected))
        .annotate(last_left_at=Max("participants__left_at"))
        .filter(Q(last_left_at__lte=cutoff) | Q(last_left_at__isnull=True, started_at__lte=cutoff))
    )
    return _finish_each(_ids(candidates), reason=EndReason.NO_PARTICIPANTS, now=now)


def calls_end_overlong(*, now: datetime | None = None) -> int:
    """Calls without a session that have gone on too long. A session's call is bounded by its
    join window instead (``calls_end_window_closed``): the window covers the booked duration,
    which a call joined before the start would otherwise outlast the maximum within."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.CALL_MAX_DURATION_MINUTES)
    candidates = Call.objects.filter(status=CallStatus.ONGOING, session__isnull=True, started_at__lte=cutoff)
    return _finish_each(_ids(candidates), reason=EndReason.MAX_DURATION, now=now)


def calls_end_stale(*, now: datetime | None = None) -> dict[str, int]:
    """Every ending sweep, in order from the most specific reason to the most general."""
    now = now or timezone.now()
    return {
        "session_cancelled": calls_close_cancelled_sessions(now=now),
        "window_closed": calls_end_window_closed(now=now),
        "no_participants": calls_end_empty(now=now),
        "max_duration": calls_end_overlong(now=now),
    }

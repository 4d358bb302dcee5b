"""Ending a call and passing its host: the steps every ending path shares (hang-up, host end,
admin action, sweeps), so a call ends the same way whoever ends it."""

from datetime import datetime

from accounts.models import User
from sessions.models import SessionStatus
from sessions.services import session_complete
from video_calls.models import (
    Call,
    CallEventType,
    CallParticipant,
    CallStatus,
    EndReason,
    ParticipantRole,
    ParticipantStatus,
)
from video_calls.services.common import CLINICIAN_ROLES, call_ref, notify_everyone, user_ref
from video_calls.services.state import InvalidCallState, call_transition, participant_transition, record_event

# A waiting room nobody ever connected to did not "complete": these reasons mean nobody came.
_NOBODY_CAME_REASONS = (EndReason.WINDOW_CLOSED, EndReason.NO_PARTICIPANTS, EndReason.MAX_DURATION)
_PRESENT = (ParticipantStatus.JOINED, ParticipantStatus.WAITING, ParticipantStatus.ADMITTED)


def call_finish(*, call: Call, at: datetime, reason: str, actor: User | None = None) -> Call:
    """End a live session, group or ongoing ad-hoc call for everyone. The caller holds the call's
    row lock (``lock_call``), so the participant snapshot below cannot change underneath.

    1. The status moves (conditional update): ``ongoing`` -> ``completed``; ``waiting`` ->
       ``missed`` when nobody came, else ``cancelled``.
    2. ``ended_at`` is the last moment anyone was connected: now if someone still is, otherwise the
       latest leave. ``duration_seconds`` runs from the first join. Clients never send times.
    3. Everyone still present leaves (their connected time is added).
    4. A session call in which both the doctor and the patient connected completes its session with
       their first join and last leave. If one of them never came, the session is left for the
       sessions app's no-show sweep, which must see it.
    5. Everyone is told (``call.ended``).
    """
    participants = list(CallParticipant.objects.filter(call=call).select_related("user"))
    was = call.status
    ended_at = at
    duration = None
    if was == CallStatus.ONGOING:
        to, event_type = CallStatus.COMPLETED, CallEventType.ENDED
        if not any(p.status == ParticipantStatus.JOINED for p in participants):
            ended_at = max((p.left_at for p in participants if p.left_at and p.first_joined_at), default=at)
        started_at = call.started_at or ended_at
        ended_at = max(ended_at, started_at)
        duration = int((ended_at - started_at).total_seconds())
    elif was == CallStatus.WAITING:
        nobody_came = reason in _NOBODY_CAME_REASONS
        to = CallStatus.MISSED if nobody_came else CallStatus.CANCELLED
        event_type = CallEventType.MISSED if nobody_came else CallEventType.CANCELLED
    else:
        raise InvalidCallState(f"The call is {was}; only a waiting or ongoing call can be ended.")

    call_transition(
        call=call,
        expected=[was],
        to=to,
        at=at,
        event_type=event_type,
        actor=actor,
        event_data={"reason": reason},
        ended_at=ended_at,
        duration_seconds=duration,
        end_reason=reason,
        ended_by=actor,
    )
    for participant in participants:
        if participant.status in _PRESENT:
            participant_transition(
                participant=participant,
                expected=[participant.status],
                to=ParticipantStatus.LEFT,
                at=at,
                event_type=None,
                left_at=at,
            )

    if call.session_id and was == CallStatus.ONGOING:
        _complete_session(call=call, participants=participants)

    notify_everyone(
        call,
        "call.ended",
        {
            **call_ref(call),
            "end_reason": reason,
            "ended_at": ended_at.isoformat(),
            "duration_seconds": duration,
            "ended_by": user_ref(actor) if actor else None,
        },
    )
    return call


def _complete_session(*, call: Call, participants: list[CallParticipant]) -> None:
    session = call.session
    session.refresh_from_db()
    parties = [
        p
        for p in participants
        if p.user_id in (session.doctor_id, session.patient_id) and p.role != ParticipantRole.GUEST
    ]
    both_came = len(parties) == 2 and all(p.first_joined_at for p in parties)
    if session.status != SessionStatus.IN_PROGRESS or not both_came:
        return
    # Re-read: the leave times were just written by ``call_finish``.
    parties = list(CallParticipant.objects.filter(pk__in=[p.pk for p in parties]))
    started_at = min(p.first_joined_at for p in parties)
    ended_at = max(p.left_at or call.ended_at for p in parties)
    session_complete(session=session, started_at=started_at, ended_at=max(ended_at, started_at))


def host_pass_if_leaving(*, call: Call, leaving: User, at: datetime) -> User | None:
    """When the host leaves, the clinician who has been present longest becomes host and
    everyone is told. With no clinician present the host stays, and resumes on return."""
    if call.host_id != leaving.pk:
        return None
    successor = (
        CallParticipant.objects.filter(call=call, role__in=CLINICIAN_ROLES, status=ParticipantStatus.JOINED)
        .exclude(user=leaving)
        .select_related("user")
        .order_by("joined_at", "id")
        .first()
    )
    if successor is None:
        return None
    # Conditional on the current host, so two concurrent hand-overs cannot both apply.
    if not Call.objects.filter(pk=call.pk, host=leaving).update(host=successor.user, updated_at=at):
        return None
    call.host = successor.user
    record_event(
        call=call,
        type=CallEventType.HOST_CHANGED,
        at=at,
        actor=leaving,
        subject=successor.user,
        data={"previous_host_id": str(leaving.pk)},
    )
    notify_everyone(
        call,
        "call.host_changed",
        {"call_id": str(call.pk), "host": user_ref(successor.user), "previous_host": user_ref(leaving)},
    )
    return successor.user

"""The one state machine of calls and of their participants.

Every status change of a ``Call`` or a ``CallParticipant`` goes through ``call_transition`` or
``participant_transition``: a conditional ``UPDATE ... WHERE status IN (<expected>)`` whose row count
says whether this request won. Two concurrent accepts, or a hang-up racing an accept, therefore
resolve to exactly one winner; the loser gets 409 ``INVALID_CALL_STATE`` (or
``INVALID_PARTICIPANT_STATE``) and its transaction rolls back. Each won transition writes one
``CallEvent`` row, so a call's history is complete and in order.

Call statuses::

    ad hoc:          ringing -> ongoing (accepted) -> completed
                     ringing -> declined | missed | cancelled | failed
    session / group: waiting -> ongoing (first participant joins) -> completed
                     waiting -> cancelled (session cancelled, host ended before anyone joined)
                     waiting -> missed (join window closed and nobody connected)
                     ongoing -> failed

Participant statuses (admission from the waiting room is part of the same machine, so nobody
reaches media credentials without passing ``admitted`` or a join that needed no admission)::

    invited -> waiting -> admitted -> joined -> left
    invited -> joined (no admission needed)    joined/admitted -> waiting (sent back)
    invited -> declined                        waiting/admitted/joined -> removed (by the host)
    left -> waiting | joined (rejoin)          declined -> invited | waiting | joined
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import F

from accounts.models import User
from core.exceptions import Conflict
from presence.services import presence_refresh_on_commit
from video_calls.models import (
    Call,
    CallEvent,
    CallParticipant,
    CallStatus,
    ParticipantStatus,
)

INVALID_CALL_STATE = "INVALID_CALL_STATE"
INVALID_PARTICIPANT_STATE = "INVALID_PARTICIPANT_STATE"

CALL_TRANSITIONS: dict[str, frozenset[str]] = {
    CallStatus.WAITING: frozenset({CallStatus.ONGOING, CallStatus.CANCELLED, CallStatus.MISSED}),
    CallStatus.RINGING: frozenset(
        {CallStatus.ONGOING, CallStatus.DECLINED, CallStatus.MISSED, CallStatus.CANCELLED, CallStatus.FAILED}
    ),
    CallStatus.ONGOING: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
    CallStatus.COMPLETED: frozenset(),
    CallStatus.DECLINED: frozenset(),
    CallStatus.MISSED: frozenset(),
    CallStatus.CANCELLED: frozenset(),
    CallStatus.FAILED: frozenset(),
}

_P = ParticipantStatus
PARTICIPANT_TRANSITIONS: dict[str, frozenset[str]] = {
    _P.INVITED: frozenset({_P.WAITING, _P.JOINED, _P.DECLINED, _P.LEFT, _P.REMOVED}),
    _P.DECLINED: frozenset({_P.INVITED, _P.WAITING, _P.JOINED}),
    _P.WAITING: frozenset({_P.ADMITTED, _P.JOINED, _P.LEFT, _P.REMOVED}),
    _P.ADMITTED: frozenset({_P.JOINED, _P.WAITING, _P.LEFT, _P.REMOVED}),
    _P.JOINED: frozenset({_P.LEFT, _P.WAITING, _P.REMOVED}),
    _P.LEFT: frozenset({_P.WAITING, _P.JOINED, _P.INVITED}),
    _P.REMOVED: frozenset(),
}


class InvalidCallState(Conflict):
    code = INVALID_CALL_STATE
    default_message = "The call is not in a state that allows this action."


class InvalidParticipantState(Conflict):
    code = INVALID_PARTICIPANT_STATE
    default_message = "The participant is not in a state that allows this action."


def _check_allowed(table: dict[str, frozenset[str]], expected: Iterable[str], to: str) -> list[str]:
    """A transition missing from the table is a programming error, not a client error."""
    expected = list(expected)
    for status in expected:
        if to not in table[status]:
            raise ValueError(f"Transition {status} -> {to} is not in the state machine.")
    return expected


def record_event(
    *,
    call: Call,
    type: str,
    at: datetime,
    actor: User | None = None,
    subject: User | None = None,
    data: dict[str, Any] | None = None,
) -> CallEvent:
    return CallEvent.objects.create(call=call, type=type, at=at, actor=actor, subject=subject, data=data or {})


def call_transition(
    *,
    call: Call,
    expected: Iterable[str],
    to: str,
    at: datetime,
    event_type: str,
    actor: User | None = None,
    subject: User | None = None,
    event_data: dict[str, Any] | None = None,
    **fields: Any,
) -> Call:
    """Move ``call`` from one of ``expected`` to ``to`` in one conditional UPDATE, or raise 409.

    ``fields`` are written in the same UPDATE (lifecycle times, end reason), so the winner's values
    are the ones stored. The in-memory ``call`` is updated to match.
    """
    expected = _check_allowed(CALL_TRANSITIONS, expected, to)
    updated = Call.objects.filter(pk=call.pk, status__in=expected).update(status=to, updated_at=at, **fields)
    if updated != 1:
        current = Call.objects.filter(pk=call.pk).values_list("status", flat=True).first()
        raise InvalidCallState(
            f"The call is {current or 'gone'}; this action needs it to be {' or '.join(expected)}.",
            details={"status": current, "expected": expected},
        )
    call.status = to
    call.updated_at = at
    for name, value in fields.items():
        setattr(call, name, value)
    record_event(call=call, type=event_type, at=at, actor=actor, subject=subject, data=event_data)
    return call


def participant_transition(
    *,
    participant: CallParticipant,
    expected: Iterable[str],
    to: str,
    at: datetime,
    event_type: str | None,
    actor: User | None = None,
    event_data: dict[str, Any] | None = None,
    **fields: Any,
) -> CallParticipant:
    """Move one participant in one conditional UPDATE, or raise 409 ``INVALID_PARTICIPANT_STATE``.

    Leaving the ``joined`` status adds the span since ``joined_at`` to ``connected_seconds``; the
    condition on the status makes sure a span is counted once even if two leaves race.
    """
    expected = _check_allowed(PARTICIPANT_TRANSITIONS, expected, to)
    if (participant.status == _P.JOINED) != (to == _P.JOINED):
        # Being connected to a call is what makes someone "busy" to others.
        presence_refresh_on_commit(user_id=participant.user_id)
    if participant.status == _P.JOINED and to != _P.JOINED and participant.joined_at is not None:
        # The span belongs to the status we read, so the update must require exactly that status.
        expected = [_P.JOINED]
        fields.setdefault("left_at", at)
        span = max(0, int((at - participant.joined_at).total_seconds()))
        fields["connected_seconds"] = F("connected_seconds") + span
    updated = CallParticipant.objects.filter(pk=participant.pk, status__in=expected).update(status=to, **fields)
    if updated != 1:
        current = CallParticipant.objects.filter(pk=participant.pk).values_list("status", flat=True).first()
        raise InvalidParticipantState(
            f"The participant is {current}; this action needs them to be {' or '.join(expected)}.",
            details={"status": current, "expected": expected},
        )
    participant.refresh_from_db()
    if event_type:
        record_event(
            call=participant.call, type=event_type, at=at, actor=actor, subject=participant.user, data=event_data
        )
    return participant

"""Who may reach a call's media, and what they get when they do.

The session rule is the sessions app's ``join_decision``; this module only maps its refusal to
an error and never re-decides it. Guests of a session (interpreter, family member, second
clinician) are not session participants: they may join exactly when the session's doctor may,
so the doctor's decision is asked on their behalf.
"""

from dataclasses import dataclass
from datetime import datetime

from accounts.models import User
from core.exceptions import ApplicationError
from sessions.join_window import NOT_PARTICIPANT, join_decision
from sessions.models import Session
from video_calls.models import Call, CallParticipant
from video_calls.services.credentials import MediaCredentials, media_credentials


class JoinRefused(ApplicationError):
    """A ``join_decision`` refusal; its code is the decision's reason (docs/calls.md)."""

    status = 409
    default_message = "You cannot join this call now."


_MESSAGES = {
    "NOT_PARTICIPANT": "You are not a participant of this session.",
    "SESSION_CANCELLED": "The session was cancelled.",
    "NOT_CONFIRMED": "The session has not been confirmed yet.",
    "PAYMENT_PENDING": "The session has not been paid.",
    "TOO_EARLY": "The session's call is not open yet.",
    "WINDOW_CLOSED": "The session's join window has closed.",
    "SESSION_COMPLETED": "The session has already ended.",
}


def enforce_join_window(*, session: Session, user: User, now: datetime) -> None:
    """Raise the decision's reason as the error code: 403 for ``NOT_PARTICIPANT`` (the caller can
    see the call but is not in the session), 409 for every state or time refusal."""
    on_behalf_of = user if session.is_participant(user) else None
    if on_behalf_of is None and CallParticipant.objects.filter(call__session=session, user=user).exists():
        on_behalf_of = session.doctor
    decision = join_decision(session=session, user=on_behalf_of or user, now=now)
    if decision.can_join:
        return
    error = JoinRefused(
        _MESSAGES.get(decision.reason, "You cannot join this call now."),
        code=decision.reason,
        details={
            "reason": decision.reason,
            "opens_at": decision.opens_at.isoformat(),
            "closes_at": decision.closes_at.isoformat(),
            "minutes_until_start": decision.minutes_until_start,
            "session_status": decision.session_status,
        },
    )
    if decision.reason == NOT_PARTICIPANT:
        error.status = 403
    raise error


@dataclass(frozen=True)
class JoinResult:
    """What a join (or an accept) answers: the call, the caller's participant row, and media
    credentials only when the participant is in the call (never while waiting)."""

    call: Call
    participant: CallParticipant
    credentials: MediaCredentials | None


def joined_result(*, call: Call, participant: CallParticipant, now: datetime) -> JoinResult:
    return JoinResult(
        call=call,
        participant=participant,
        credentials=media_credentials(call=call, user_id=participant.user_id, now=now),
    )

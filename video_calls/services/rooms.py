"""Rooms of sessions and group consultations: get-or-create, join, leave, end, and the host's
room settings.

Joining is where every gate sits, in this order (docs/calls.md):

1. the call is live (``waiting`` or ``ongoing``; a ringing ad-hoc call is accepted, not joined);
2. the caller has a participant row and was not removed;
3. a session's call obeys the session's ``join_decision`` (reason code as the error code);
4. a connected participant reconnecting gets fresh credentials and nothing else changes;
5. the passcode, if the room has one (everyone but the host and staff);
6. admission: a patient or guest who has not been admitted checks in to the waiting room and gets
   no media credentials (``waiting_room_enabled``, or the host is absent and
   ``allow_join_before_host`` is off);
7. capacity: ``ROOM_FULL`` once ``max_participants`` are connected;
8. the participant joins; the first join moves the call to ``ongoing`` and the session to
   ``in_progress`` (``session_record_join``).
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import ApplicationError, Conflict, InvalidInput, NotFound, PermissionDenied
from sessions.models import Session, SessionStatus
from sessions.selectors import session_list_for_user
from sessions.services import session_record_join
from video_calls.models import (
    ROOM_STATUSES,
    Call,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallStatus,
    EndReason,
    ParticipantRole,
    ParticipantStatus,
)
from video_calls.services.access import JoinResult, enforce_join_window, joined_result
from video_calls.services.common import (
    CLINICIAN_ROLES,
    can_host,
    lock_call,
    notify_call_room,
    notify_waiting_queue,
    participant_ref,
    require_host,
    require_participant,
    user_ref,
)
from video_calls.services.lifecycle import call_finish, host_pass_if_leaving
from video_calls.services.state import (
    InvalidCallState,
    InvalidParticipantState,
    call_transition,
    participant_transition,
)
from video_calls.services.waiting_room import participant_admit_from_waiting


class RoomFull(Conflict):
    code = "ROOM_FULL"
    default_message = "The call has reached its maximum number of participants."


class InvalidPasscode(PermissionDenied):
    code = "INVALID_PASSCODE"
    default_message = "The passcode is missing or wrong."


class ParticipantRemoved(PermissionDenied):
    code = "PARTICIPANT_REMOVED"
    default_message = "The host removed you from this call."


def _session_for(*, user: User, session_id: UUID) -> Session:
    """The session, if ``user`` may see it (``sessions.selectors.session_list_for_user``); the
    sessions app's 404 under this app's code."""
    session = session_list_for_user(user=user).filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.", code="SESSION_NOT_FOUND")
    return session


def _skips_waiting_room(session: Session) -> bool:
    skip_ids = {str(doctor_id).lower() for doctor_id in settings.CALL_WAITING_ROOM_SKIP_DOCTOR_IDS}
    return not settings.CALL_WAITING_ROOM_ENABLED or str(session.doctor_id) in skip_ids


def session_room_get(*, user: User, session_id: UUID) -> Call:
    session = _session_for(user=user, session_id=session_id)
    room = Call.objects.filter(kind=CallKind.SESSION, session=session).select_related("session").first()
    if room is None:
        raise NotFound("The session has no room yet.", code="ROOM_NOT_FOUND")
    return room


@transaction.atomic
def session_room_get_or_create(*, user: User, session_id: UUID) -> tuple[Call, bool]:
    """The session's one room, created on first request with the doctor as host and both
    participants on the list. Creating a room grants nothing: joining is what the window gates.
    Two concurrent first requests meet the unique constraint; the loser returns the winner's room."""
    session = _session_for(user=user, session_id=session_id)
    existing = Call.objects.filter(kind=CallKind.SESSION, session=session).first()
    if existing is not None:
        return existing, False
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session was cancelled.", code="SESSION_CANCELLED")
    now = timezone.now()
    try:
        with transaction.atomic():
            room = Call.objects.create(
                kind=CallKind.SESSION,
                media=CallMedia.VIDEO,
                session=session,
                status=CallStatus.WAITING,
                initiated_by=user,
                host=session.doctor,
                max_participants=2,
                waiting_room_enabled=not _skips_waiting_room(session),
            )
    except IntegrityError:
        return Call.objects.get(kind=CallKind.SESSION, session=session), False
    CallParticipant.objects.bulk_create(
        [
            CallParticipant(call=room, user=session.doctor, role=ParticipantRole.DOCTOR, invited_at=now),
            CallParticipant(call=room, user=session.patient, role=ParticipantRole.PATIENT, invited_at=now),
        ]
    )
    return room, True


def _needs_admission(*, call: Call, participant: CallParticipant) -> bool:
    if participant.role in CLINICIAN_ROLES or participant.user_id == call.host_id:
        return False
    if participant.admitted_at is not None:
        return False
    if call.waiting_room_enabled:
        return True
    return not call.allow_join_before_host and not _host_present(call)


def _host_present(call: Call) -> bool:
    return CallParticipant.objects.filter(call=call, user_id=call.host_id, status=ParticipantStatus.JOINED).exists()


def _check_in(*, call: Call, participant: CallParticipant, now: datetime) -> JoinResult:
    if participant.status != ParticipantStatus.WAITING:
        participant_transition(
            participant=participant,
            expected=[participant.status],
            to=ParticipantStatus.WAITING,
            at=now,
            event_type=CallEventType.CHECKED_IN,
            actor=participant.user,
            waiting_since=now,
        )
        notify_waiting_queue(call, "checked_in", participant.user, waiting_since=now.isoformat())
    return JoinResult(call=call, participant=participant, credentials=None)


def _admit_all_waiting(*, call: Call, by: User, now: datetime) -> None:
    """With the waiting room off, patients who only waited for the host go in when the host
    arrives."""
    waiting = CallParticipant.objects.filter(call=call, status=ParticipantStatus.WAITING).select_related("user", "call")
    for participant in waiting:
        participant_admit_from_waiting(call=call, participant=participant, by=by, now=now)


@transaction.atomic
def call_join(*, call: Call, user: User, passcode: str = "") -> JoinResult:
    """Enter a session room or group consultation (or reconnect to an ongoing ad-hoc call); see
    the module docstring for the order of the gates."""
    now = timezone.now()
    call = lock_call(call)
    if call.status not in ROOM_STATUSES or (call.kind == CallKind.AD_HOC and call.status != CallStatus.ONGOING):
        raise InvalidCallState(f"The call is {call.status}; it cannot be joined.", details={"status": call.status})
    participant = require_participant(call=call, user=user)
    if participant.status == ParticipantStatus.REMOVED:
        raise ParticipantRemoved()
    if call.session_id:
        enforce_join_window(session=call.session, user=user, now=now)
    if participant.status == ParticipantStatus.JOINED:
        return joined_result(call=call, participant=participant, now=now)
    if call.kind == CallKind.AD_HOC and participant.admitted_at is None:
        raise InvalidParticipantState("Answer the call to join it.")
    needs_passcode = bool(call.passcode_hash) and not can_host(call=call, user=user)
    if needs_passcode and not (passcode and check_password(passcode, call.passcode_hash)):
        raise InvalidPasscode()
    if _needs_admission(call=call, participant=participant):
        return _check_in(call=call, participant=participant, now=now)
    connected = CallParticipant.objects.filter(call=call, status=ParticipantStatus.JOINED).count()
    if connected >= call.max_participants:
        raise RoomFull(details={"max_participants": call.max_participants})

    first_join = call.status == CallStatus.WAITING
    if first_join:
        call_transition(
            call=call,
            expected=[CallStatus.WAITING],
            to=CallStatus.ONGOING,
            at=now,
            event_type=CallEventType.JOINED,
            actor=user,
            event_data={"first": True},
            started_at=now,
        )
    participant_transition(
        participant=participant,
        expected=[participant.status],
        to=ParticipantStatus.JOINED,
        at=now,
        event_type=None if first_join else CallEventType.JOINED,
        actor=user,
        joined_at=now,
        first_joined_at=participant.first_joined_at or now,
        admitted_at=participant.admitted_at or now,
        audio_enabled=not call.mute_on_join,
        video_enabled=call.media == CallMedia.VIDEO,
        screen_sharing=False,
    )
    if call.session_id and call.session.is_participant(user):
        session_record_join(session=call.session, user=user, at=now)
    if user.pk == call.host_id and not call.waiting_room_enabled:
        _admit_all_waiting(call=call, by=user, now=now)
    notify_call_room(
        call, "call.participant_joined", {"call_id": str(call.pk), "participant": participant_ref(participant)}
    )
    return joined_result(call=call, participant=participant, now=now)


@transaction.atomic
def call_leave(*, call: Call, user: User) -> Call:
    """Leave the call (or the waiting room). Leaving a 1:1 ad-hoc call ends it; in a room, the
    host's leaving passes the host to the next clinician present."""
    now = timezone.now()
    call = lock_call(call)
    participant = require_participant(call=call, user=user)
    present = (ParticipantStatus.JOINED, ParticipantStatus.WAITING, ParticipantStatus.ADMITTED)
    if participant.status not in present:
        raise InvalidParticipantState("You are not in this call.", details={"status": participant.status})
    if call.kind == CallKind.AD_HOC and call.status == CallStatus.ONGOING:
        return call_finish(call=call, at=now, reason=EndReason.HANGUP, actor=user)
    was_connected = participant.status == ParticipantStatus.JOINED
    participant_transition(
        participant=participant,
        expected=[participant.status],
        to=ParticipantStatus.LEFT,
        at=now,
        event_type=CallEventType.LEFT,
        actor=user,
        left_at=now,
    )
    if was_connected:
        notify_call_room(
            call,
            "call.participant_left",
            {"call_id": str(call.pk), "user": user_ref(user), "reason": "left"},
        )
        host_pass_if_leaving(call=call, leaving=user, at=now)
    else:
        notify_waiting_queue(call, "left", user)
    return call


def calls_leave_after_grace(*, user_id, call_ids: Iterable) -> None:
    """A connection of ``user_id`` in these calls is gone — its socket closed, or the presence
    sweep dropped it after its heartbeats stopped. Once the current transaction commits, each
    call gets ``call_leave_unless_reconnected`` after ``REALTIME_RECONNECT_GRACE_SECONDS``: the
    user leaves it unless they are back in it by then (a reload must not end a call). Robust:
    one that cannot be scheduled (the broker is down) is logged and the others still are."""
    from video_calls.tasks import call_leave_unless_reconnected

    def schedule(call_id: str) -> Callable[[], None]:
        def leave_after_grace() -> None:  # named: a robust hook's failure is logged by its name
            call_leave_unless_reconnected.apply_async(
                args=[call_id, str(user_id)], countdown=settings.REALTIME_RECONNECT_GRACE_SECONDS
            )

        return leave_after_grace

    for call_id in sorted({str(call_id) for call_id in call_ids if call_id is not None}):
        transaction.on_commit(schedule(call_id), robust=True)


def call_leave_unless_reconnected(*, call_id, user_id) -> bool:
    """Take a user whose socket dropped out of the call, unless they have a connection in the
    call again (a reload, a network switch) or already left. Returns whether they were taken out."""
    from presence.models import PresenceConnection

    if PresenceConnection.objects.filter(call_id=call_id, user_id=user_id).exists():
        return False
    participant = (
        CallParticipant.objects.filter(call_id=call_id, user_id=user_id, status=ParticipantStatus.JOINED)
        .select_related("call", "user")
        .first()
    )
    if participant is None:
        return False
    try:
        call_leave(call=participant.call, user=participant.user)
    except ApplicationError:  # the call ended or they left in the meantime
        return False
    return True


@transaction.atomic
def call_end(*, call: Call, user: User) -> Call:
    """End the call for everyone: the host (or staff) of a room; either side of an ad-hoc call."""
    now = timezone.now()
    call = lock_call(call)
    if call.kind == CallKind.AD_HOC:
        require_participant(call=call, user=user)
        if call.status == CallStatus.RINGING:
            raise InvalidCallState("The call is ringing: cancel or decline it instead.")
        return call_finish(call=call, at=now, reason=EndReason.HANGUP, actor=user)
    require_host(call=call, user=user)
    reason = EndReason.HOST_ENDED if user.pk == call.host_id else EndReason.STAFF_ENDED
    return call_finish(call=call, at=now, reason=reason, actor=user)


_SETTING_FIELDS = (
    "allow_join_before_host",
    "waiting_room_enabled",
    "chat_enabled",
    "screen_share_enabled",
    "mute_on_join",
)


@transaction.atomic
def call_settings_update(
    *,
    call: Call,
    user: User,
    max_participants: int | None = None,
    passcode: str | None = None,
    **flags: bool,
) -> Call:
    """The host changes the room's settings. A passcode is stored as a hash only; an empty one
    removes it. The limit cannot drop below who is connected or rise above CALL_MAX_PARTICIPANTS."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.status not in ROOM_STATUSES or call.kind == CallKind.AD_HOC:
        raise InvalidCallState("Only a live room's settings can change.", details={"status": call.status})
    changes: dict = {name: bool(value) for name, value in flags.items() if name in _SETTING_FIELDS}
    if max_participants is not None:
        connected = CallParticipant.objects.filter(call=call, status=ParticipantStatus.JOINED).count()
        lowest = max(2, connected)
        if not lowest <= max_participants <= settings.CALL_MAX_PARTICIPANTS:
            raise InvalidInput(
                "The participant limit is out of range.",
                details={"max_participants": [f"Between {lowest} and {settings.CALL_MAX_PARTICIPANTS}."]},
            )
        changes["max_participants"] = max_participants
    if passcode is not None:
        changes["passcode_hash"] = make_password(passcode) if passcode else ""
    if changes:
        Call.objects.filter(pk=call.pk).update(updated_at=now, **changes)
        call.refresh_from_db()
        notify_call_room(call, "call.settings_updated", {"call_id": str(call.pk), **_public_settings(call)})
    return call


def _public_settings(call: Call) -> dict:
    return {
        "max_participants": call.max_participants,
        "has_passcode": bool(call.passcode_hash),
        **{name: getattr(call, name) for name in _SETTING_FIELDS},
    }

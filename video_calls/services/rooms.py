"""Rooms of sessions and group consultations: get-or-create, join, leave, end, and the host's
room settings.

Joining is where every gate sits, in this order (docs/calls.md):

1. the call is live (``waiting`` or ``ongoing``; a ringing ad-hoc call is accepted, not joined);
2. the caller has a participant row and was not removed;
3. a session's call obeys the session's ``join_decision`` (reason code as the error code);
4. a connected participant reconnecting gets fresh credentials and nothing else changes;
5. the passcode, if the room has one (everyone but the host and staff);
6. recording consent, if the call's recording is enabled: given once per person and call, kept as
   a ``RecordingConsent``; without it ``RECORDING_CONSENT_REQUIRED``;
7. admission: a patient or guest who has not been admitted checks in to the waiting room and gets
   no media credentials (``waiting_room_enabled``, or the host is absent and
   ``allow_join_before_host`` is off);
8. capacity: ``ROOM_FULL`` once ``max_participants`` are connected;
9. the participant joins with the media state and display name the join asked for, or their
   meeting defaults (``media.join_media_state``); the first join moves the call to ``ongoing`` and
   the session to ``in_progress`` (``session_record_join``).

The host's changes to a room (``call_settings_update``) are limited once it started: see there.
"""

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import ApplicationError, Conflict, NotFound, PermissionDenied
from sessions.models import Session, SessionStatus
from sessions.selectors import session_list_for_user
from sessions.services import session_record_join
from video_calls.models import (
    CALL_SETTING_FLAGS,
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
    RecordingConsent,
    participant_cap,
)
from video_calls.services.access import JoinResult, enforce_join_window, joined_result
from video_calls.services.common import (
    CLINICIAN_ROLES,
    NotParticipant,
    can_host,
    invalid_field,
    lock_call,
    notify_call_room,
    notify_everyone,
    notify_waiting_queue,
    participant_of,
    participant_ref,
    require_host,
    require_participant,
    user_ref,
)
from video_calls.services.lifecycle import call_finish, host_pass_if_leaving
from video_calls.services.media import join_media_state
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


class RecordingConsentRequired(Conflict):
    """409, not 400: the request is well formed, but this call's current setting (recording
    enabled) needs more from the participant; the client shows the notice and joins again with
    ``recording_consent: true``."""

    code = "RECORDING_CONSENT_REQUIRED"
    default_message = "This call is recorded: join with recording_consent true to agree to being recorded."


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


def _check_in(*, call: Call, participant: CallParticipant, now: datetime, display_name: str) -> JoinResult:
    """The display name is kept from the check-in, so whoever admits sees the name asked for."""
    if participant.status != ParticipantStatus.WAITING:
        participant_transition(
            participant=participant,
            expected=[participant.status],
            to=ParticipantStatus.WAITING,
            at=now,
            event_type=CallEventType.CHECKED_IN,
            actor=participant.user,
            waiting_since=now,
            display_name=display_name,
        )
        notify_waiting_queue(call, "checked_in", participant.user, waiting_since=now.isoformat())
    return JoinResult(call=call, participant=participant, credentials=None)


def _admit_all_waiting(*, call: Call, by: User, now: datetime) -> None:
    """With the waiting room off, patients who only waited for the host go in when the host
    arrives."""
    waiting = CallParticipant.objects.filter(call=call, status=ParticipantStatus.WAITING).select_related("user", "call")
    for participant in waiting:
        participant_admit_from_waiting(call=call, participant=participant, by=by, now=now)


def _require_recording_consent(*, call: Call, user: User, consent: bool, now: datetime) -> None:
    """A call with recording enabled is joined only with the participant's consent, asked once
    per person and call: the first consenting join stores who agreed and when."""
    if not call.recording_enabled or RecordingConsent.objects.filter(call=call, user=user).exists():
        return
    if not consent:
        raise RecordingConsentRequired(
            details={"recording_enabled": call.recording_enabled, "auto_recording": call.auto_recording}
        )
    RecordingConsent.objects.create(call=call, user=user, consented_at=now)


@transaction.atomic
def call_join(
    *,
    call: Call,
    user: User,
    passcode: str = "",
    display_name: str = "",
    audio_enabled: bool | None = None,
    video_enabled: bool | None = None,
    recording_consent: bool = False,
    locked: bool = False,
) -> JoinResult:
    """Enter a session room or group consultation (or reconnect to an ongoing ad-hoc call); see
    the module docstring for the order of the gates. ``display_name``, ``audio_enabled`` and
    ``video_enabled`` are what this join starts with; left out, the user's own name and meeting
    defaults apply. A reconnect (already connected) changes nothing. ``locked``: the caller
    read ``call`` with its row lock, in the transaction this runs in
    (``video_calls.selectors.calls.call_get_for_user`` with ``lock=True``), so it is not read again."""
    now = timezone.now()
    if not locked:
        call = lock_call(call)
    if call.status not in ROOM_STATUSES or (call.kind == CallKind.AD_HOC and call.status != CallStatus.ONGOING):
        raise InvalidCallState(f"The call is {call.status}; it cannot be joined.", details={"status": call.status})
    participant = require_participant(call=call, user=user)
    if participant.status == ParticipantStatus.REMOVED:
        raise ParticipantRemoved()
    media_state = join_media_state(call=call, user=user, audio_enabled=audio_enabled, video_enabled=video_enabled)
    if call.session_id:
        enforce_join_window(session=call.session, user=user, now=now)
    if participant.status == ParticipantStatus.JOINED:
        return joined_result(call=call, participant=participant, now=now)
    if call.kind == CallKind.AD_HOC and participant.admitted_at is None:
        raise InvalidParticipantState("Answer the call to join it.")
    needs_passcode = bool(call.passcode_hash) and not can_host(call=call, user=user)
    if needs_passcode and not (passcode and check_password(passcode, call.passcode_hash)):
        raise InvalidPasscode()
    _require_recording_consent(call=call, user=user, consent=recording_consent, now=now)
    if _needs_admission(call=call, participant=participant):
        return _check_in(call=call, participant=participant, now=now, display_name=display_name)
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
        display_name=display_name,
        **media_state,
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
    """End the call for everyone: the host (or staff) of a room; either side of an ad-hoc call,
    or staff (who supervise every call, as the admin's "end" action does): ``staff_ended``."""
    now = timezone.now()
    call = lock_call(call)
    if call.kind == CallKind.AD_HOC:
        on_the_call = participant_of(call=call, user=user) is not None
        if not (on_the_call or user.is_clinic_staff):
            raise NotParticipant()
        if call.status == CallStatus.RINGING:
            raise InvalidCallState(
                "The call is ringing: cancel or decline it instead.", details={"status": call.status}
            )
        reason = EndReason.HANGUP if on_the_call else EndReason.STAFF_ENDED
        return call_finish(call=call, at=now, reason=reason, actor=user)
    require_host(call=call, user=user)
    reason = EndReason.HOST_ENDED if user.pk == call.host_id else EndReason.STAFF_ENDED
    return call_finish(call=call, at=now, reason=reason, actor=user)


_DETAIL_FIELDS = ("title", "description", "scheduled_start", "scheduled_end")
# Once the call started, these changes are refused: the start has happened; people connected
# consented to a call without recording; automatic recording only acts at the start.
_FIXED_ONCE_STARTED = ("scheduled_start", "auto_recording")


def check_schedule(*, start: datetime | None, end: datetime | None, changed: Iterable[str], now: datetime) -> None:
    """A planned time that is being set is not in the past, the end follows the start, and the
    span fits ``CALL_MAX_DURATION_MINUTES`` (a call without a session ends after it anyway)."""
    for name, value in (("scheduled_start", start), ("scheduled_end", end)):
        if name in changed and value is not None and value <= now:
            raise invalid_field(name, "This time has passed.", "in_past")
    if start is None or end is None:
        return
    if end <= start:
        raise invalid_field("scheduled_end", "The end must come after the start.", "before_start")
    if end - start > timedelta(minutes=settings.CALL_MAX_DURATION_MINUTES):
        raise invalid_field(
            "scheduled_end", f"At most {settings.CALL_MAX_DURATION_MINUTES} minutes after the start.", "too_long"
        )


def check_recording(*, recording_enabled: bool, auto_recording: bool) -> None:
    if auto_recording and not recording_enabled:
        raise invalid_field("auto_recording", "Automatic recording needs recording_enabled.", "needs_recording")


_KEEP: Any = object()  # a nullable field left out of the request (``None`` clears it)


@transaction.atomic
def call_settings_update(
    *,
    call: Call,
    user: User,
    title: str | None = None,
    description: str | None = None,
    scheduled_start: datetime | None = _KEEP,
    scheduled_end: datetime | None = _KEEP,
    max_participants: int | None = None,
    passcode: str | None = None,
    **flags: bool,
) -> Call:
    """The host (or staff) changes a room's details and settings; only what is given changes,
    and a value equal to the stored one is no change.

    1. Ad-hoc calls and calls that ended have none to change (``INVALID_CALL_STATE``).
    2. A session room's times are its session's: setting them is a ``session_schedule`` field error.
    3. Once the call is ``ongoing``: the start cannot move, recording cannot be turned on (the
       people connected did not consent to it) and ``auto_recording`` cannot change —
       ``INVALID_CALL_STATE`` with ``details.fields``. Title, description, the end, the limit,
       the passcode and the other flags still change, and recording can be turned off.
    4. Times and limits are checked (``check_schedule``; the limit lies between who is connected,
       at least 2, and ``CALL_MAX_PARTICIPANTS``). Turning recording off turns automatic
       recording off too. A passcode is stored as a hash only; an empty one removes it.
    5. Everyone on the call is told (``call.settings_updated``, with the names of what changed).
    """
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.status not in ROOM_STATUSES or call.kind == CallKind.AD_HOC:
        raise InvalidCallState("Only a live room's settings can change.", details={"status": call.status})
    requested: dict[str, Any] = {name: bool(value) for name, value in flags.items() if name in CALL_SETTING_FLAGS}
    given = (("title", title), ("description", description), ("max_participants", max_participants))
    requested.update({name: value for name, value in given if value is not None})
    times = (("scheduled_start", scheduled_start), ("scheduled_end", scheduled_end))
    requested.update({name: value for name, value in times if value is not _KEEP})
    changes = {name: value for name, value in requested.items() if getattr(call, name) != value}

    if call.kind == CallKind.SESSION:
        for name in ("scheduled_start", "scheduled_end"):
            if name in changes:
                raise invalid_field(name, "A session room's times are its session's.", "session_schedule")
    if call.status == CallStatus.ONGOING:
        refused = [name for name in _FIXED_ONCE_STARTED if name in changes]
        if changes.get("recording_enabled") is True:
            refused.append("recording_enabled")
        if refused:
            raise InvalidCallState(
                "The call has started; these cannot change any more.",
                details={"status": call.status, "fields": sorted(refused)},
            )
    check_schedule(
        start=changes.get("scheduled_start", call.scheduled_start),
        end=changes.get("scheduled_end", call.scheduled_end),
        changed=changes,
        now=now,
    )
    if changes.get("recording_enabled") is False and call.auto_recording and "auto_recording" not in requested:
        changes["auto_recording"] = False
    check_recording(
        recording_enabled=changes.get("recording_enabled", call.recording_enabled),
        auto_recording=changes.get("auto_recording", call.auto_recording),
    )
    if "max_participants" in changes:
        connected = CallParticipant.objects.filter(call=call, status=ParticipantStatus.JOINED).count()
        lowest = max(2, connected)
        if not lowest <= max_participants <= participant_cap():
            raise invalid_field(
                "max_participants",
                f"Between {lowest} (who is connected) and {participant_cap()}.",
                "out_of_range",
            )
    if passcode or (passcode == "" and call.passcode_hash):
        changes["passcode_hash"] = make_password(passcode) if passcode else ""
    if changes:
        Call.objects.filter(pk=call.pk).update(updated_at=now, **changes)
        call.refresh_from_db()
        changed = sorted("passcode" if name == "passcode_hash" else name for name in changes)
        notify_everyone(call, "call.settings_updated", {**public_settings(call), "changed": changed})
    return call


def public_settings(call: Call) -> dict[str, Any]:
    """What ``call.settings_updated`` carries: the settings and planned times, never the title,
    the description or the passcode (free text and secrets stay out of the channel layer;
    clients read the call over REST)."""
    return {
        "call_id": str(call.pk),
        "scheduled_start": call.scheduled_start.isoformat() if call.scheduled_start else None,
        "scheduled_end": call.scheduled_end.isoformat() if call.scheduled_end else None,
        "max_participants": call.max_participants,
        "has_passcode": bool(call.passcode_hash),
        **{name: getattr(call, name) for name in CALL_SETTING_FLAGS},
    }

"""Ad-hoc calls (reference 000): a caller rings a callee, who accepts or declines (``declined`` or
``busy``); the caller may cancel while it rings; either side hangs up once it is ongoing. An
unanswered call becomes ``missed`` (``video_calls.services.sweeps``).

Who may ring whom follows the care relationship (``sessions.selectors.care_relation_ids``: a
doctor and a patient who share a session that was not cancelled), clinicians (doctors, staff)
among themselves, and staff anyone. Anybody else is "not found". A call linked to a session needs
a session the caller may see (``sessions.selectors.session_list_for_user``).
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from core.exceptions import Conflict, NotFound, PermissionDenied
from sessions.models import Session
from sessions.selectors import session_list_for_user
from sessions.services import session_record_join
from video_calls.models import (
    Call,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallStatus,
    EndReason,
    ParticipantStatus,
)
from video_calls.services.access import JoinResult, enforce_join_window, joined_result
from video_calls.services.common import (
    call_ref,
    invalid_field,
    lock_call,
    notify_users,
    participant_role_for,
    require_participant,
    user_ref,
    users_reachable_by,
)
from video_calls.services.credentials import IceConfiguration, call_ice_configuration
from video_calls.services.lifecycle import call_finish
from video_calls.services.state import (
    InvalidCallState,
    call_transition,
    participant_transition,
    record_event,
)

DECLINE_REASONS = (EndReason.DECLINED, EndReason.BUSY)


class NotCallee(PermissionDenied):
    code = "NOT_CALLEE"
    default_message = "Only the person being called can answer this call."


class NotCaller(PermissionDenied):
    code = "NOT_CALLER"
    default_message = "Only the caller can cancel this call."


def _callable_user(*, caller: User, callee_id: UUID) -> User:
    """The callee, if the caller may ring them; otherwise 404 so no account is revealed."""
    callee = users_reachable_by(user=caller).filter(pk=callee_id).first()
    if callee is None:
        raise NotFound("No such user.", code="USER_NOT_FOUND")
    return callee


def _session_for_call(*, caller: User, callee: User, session_id: UUID) -> Session:
    session = session_list_for_user(user=caller).filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.", code="SESSION_NOT_FOUND")
    if not session.is_participant(callee):
        raise invalid_field(
            "callee_id",
            "The callee is not the other participant of this session.",
            "not_in_session",
            error_code="CALLEE_NOT_IN_SESSION",
        )
    return session


def _is_busy(user: User) -> bool:
    """In another call: connected to an ongoing one, or in one that is ringing."""
    return CallParticipant.objects.filter(
        Q(user=user, status=ParticipantStatus.JOINED, call__status=CallStatus.ONGOING)
        | Q(user=user, call__status=CallStatus.RINGING)
    ).exists()


@transaction.atomic
def call_initiate(
    *, caller: User, callee_id: UUID, media: str = CallMedia.VIDEO, session_id: UUID | None = None
) -> Call:
    """Ring ``callee``. A call linked to a session obeys the session's join window."""
    now = timezone.now()
    if callee_id == caller.pk:
        raise invalid_field("callee_id", "You cannot call yourself.", "self", error_code="CANNOT_CALL_SELF")
    callee = _callable_user(caller=caller, callee_id=callee_id)
    session = None
    if session_id is not None:
        session = _session_for_call(caller=caller, callee=callee, session_id=session_id)
        enforce_join_window(session=session, user=caller, now=now)
    if _is_busy(callee):
        raise Conflict("The person you are calling is in another call.", code="CALLEE_BUSY")
    if _is_busy(caller):
        raise Conflict("You are already in a call.", code="CALLER_BUSY")

    call = Call.objects.create(
        kind=CallKind.AD_HOC,
        media=media,
        session=session,
        status=CallStatus.RINGING,
        initiated_by=caller,
        host=caller,
        max_participants=2,
        allow_join_before_host=True,
        waiting_room_enabled=False,
    )
    CallParticipant.objects.bulk_create(
        [
            CallParticipant(
                call=call,
                user=caller,
                role=participant_role_for(caller),
                status=ParticipantStatus.ADMITTED,
                invited_at=now,
                admitted_at=now,
            ),
            CallParticipant(
                call=call,
                user=callee,
                role=participant_role_for(callee),
                status=ParticipantStatus.INVITED,
                invited_by=caller,
                invited_at=now,
            ),
        ]
    )
    record_event(call=call, type=CallEventType.INITIATED, at=now, actor=caller, subject=callee, data={"media": media})
    notify_users(
        [caller.pk, callee.pk],
        "call.initiated",
        {**call_ref(call), "caller": user_ref(caller), "callee": user_ref(callee), "created_at": now.isoformat()},
    )
    return call


@dataclass(frozen=True)
class PlacedCall:
    """What the caller gets back: the ringing call and their own ICE servers, so their client
    gathers candidates while it rings, as the callee's accept gets theirs."""

    call: Call
    ice: IceConfiguration


def call_place(
    *, caller: User, callee_id: UUID, media: str = CallMedia.VIDEO, session_id: UUID | None = None
) -> PlacedCall:
    """``call_initiate`` with the caller's ICE servers (``POST calls/initiate/`` and the socket's
    ``call.initiate``). Their expiry is capped by the session's window like every credential."""
    call = call_initiate(caller=caller, callee_id=callee_id, media=media, session_id=session_id)
    return PlacedCall(call=call, ice=call_ice_configuration(call=call, user_id=caller.pk))


def _callee_participant(*, call: Call, user: User) -> CallParticipant:
    participant = require_participant(call=call, user=user)
    if call.kind != CallKind.AD_HOC:
        raise InvalidCallState("Only ad-hoc calls ring; join this call instead.")
    if user.pk == call.initiated_by_id:
        raise NotCallee()
    return participant


@transaction.atomic
def call_accept(*, call: Call, user: User) -> JoinResult:
    """The callee answers. The status change is the first write, so of concurrent accepts (or an
    accept racing a cancel, a decline or the ring timeout) exactly one wins; the others get 409."""
    now = timezone.now()
    callee = _callee_participant(call=call, user=user)
    if call.session_id:
        enforce_join_window(session=call.session, user=user, now=now)
    call_transition(
        call=call,
        expected=[CallStatus.RINGING],
        to=CallStatus.ONGOING,
        at=now,
        event_type=CallEventType.ACCEPTED,
        actor=user,
        accepted_at=now,
        started_at=now,
    )
    video = call.media == CallMedia.VIDEO
    for participant in CallParticipant.objects.filter(call=call).select_related("user", "call"):
        participant_transition(
            participant=participant,
            expected=[ParticipantStatus.INVITED, ParticipantStatus.ADMITTED],
            to=ParticipantStatus.JOINED,
            at=now,
            event_type=CallEventType.JOINED,
            actor=participant.user,
            joined_at=now,
            first_joined_at=now,
            admitted_at=now,
            audio_enabled=True,
            video_enabled=video,
            screen_sharing=False,
        )
        if call.session_id and call.session.is_participant(participant.user):
            session_record_join(session=call.session, user=participant.user, at=now)
    callee.refresh_from_db()
    notify_users(
        [call.initiated_by_id, user.pk],
        "call.accepted",
        {**call_ref(call), "accepted_by": user_ref(user), "accepted_at": now.isoformat()},
    )
    return joined_result(call=call, participant=callee, now=now)


@transaction.atomic
def call_decline(*, call: Call, user: User, reason: str = EndReason.DECLINED) -> Call:
    """The callee refuses (``declined``) or signals they are busy (``busy``)."""
    if reason not in DECLINE_REASONS:
        raise invalid_field("reason", f"Unknown decline reason: one of {', '.join(DECLINE_REASONS)}.", "invalid_choice")
    now = timezone.now()
    callee = _callee_participant(call=call, user=user)
    call_transition(
        call=call,
        expected=[CallStatus.RINGING],
        to=CallStatus.DECLINED,
        at=now,
        event_type=CallEventType.DECLINED,
        actor=user,
        event_data={"reason": reason},
        ended_at=now,
        end_reason=reason,
        ended_by=user,
    )
    participant_transition(
        participant=callee, expected=[ParticipantStatus.INVITED], to=ParticipantStatus.DECLINED, at=now, event_type=None
    )
    CallParticipant.objects.filter(call=call, status=ParticipantStatus.ADMITTED).update(
        status=ParticipantStatus.LEFT, left_at=now
    )
    notify_users(
        [call.initiated_by_id, user.pk],
        "call.declined",
        {**call_ref(call), "reason": reason, "declined_by": user_ref(user)},
    )
    return call


@transaction.atomic
def call_cancel(*, call: Call, user: User) -> Call:
    """The caller stops ringing before anyone answered."""
    now = timezone.now()
    require_participant(call=call, user=user)
    if call.kind != CallKind.AD_HOC:
        raise InvalidCallState("Only a ringing ad-hoc call can be cancelled; end this call instead.")
    if user.pk != call.initiated_by_id:
        raise NotCaller()
    call_transition(
        call=call,
        expected=[CallStatus.RINGING],
        to=CallStatus.CANCELLED,
        at=now,
        event_type=CallEventType.CANCELLED,
        actor=user,
        ended_at=now,
        end_reason=EndReason.CALLER_CANCELLED,
        ended_by=user,
    )
    CallParticipant.objects.filter(call=call, status=ParticipantStatus.ADMITTED).update(
        status=ParticipantStatus.LEFT, left_at=now
    )
    notify_users(
        CallParticipant.objects.filter(call=call).values_list("user_id", flat=True),
        "call.cancelled",
        {**call_ref(call), "cancelled_by": user_ref(user)},
    )
    return call


@transaction.atomic
def call_hangup(*, call: Call, user: User) -> Call:
    """Either side ends an ad-hoc call. While it rings, the caller's hang-up is a cancel and the
    callee's a decline; once ongoing it completes the call."""
    require_participant(call=call, user=user)
    if call.kind != CallKind.AD_HOC:
        raise InvalidCallState("Hang-up is for ad-hoc calls; leave or end this call instead.")
    if call.status == CallStatus.RINGING:
        if user.pk == call.initiated_by_id:
            return call_cancel(call=call, user=user)
        return call_decline(call=call, user=user, reason=EndReason.DECLINED)
    call = lock_call(call)
    return call_finish(call=call, at=timezone.now(), reason=EndReason.HANGUP, actor=user)

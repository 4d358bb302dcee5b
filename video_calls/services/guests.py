"""Guests and group calls (references 002 and 004): the host invites people into a session's room
(an interpreter, a family member, a second clinician), doctors and staff set up group
consultations with several invitees, invitees decline (accepting is joining), and the host
removes a participant.

Each invitation to a session room raises the room's limit by one (a 1:1 room admits its two
participants), never beyond ``CALL_MAX_PARTICIPANTS``.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.exceptions import Conflict, NotFound
from video_calls.models import (
    ROOM_STATUSES,
    Call,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallStatus,
    ParticipantRole,
    ParticipantStatus,
    participant_cap,
)
from video_calls.selectors.rooms import CliniciansOnly
from video_calls.services.common import (
    invalid_field,
    lock_call,
    notify_call_room,
    notify_users,
    participant_role_for,
    require_host,
    require_participant,
    user_ref,
    users_reachable_by,
)
from video_calls.services.lifecycle import host_pass_if_leaving
from video_calls.services.rooms import RoomFull, check_recording, check_schedule
from video_calls.services.state import (
    InvalidCallState,
    InvalidParticipantState,
    participant_transition,
    record_event,
)
from video_calls.services.waiting_room import target_participant

# Participants who hold (or are about to take) a place in the call.
_HOLDING_A_PLACE = (
    ParticipantStatus.INVITED,
    ParticipantStatus.WAITING,
    ParticipantStatus.ADMITTED,
    ParticipantStatus.JOINED,
)


def _invitation_event(call: Call, invitee: User, by: User) -> None:
    notify_users(
        [invitee.pk],
        "call.invited",
        {
            "call_id": str(call.pk),
            "kind": call.kind,
            "media": call.media,
            "session_id": str(call.session_id) if call.session_id else None,
            "invited_by": user_ref(by),
        },
    )


@transaction.atomic
def participant_invite(*, call: Call, user: User, invitee_id: UUID) -> CallParticipant:
    """Host-only: invite one more person into a live room."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.kind == CallKind.AD_HOC or call.status not in ROOM_STATUSES:
        raise InvalidCallState("Only a live session room or group consultation takes invitations.")
    invitee = User.objects.filter(pk=invitee_id, is_active=True).first()
    if invitee is None:
        raise NotFound("No such user.", code="USER_NOT_FOUND")
    participant = CallParticipant.objects.select_related("user", "call").filter(call=call, user=invitee).first()
    if participant is not None and participant.status not in (ParticipantStatus.DECLINED, ParticipantStatus.LEFT):
        raise Conflict("This person is already on the call's list.", code="ALREADY_PARTICIPANT")
    if participant is not None and participant.status == ParticipantStatus.LEFT and participant.first_joined_at:
        raise Conflict("This person was in the call and can rejoin it.", code="ALREADY_PARTICIPANT")

    holding = CallParticipant.objects.filter(call=call, status__in=_HOLDING_A_PLACE).count()
    needed = holding + 1
    if needed > call.max_participants:
        if needed > participant_cap():
            raise RoomFull(details={"max_participants": participant_cap()})
        Call.objects.filter(pk=call.pk).update(max_participants=needed, updated_at=now)
        call.max_participants = needed

    role = participant_role_for(invitee, patient_role=ParticipantRole.GUEST)
    if participant is None:
        participant = CallParticipant.objects.create(
            call=call, user=invitee, role=role, status=ParticipantStatus.INVITED, invited_by=user, invited_at=now
        )
        record_event(call=call, type=CallEventType.INVITED, at=now, actor=user, subject=invitee)
    else:
        participant_transition(
            participant=participant,
            expected=[participant.status],
            to=ParticipantStatus.INVITED,
            at=now,
            event_type=CallEventType.INVITED,
            actor=user,
            invited_by=user,
            invited_at=now,
        )
    _invitation_event(call, invitee, user)
    return participant


@transaction.atomic
def invitation_decline(*, call: Call, user: User) -> CallParticipant:
    """The invitee says no. The host and the inviter are told."""
    now = timezone.now()
    call = lock_call(call)
    participant = require_participant(call=call, user=user)
    if call.kind == CallKind.AD_HOC or participant.invited_by_id is None:
        # A session's own doctor and patient, and a ringing callee, have no invitation to decline.
        raise InvalidParticipantState("You have no invitation to decline.", details={"status": participant.status})
    participant_transition(
        participant=participant,
        expected=[ParticipantStatus.INVITED],
        to=ParticipantStatus.DECLINED,
        at=now,
        event_type=CallEventType.INVITE_DECLINED,
        actor=user,
    )
    notify_users(
        [uid for uid in (call.host_id, participant.invited_by_id) if uid],
        "call.invitation_declined",
        {"call_id": str(call.pk), "user": user_ref(user)},
    )
    return participant


@transaction.atomic
def group_consultation_create(
    *,
    user: User,
    invitee_ids: Sequence[UUID],
    title: str = "",
    description: str = "",
    scheduled_start: datetime | None = None,
    scheduled_end: datetime | None = None,
    media: str = CallMedia.VIDEO,
    max_participants: int | None = None,
    passcode: str = "",
    allow_join_before_host: bool = False,
    waiting_room_enabled: bool = True,
    chat_enabled: bool = True,
    screen_share_enabled: bool = True,
    mute_on_join: bool = False,
    recording_enabled: bool = False,
    auto_recording: bool = False,
) -> Call:
    """A doctor or staff member sets up a group consultation; they host it and every invitee is
    told. Invitees are people the host may reach (``users_reachable_by``: a doctor their patients
    and other clinicians, staff anyone); anyone else is answered as unknown (404), like an id
    that does not exist."""
    if not (user.is_doctor or user.is_clinic_staff):
        raise CliniciansOnly("Only doctors and clinic staff can set up a group consultation.")
    now = timezone.now()
    invitee_ids = list(dict.fromkeys(invitee_ids))
    if user.pk in invitee_ids:
        raise invalid_field("invitee_ids", "You are the host; do not invite yourself.", "includes_host")
    invitees = list(users_reachable_by(user=user).filter(pk__in=invitee_ids))
    if len(invitees) != len(invitee_ids):
        known = {invitee.pk for invitee in invitees}
        raise NotFound(
            "Some invitees do not exist.",
            code="USER_NOT_FOUND",
            details={"invitee_ids": [str(uid) for uid in invitee_ids if uid not in known]},
        )
    check_schedule(start=scheduled_start, end=scheduled_end, changed=("scheduled_start", "scheduled_end"), now=now)
    check_recording(recording_enabled=recording_enabled, auto_recording=auto_recording)
    needed = len(invitees) + 1
    limit = max_participants if max_participants is not None else needed
    if not needed <= limit <= participant_cap():
        raise invalid_field(
            "max_participants",
            f"Between {needed} (the host and the invitees) and {participant_cap()}.",
            "out_of_range",
        )
    call = Call.objects.create(
        kind=CallKind.GROUP,
        media=media,
        status=CallStatus.WAITING,
        initiated_by=user,
        host=user,
        title=title,
        description=description,
        scheduled_start=scheduled_start,
        scheduled_end=scheduled_end,
        max_participants=limit,
        passcode_hash=make_password(passcode) if passcode else "",
        allow_join_before_host=allow_join_before_host,
        waiting_room_enabled=waiting_room_enabled,
        chat_enabled=chat_enabled,
        screen_share_enabled=screen_share_enabled,
        mute_on_join=mute_on_join,
        recording_enabled=recording_enabled,
        auto_recording=auto_recording,
    )
    CallParticipant.objects.bulk_create(
        [
            CallParticipant(call=call, user=user, role=participant_role_for(user), invited_at=now, admitted_at=now),
            *(
                CallParticipant(
                    call=call,
                    user=invitee,
                    role=participant_role_for(invitee),
                    status=ParticipantStatus.INVITED,
                    invited_by=user,
                    invited_at=now,
                )
                for invitee in invitees
            ),
        ]
    )
    record_event(call=call, type=CallEventType.INITIATED, at=now, actor=user, data={"invitees": len(invitees)})
    for invitee in invitees:
        record_event(call=call, type=CallEventType.INVITED, at=now, actor=user, subject=invitee)
        _invitation_event(call, invitee, user)
    return call


@transaction.atomic
def participant_remove(*, call: Call, user: User, participant_user_id: UUID) -> CallParticipant:
    """Host-only: take someone out of the call; they cannot rejoin it."""
    now = timezone.now()
    call = lock_call(call)
    require_host(call=call, user=user)
    if call.kind == CallKind.AD_HOC or call.status not in ROOM_STATUSES:
        raise InvalidCallState("Only a live room's participants can be removed.", details={"status": call.status})
    participant = target_participant(call=call, user_id=participant_user_id)
    if participant.user_id == user.pk:
        raise Conflict("Leave the call instead of removing yourself.", code="CANNOT_REMOVE_SELF")
    was_connected = participant.status == ParticipantStatus.JOINED
    participant_transition(
        participant=participant,
        expected=[
            ParticipantStatus.INVITED,
            ParticipantStatus.WAITING,
            ParticipantStatus.ADMITTED,
            ParticipantStatus.JOINED,
        ],
        to=ParticipantStatus.REMOVED,
        at=now,
        event_type=CallEventType.REMOVED,
        actor=user,
        admitted_at=None,
    )
    notify_users([participant.user_id], "call.participant_removed", {"call_id": str(call.pk), "by": user_ref(user)})
    if was_connected:
        notify_call_room(
            call,
            "call.participant_left",
            {"call_id": str(call.pk), "user": user_ref(participant.user), "reason": "removed"},
        )
        host_pass_if_leaving(call=call, leaving=participant.user, at=now)
    return participant

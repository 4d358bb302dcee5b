"""Which calls a user may see: their own (as a participant or the initiator), or all for staff.

Every call lookup starts from ``call_list_for_user``, so a guessed id answers 404.
"""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.models import User
from core.compiled import CompiledQuery, prefetched
from core.exceptions import NotFound
from video_calls.models import Call, CallParticipant


def call_list_own(*, user: User) -> QuerySet[Call]:
    """The calls that are ``user``'s own: they took part in them or started them, whatever their
    role (what a non-staff user sees, and staff's ``scope=mine`` statistics)."""
    is_participant = CallParticipant.objects.filter(call=OuterRef("pk"), user=user)
    return Call.objects.filter(Q(initiated_by=user) | Exists(is_participant))


def call_list_for_user(*, user: User) -> QuerySet[Call]:
    """The calls ``user`` may see: every call for staff, their own (``call_list_own``) otherwise."""
    if user.is_clinic_staff:
        return Call.objects.all()
    return call_list_own(user=user)


def with_row_lock(calls: QuerySet[Call]) -> QuerySet[Call]:
    """``calls`` with their sessions, each row locked for the rest of the transaction (the
    sessions are not: they are on the nullable side of the join)."""
    return calls.select_for_update(of=("self",)).select_related("session")


# ``call_get_for_user(lock=True)`` for a user who is not staff: the join's lookup, which every
# client of every call makes on the hour, compiled once (core/compiled.py).
_own_call_locked: CompiledQuery[Call] = CompiledQuery(
    lambda user_id, call_id: with_row_lock(call_list_own(user=User(pk=user_id))).filter(pk=call_id),
    "user_id",
    "call_id",
)


def call_get_for_user(*, user: User, call_id, lock: bool = False) -> Call:
    """The call ``user`` may see, or CALL_NOT_FOUND. ``lock``: read as ``lock_call``
    (video_calls.services.common) would, in the same statement, for a service the caller then
    hands it to with ``locked=True``."""
    if lock and not user.is_clinic_staff:
        call = _own_call_locked.first(user_id=user.pk, call_id=call_id)
    else:
        calls = call_list_for_user(user=user)
        call = (with_row_lock(calls) if lock else calls).filter(pk=call_id).first()
    if call is None:
        raise NotFound("Call not found.", code="CALL_NOT_FOUND")
    return call


def participants_with_users() -> Prefetch:
    """A call's participants with their users, in one query however many take part."""
    return Prefetch("participants", queryset=CallParticipant.objects.select_related("user").order_by("id"))


def call_with_participants(*, call_id) -> Call:
    """The call as stored now, with its participants: what every reply carrying the participant
    list serializes (REST's call and join answers, the socket's join)."""
    return Call.objects.prefetch_related(participants_with_users()).get(pk=call_id)


# What ``participants_with_users`` prefetches, for one call, compiled once: every join answers it.
_participants_with_users_of: CompiledQuery[CallParticipant] = CompiledQuery(
    lambda call_id: participants_with_users().queryset.filter(call_id=call_id), "call_id"
)


def call_with_participants_of(call: Call) -> Call:
    """``call`` as already read (by a service that just locked and changed it), with its
    participants as stored now: ``call_with_participants`` without reading the call again."""
    participants = _participants_with_users_of.all(call_id=call.pk)
    for participant in participants:
        participant.call = call
    prefetched(call, "participants", participants)
    return call

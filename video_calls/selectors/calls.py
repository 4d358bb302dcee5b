"""Which calls a user may see: their own (as a participant or the initiator), or all for staff.

Every call lookup starts from ``call_list_for_user``, so a guessed id answers 404.
"""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.models import User
from core.exceptions import NotFound
from video_calls.models import Call, CallParticipant


def call_list_for_user(*, user: User) -> QuerySet[Call]:
    calls = Call.objects.all()
    if user.is_clinic_staff:
        return calls
    is_participant = CallParticipant.objects.filter(call=OuterRef("pk"), user=user)
    return calls.filter(Q(initiated_by=user) | Exists(is_participant))


def call_get_for_user(*, user: User, call_id) -> Call:
    call = call_list_for_user(user=user).filter(pk=call_id).first()
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

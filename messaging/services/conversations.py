"""Opening conversations: a direct one between two people who may message each other (one per
pair, the database's unique constraint settling a race), or a call's, whose members are the
call's chat participants (messaging.selectors ``CALL_CHAT_PARTICIPANT_STATUSES``)."""

from collections.abc import Iterable

from django.db import transaction

from accounts.models import User
from messaging.models import Conversation, ConversationKind, ConversationMember
from messaging.selectors import call_chat_participant_ids, call_chat_roster, messageable_user_get
from messaging.services.errors import CannotMessageSelf, ChatDisabled
from video_calls.selectors.calls import call_get_for_user
from video_calls.services.common import NotParticipant


def ordered_pair(first, second) -> tuple:
    """A pair of user ids in the order the database compares them (UUIDs by their bytes)."""
    return (first, second) if first < second else (second, first)


@transaction.atomic
def conversation_direct_open(*, user: User, other_id) -> tuple[Conversation, bool]:
    """The direct conversation of ``user`` and ``other_id``, created if they have none;
    ``(conversation, created)``. Someone ``user`` may not message is not found."""
    if str(other_id) == str(user.pk):
        raise CannotMessageSelf()
    other = messageable_user_get(user=user, user_id=other_id)
    low, high = ordered_pair(user.pk, other.pk)
    # get_or_create re-reads after an IntegrityError: of two concurrent first messages, the
    # one that loses the unique constraint uses the winner's conversation.
    conversation, created = Conversation.objects.get_or_create(
        kind=ConversationKind.DIRECT, user_low_id=low, user_high_id=high
    )
    if created:
        ConversationMember.objects.bulk_create(
            [ConversationMember(conversation=conversation, user_id=pk) for pk in (low, high)]
        )
    return conversation, created


def sync_call_members(*, conversation: Conversation, participant_ids: Iterable) -> None:
    """Make the members of a call's conversation its chat participants: those who got in since
    are added, those removed from the call (or who declined) lose it. Two statements."""
    participant_ids = list(participant_ids)
    ConversationMember.objects.bulk_create(
        [ConversationMember(conversation=conversation, user_id=pk) for pk in participant_ids],
        ignore_conflicts=True,
    )
    ConversationMember.objects.filter(conversation=conversation).exclude(user_id__in=participant_ids).delete()


def ensure_call_chat(*, call, user: User) -> list:
    """The call's chat participants, after checking that ``user`` is one and chat is on."""
    if not call.chat_enabled:
        raise ChatDisabled()
    participant_ids = call_chat_participant_ids(call_id=call.pk)
    _ensure_participant(user=user, participant_ids=participant_ids)
    return participant_ids


def _ensure_participant(*, user: User, participant_ids: list) -> None:
    if user.pk not in participant_ids:
        raise NotParticipant("Only the call's participants take part in its chat.")


def call_chat_members_for_send(*, conversation: Conversation, user: User) -> list:
    """``ensure_call_chat`` then ``sync_call_members`` for a send to a call's conversation, in
    one read when nobody joined or left: the participants are read next to the members
    (selectors ``call_chat_roster``), and only the changes are written."""
    call = conversation.call
    if not call.chat_enabled:
        raise ChatDisabled()
    roster = call_chat_roster(call_id=call.pk, conversation_id=conversation.pk)
    _ensure_participant(user=user, participant_ids=roster.participant_ids)
    if roster.joined_ids:
        ConversationMember.objects.bulk_create(
            [ConversationMember(conversation=conversation, user_id=pk) for pk in roster.joined_ids],
            ignore_conflicts=True,
        )
    if roster.has_leavers:
        ConversationMember.objects.filter(conversation=conversation).exclude(
            user_id__in=roster.participant_ids
        ).delete()
    return roster.participant_ids


@transaction.atomic
def conversation_call_open(*, user: User, call_id) -> tuple[Conversation, bool]:
    """A call's conversation, created on first ask; ``(conversation, created)``. Refused while the
    call's ``chat_enabled`` is off, and to anyone who is not a chat participant of the call."""
    call = call_get_for_user(user=user, call_id=call_id)
    participant_ids = ensure_call_chat(call=call, user=user)
    conversation, created = Conversation.objects.get_or_create(kind=ConversationKind.CALL, call=call)
    sync_call_members(conversation=conversation, participant_ids=participant_ids)
    return conversation, created

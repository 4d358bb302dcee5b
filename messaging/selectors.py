"""Messaging reads, each scoped to who asks: a conversation that is not yours, or a message you
may not see (someone else's private message), is not found (404), never forbidden.

Two rules live here and nowhere else:

* **who may message whom** (``may_message``): a care relationship (``sessions.selectors``), staff
  on either side, or a contact either of them added (``contact_addable``);
* **who sees a message** (``visible_to``): every member, except that a private message is seen
  by its sender and its recipient only.
"""

from dataclasses import dataclass

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import Role, User
from core.exceptions import NotFound
from messaging.models import (
    Attachment,
    AttachmentAccess,
    Contact,
    Conversation,
    ConversationKind,
    ConversationMember,
    Message,
    MessageReceipt,
)
from sessions import selectors as session_selectors
from video_calls.models import CallParticipant, ParticipantStatus

# Participants of a call who belong to its chat: those who got in (admitted, in it, or left it
# since). The waiting room, the invited, those who declined or were removed do not.
CALL_CHAT_PARTICIPANT_STATUSES = (ParticipantStatus.ADMITTED, ParticipantStatus.JOINED, ParticipantStatus.LEFT)


class ConversationNotFound(NotFound):
    code = "CONVERSATION_NOT_FOUND"
    default_message = "Conversation not found."


class MessageNotFound(NotFound):
    code = "MESSAGE_NOT_FOUND"
    default_message = "Message not found."


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    default_message = "User not found."


def visible_to(user: User, prefix: str = "") -> Q:
    """Messages ``user`` may see among those of conversations they are a member of."""
    return Q(**{f"{prefix}is_private": False}) | Q(**{f"{prefix}sender": user}) | Q(**{f"{prefix}recipient": user})


# --- Who may message whom ----------------------------------------------------------------------


def contact_addable(*, user: User) -> QuerySet[User]:
    """The people ``user`` may add as contacts: a patient, verified doctors; a doctor, their
    patients (the care relationship) and other doctors; staff, anyone. Active accounts only."""
    people = User.objects.filter(is_active=True).exclude(pk=user.pk)
    if user.is_clinic_staff:
        return people
    if user.is_doctor:
        return people.filter(Q(role=Role.DOCTOR) | Q(pk__in=session_selectors.care_relation_ids(user=user)))
    if user.is_patient:
        return people.filter(role=Role.DOCTOR, doctor_profile__is_verified=True)
    return people.none()


def related_for_messaging(*, user: User, other: str) -> Q:
    """The part of ``may_message`` the database answers, as a condition on a row whose column
    ``other`` holds the other person's id: a care relationship between them
    (``sessions.selectors.care_relation_ids``), or a contact either of them added. ``may_message``
    asks it of a user row; a send asks it of its direct conversation's row, in the query that
    locks it (``conversation_with_send_checks``)."""
    contact = Contact.objects.filter(Q(owner=user, contact=OuterRef(other)) | Q(owner=OuterRef(other), contact=user))
    return Q(**{f"{other}__in": session_selectors.care_relation_ids(user=user)}) | Q(Exists(contact))


def may_message(*, user: User, other: User, related: bool | None = None) -> bool:
    """Whether ``user`` and ``other`` may have a direct conversation. ``related``: the answer of
    ``related_for_messaging`` when it was already read (with a send's conversation); else one query."""
    if user.pk == other.pk or not other.is_active or not user.is_active:
        return False
    if user.is_clinic_staff or other.is_clinic_staff:
        return True
    if related is None:
        related = User.objects.filter(related_for_messaging(user=user, other="pk"), pk=other.pk).exists()
    return bool(related)


def conversation_with_send_checks(*, user: User, client_message_id: str | None = None) -> QuerySet[Conversation]:
    """The conversations ``user`` is a member of, each with what a send by ``user`` checks, read
    with the row instead of in queries of their own:

    * ``related_to_other``: for a direct conversation, ``related_for_messaging`` between ``user``
      and the other person (the rest of ``may_message`` is on the two users' rows);
    * ``replayed_id``: the message ``user`` already stored with ``client_message_id``, in any
      conversation (None: the key is new, or none was given).

    Read as of the statement's start: under a lock it waited for, a message the holder just
    committed is not in ``replayed_id`` (the caller relies on the unique constraint for that).
    """
    other_id = Case(When(user_low=user.pk, then=F("user_high")), default=F("user_low"))
    conversations = Conversation.objects.filter(members__user=user).annotate(
        other_id=other_id,
        related_to_other=ExpressionWrapper(related_for_messaging(user=user, other="other_id"), BooleanField()),
    )
    if client_message_id:
        stored = Message.objects.filter(sender=user, client_message_id=client_message_id).order_by()
        conversations = conversations.annotate(replayed_id=Subquery(stored.values("pk")[:1]))
    return conversations


def messageable_user_get(*, user: User, user_id) -> User:
    other = User.objects.filter(pk=user_id).first()
    if other is None or not may_message(user=user, other=other):
        raise UserNotFound()
    return other


def contact_list_for_user(*, user: User) -> QuerySet[User]:
    """The people ``user`` may message and call: their care team (from sessions) and the
    contacts they added, each once, flagged ``in_care_team`` / ``added_at``."""
    added = Contact.objects.filter(owner=user, contact=OuterRef("pk"))
    care_team = session_selectors.care_relation_ids(user=user)
    return (
        User.objects.filter(is_active=True)
        .filter(Q(pk__in=care_team) | Q(pk__in=Contact.objects.filter(owner=user).values("contact_id")))
        .annotate(
            in_care_team=Exists(
                session_selectors.care_relationship_sessions_between(user=user, other_id=OuterRef("pk"))
            )
        )
        .annotate(added_at=Subquery(added.values("created_at")[:1]))
        .order_by("last_name", "first_name", "id")
    )


# --- Conversations -----------------------------------------------------------------------------


def memberships_of(*, user: User) -> QuerySet[ConversationMember]:
    """``user``'s memberships that count, the one rule every read and write starts from: a
    direct conversation's always; a call's chat only while they are one of the call's chat
    participants (``CALL_CHAT_PARTICIPANT_STATUSES``). The member rows of a call's chat are
    brought up to date at its next send (``call_chat_roster``); someone removed from the call
    meanwhile loses its chat at once, not then."""
    in_call_chat = CallParticipant.objects.filter(
        call_id=OuterRef("conversation__call_id"), user=user, status__in=CALL_CHAT_PARTICIPANT_STATUSES
    )
    return ConversationMember.objects.filter(user=user).filter(
        Q(conversation__kind=ConversationKind.DIRECT) | Exists(in_call_chat)
    )


def _members_with_users() -> Prefetch:
    return Prefetch(
        "members",
        queryset=ConversationMember.objects.select_related("user").order_by("joined_at", "id"),
        to_attr="member_list",
    )


def unread_receipts(*, user: User) -> QuerySet[MessageReceipt]:
    """``user``'s receipts not read yet, deleted messages aside: what an unread count counts."""
    return MessageReceipt.objects.filter(recipient=user, read_at__isnull=True, message__deleted_at__isnull=True)


def conversation_list_for_user(*, user: User) -> QuerySet[Conversation]:
    """``user``'s conversations, most recent activity first, each with ``unread_count`` (their
    receipts not read, deleted messages aside) and ``last_visible_id`` (the newest message they
    may see). A page costs the same queries whatever its size: the page, its members, and the
    last messages (``last_messages_for``)."""
    unread = (
        unread_receipts(user=user)
        .filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(count=Count("pk"))
        .values("count")
    )
    last_visible = (
        Message.objects.filter(visible_to(user), conversation=OuterRef("pk")).order_by("-seq").values("pk")[:1]
    )
    return (
        Conversation.objects.filter(Exists(memberships_of(user=user).filter(conversation=OuterRef("pk"))))
        .annotate(unread_count=Coalesce(Subquery(unread), 0), last_visible_id=Subquery(last_visible))
        .prefetch_related(_members_with_users())
        .order_by(Coalesce("last_message_at", "created_at").desc(), "id")
    )


def last_messages_for(conversations: list[Conversation]) -> dict:
    """The last visible message of each conversation (from ``conversation_list_for_user``), by id,
    in one query."""
    ids = [conversation.last_visible_id for conversation in conversations if conversation.last_visible_id]
    if not ids:
        return {}
    return {message.pk: message for message in Message.objects.filter(pk__in=ids)}


def conversation_get_for_user(*, user: User, conversation_id) -> Conversation:
    conversation = conversation_list_for_user(user=user).filter(pk=conversation_id).first()
    if conversation is None:
        raise ConversationNotFound()
    return conversation


def conversation_member_get(*, user: User, conversation_id) -> ConversationMember:
    """``user``'s membership of a conversation, with the conversation (and its call): the check
    every write starts with."""
    member = (
        memberships_of(user=user)
        .select_related("conversation", "conversation__call")
        .filter(conversation_id=conversation_id)
        .first()
    )
    if member is None:
        raise ConversationNotFound()
    return member


@dataclass(frozen=True)
class CallChatRoster:
    participant_ids: list  # the call's chat participants
    joined_ids: list  # of them, those not yet members of its conversation
    has_leavers: bool  # the conversation has members who are no longer chat participants


def call_chat_roster(*, call_id, conversation_id) -> CallChatRoster:
    """The call's chat participants next to its conversation's members, in one query, so a send
    writes the members only when someone joined or left. With no participant at all the query
    has no row to say whether anyone left: it counts as yes."""
    participants = CallParticipant.objects.filter(call_id=call_id, status__in=CALL_CHAT_PARTICIPANT_STATUSES)
    members = ConversationMember.objects.filter(conversation_id=conversation_id)
    rows = list(
        participants.annotate(
            is_member=Exists(members.filter(user_id=OuterRef("user_id"))),
            has_leavers=Exists(members.exclude(user_id__in=participants.values("user_id"))),
        ).values_list("user_id", "is_member", "has_leavers")
    )
    return CallChatRoster(
        participant_ids=[user_id for user_id, _, _ in rows],
        joined_ids=[user_id for user_id, is_member, _ in rows if not is_member],
        has_leavers=rows[0][2] if rows else True,
    )


def call_chat_participant_ids(*, call_id) -> list:
    return list(
        CallParticipant.objects.filter(call_id=call_id, status__in=CALL_CHAT_PARTICIPANT_STATUSES).values_list(
            "user_id", flat=True
        )
    )


# --- Messages ----------------------------------------------------------------------------------


def receipts_prefetch() -> Prefetch:
    """A page's receipts in one query, as ``message.receipt_list``."""
    return Prefetch("receipts", queryset=MessageReceipt.objects.order_by("recipient_id"), to_attr="receipt_list")


def message_list_for_user(*, user: User, conversation: Conversation, after: Message | None = None, since=None):
    """The messages of a conversation ``user`` is a member of (obtained through
    ``conversation_get_for_user``) that they may see, newest first; with ``after`` (a message)
    or ``since`` (a time), only what came later, oldest first, so a client catching up pages
    forward and nothing shifts under it. Receipts come in one more query per page."""
    messages = (
        Message.objects.filter(visible_to(user), conversation=conversation)
        .select_related("attachment")
        .prefetch_related(receipts_prefetch())
    )
    if after is None and since is None:
        return messages.order_by("-seq")
    if after is not None:
        messages = messages.filter(seq__gt=after.seq)
    if since is not None:
        messages = messages.filter(created_at__gt=since)
    return messages.order_by("seq")


def message_get_for_user(*, user: User, message_id, conversation: Conversation | None = None) -> Message:
    messages = Message.objects.filter(
        visible_to(user),
        Exists(memberships_of(user=user).filter(conversation=OuterRef("conversation"))),
        pk=message_id,
    ).select_related("conversation", "attachment")
    if conversation is not None:
        messages = messages.filter(conversation=conversation)
    message = messages.first()
    if message is None:
        raise MessageNotFound()
    return message


# --- Attachments -------------------------------------------------------------------------------


def attachments_readable_by(*, user: User) -> QuerySet[Attachment]:
    """The attachments ``user`` may read (metadata and bytes), erased ones aside:

    * their own;
    * ``shared_conversation``: those of conversations they are a member of;
    * ``shared_call``: those of calls they are a chat participant of (``CALL_CHAT_PARTICIPANT_STATUSES``);
    * any attachment in a message they see (``visible_to``, as a current member): sending a
      ``private`` attachment shares it with that message's audience, and with nobody else
      (in a private message: its recipient only).
    """
    memberships = memberships_of(user=user).values("conversation_id")
    calls = CallParticipant.objects.filter(user=user, status__in=CALL_CHAT_PARTICIPANT_STATUSES).values("call_id")
    in_visible_message = Message.objects.filter(
        visible_to(user), attachment=OuterRef("pk"), conversation__in=memberships, deleted_at__isnull=True
    )
    return Attachment.objects.filter(deleted_at__isnull=True).filter(
        Q(owner=user)
        | Q(access=AttachmentAccess.SHARED_CONVERSATION, conversation__in=memberships)
        | Q(access=AttachmentAccess.SHARED_CALL, call__in=calls)
        | Exists(in_visible_message)
    )


class AttachmentNotFound(NotFound):
    code = "ATTACHMENT_NOT_FOUND"
    default_message = "Attachment not found."


def attachment_get_for_user(*, user: User, attachment_id) -> Attachment:
    attachment = attachments_readable_by(user=user).select_related("message").filter(pk=attachment_id).first()
    if attachment is None:
        raise AttachmentNotFound()
    return attachment

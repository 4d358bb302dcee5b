"""Typing notices: relayed to the conversation's other members, never stored."""

from accounts.models import User
from core.events import send_now, user_group
from messaging.models import ConversationKind, ConversationMember
from messaging.selectors import conversation_member_get
from messaging.services.errors import ChatDisabled


def chat_typing(*, user: User, conversation_id) -> list:
    """Tell the other members that ``user`` is typing; returns who was told."""
    member = conversation_member_get(user=user, conversation_id=conversation_id)
    conversation = member.conversation
    if conversation.kind == ConversationKind.CALL and not conversation.call.chat_enabled:
        raise ChatDisabled()
    others = list(
        ConversationMember.objects.filter(conversation=conversation)
        .exclude(user=user)
        .values_list("user_id", flat=True)
    )
    send_now(
        [user_group(pk) for pk in others],
        "chat.typing",
        {"conversation_id": str(conversation.pk), "user_id": str(user.pk)},
    )
    return others

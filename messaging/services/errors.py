"""The refusals of the messaging services, each with a stable code (docs/errors.md)."""

from core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied


class ChatDisabled(PermissionDenied):
    code = "CHAT_DISABLED"
    default_message = "Chat is turned off for this call."


class MessagingNotAllowed(PermissionDenied):
    code = "MESSAGING_NOT_ALLOWED"
    default_message = "You may no longer message this person."


class NotMessageSender(PermissionDenied):
    code = "NOT_MESSAGE_SENDER"
    default_message = "Only the sender may delete a message."


class DeleteWindowPassed(Conflict):
    code = "DELETE_WINDOW_PASSED"
    default_message = "This message is too old to be deleted."


class ClientMessageIdReused(Conflict):
    code = "CLIENT_MESSAGE_ID_REUSED"
    default_message = "This client_message_id was already used for a message in another conversation."


class CannotMessageSelf(InvalidInput):
    code = "CANNOT_MESSAGE_SELF"
    default_message = "You cannot start a conversation with yourself."


class CannotAddSelf(InvalidInput):
    code = "CANNOT_ADD_SELF"
    default_message = "You cannot add yourself as a contact."


class InvalidRecipient(InvalidInput):
    code = "INVALID_RECIPIENT"
    default_message = "A private message goes to another member of a call's conversation."


class ContactNotFound(NotFound):
    code = "CONTACT_NOT_FOUND"
    default_message = "Not one of your contacts."

"""Per-user rate limits of messaging, one counter per user however the message arrives, on the
project's one mechanism (core/ratelimit.py): the REST endpoints use the throttle classes (429
``RATE_LIMITED`` with ``Retry-After`` and the ``X-RateLimit-*`` headers), the socket calls
``throttle_user`` (an ``error`` event with the same code and ``details.retry_after``). The REST
views name these after ``core.ratelimit.DEFAULT_THROTTLES``, so the general budget applies too.

Rates are settings (``MESSAGE_THROTTLE_RATE``, ``CHAT_TYPING_THROTTLE_RATE``,
``ATTACHMENT_UPLOAD_THROTTLE_RATE``), read at every check, so changing one takes effect without a
restart of the test process.
"""

from types import SimpleNamespace

from accounts.models import User
from core.ratelimit import RateLimited, UserRateThrottle


class ChatRateLimited(RateLimited):
    default_message = "Too many messages. Try again later."


class MessageSendThrottle(UserRateThrottle):
    scope = "messages"
    rate_setting = "MESSAGE_THROTTLE_RATE"


class AttachmentUploadThrottle(UserRateThrottle):
    scope = "attachment_uploads"
    rate_setting = "ATTACHMENT_UPLOAD_THROTTLE_RATE"


class ChatTypingThrottle(UserRateThrottle):
    scope = "chat_typing"
    rate_setting = "CHAT_TYPING_THROTTLE_RATE"


def throttle_user(throttle_class: type[UserRateThrottle], user: User) -> None:
    """Count one message of ``user`` against the throttle, or refuse it with its wait."""
    throttle = throttle_class()
    if throttle.allow_request(SimpleNamespace(user=user), None):
        return
    raise ChatRateLimited(details={"retry_after": throttle.decision.retry_after})

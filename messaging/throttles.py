"""Per-user rate limits of messaging, one counter per user however the message arrives: the
REST send endpoint uses the throttle class (429 ``RATE_LIMITED`` with ``Retry-After``), the
socket calls ``throttle_user`` (an ``error`` event with the same code and ``retry_after``).

Rates are settings (``MESSAGE_THROTTLE_RATE``, ``CHAT_TYPING_THROTTLE_RATE``,
``ATTACHMENT_UPLOAD_THROTTLE_RATE``), read when a throttle is made, so changing one takes effect
without a restart of the test process.
"""

import math
from types import SimpleNamespace

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import User
from core.exceptions import ApplicationError


class ChatRateLimited(ApplicationError):
    code = "RATE_LIMITED"
    status = 429
    default_message = "Too many messages. Try again later."


class _UserRateThrottle(SimpleRateThrottle):
    rate_setting = ""

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def wait(self) -> float:
        """Seconds until the next message is allowed: when the ``num_requests``-th newest one
        leaves the window. Never None (DRF's answer once the rate was lowered below what the
        history holds), so a 429 always says when to retry."""
        if len(self.history) < self.num_requests:
            return 0.0
        return max(0.0, self.duration - (self.now - self.history[self.num_requests - 1]))

    def get_cache_key(self, request, view) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"throttle:{self.scope}:{user.pk}"


class MessageSendThrottle(_UserRateThrottle):
    scope = "messages"
    rate_setting = "MESSAGE_THROTTLE_RATE"


class AttachmentUploadThrottle(_UserRateThrottle):
    scope = "attachment_uploads"
    rate_setting = "ATTACHMENT_UPLOAD_THROTTLE_RATE"


class ChatTypingThrottle(_UserRateThrottle):
    scope = "chat_typing"
    rate_setting = "CHAT_TYPING_THROTTLE_RATE"


def throttle_user(throttle_class: type[_UserRateThrottle], user: User) -> None:
    """Count one message of ``user`` against the throttle, or refuse it with its wait."""
    throttle = throttle_class()
    if throttle.allow_request(SimpleNamespace(user=user), None):
        return
    retry_after = max(1, math.ceil(throttle.wait()))
    raise ChatRateLimited(details={"retry_after": retry_after})

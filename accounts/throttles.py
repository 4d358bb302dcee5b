"""Rate limits for the authentication endpoints, per client IP and per account.

Each endpoint counts separately (a burst of logins does not block a password reset). The
account key is the email or phone the request names, or the signed-in user, hashed so the
cache never holds the identifier itself.
"""

import hashlib

from rest_framework.throttling import SimpleRateThrottle


class _AuthThrottle(SimpleRateThrottle):
    def endpoint_name(self, view) -> str:
        return getattr(view, "throttle_name", type(view).__name__)


class AuthIPThrottle(_AuthThrottle):
    scope = "auth_ip"

    def get_cache_key(self, request, view) -> str:
        return f"throttle:{self.scope}:{self.endpoint_name(view)}:{self.get_ident(request)}"


class AuthAccountThrottle(_AuthThrottle):
    scope = "auth_account"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            account = str(request.user.pk)
        else:
            data = request.data if isinstance(request.data, dict) else {}
            account = str(data.get("email") or data.get("phone_number") or data.get("uid") or "").strip().lower()
        if not account:
            return None
        digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        return f"throttle:{self.scope}:{self.endpoint_name(view)}:{digest}"


AUTH_THROTTLES = [AuthIPThrottle, AuthAccountThrottle]

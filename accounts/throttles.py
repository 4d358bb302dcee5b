"""Rate limits for the authentication endpoints, per client IP and per account, on the
project's one mechanism (core/ratelimit.py), besides the general budget every endpoint has.

Each endpoint counts separately (a burst of logins does not block a password reset). The
account key is the email or phone the request names, or the signed-in user, hashed so the
cache never holds the identifier itself.
"""

import hashlib

from core.ratelimit import GeneralRateThrottle, RateThrottle


def _endpoint_name(view) -> str:
    return getattr(view, "throttle_name", type(view).__name__)


class AuthIPThrottle(RateThrottle):
    scope = "auth_ip"
    rate_setting = "AUTH_THROTTLE_RATE_IP"

    def ident(self, request, view) -> str:
        return f"{_endpoint_name(view)}:{self.get_ident(request)}"


class AuthAccountThrottle(RateThrottle):
    scope = "auth_account"
    rate_setting = "AUTH_THROTTLE_RATE_ACCOUNT"

    def ident(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            account = str(request.user.pk)
        else:
            data = request.data if isinstance(request.data, dict) else {}
            account = str(data.get("email") or data.get("phone_number") or data.get("uid") or "").strip().lower()
        if not account:
            return None
        digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        return f"{_endpoint_name(view)}:{digest}"


AUTH_THROTTLES = [GeneralRateThrottle, AuthIPThrottle, AuthAccountThrottle]

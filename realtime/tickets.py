"""Single-use connection tickets.

A browser cannot set headers on a WebSocket handshake, and an access token in a URL ends up in
proxy logs for its whole lifetime. So the client asks the REST API for a ticket (authenticated
with its access token), and presents it as ``/ws/?ticket=...`` within seconds. A ticket opens
one connection: redeeming deletes it, and only the request whose delete removed it wins. It is
stored hashed, with the user's token generation, so logging out also voids unused tickets.

Connections a user opens are limited (``REALTIME_CONNECT_THROTTLE_RATE``, per user, in the shared
cache like every limit: core/ratelimit.py); issuing tickets is limited at the ticket endpoint
(``REALTIME_TICKET_THROTTLE_RATE``).
"""

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from core.ratelimit import RateLimited, rate_limit_enforce, rate_setting


class ConnectionRateLimited(RateLimited):
    default_message = "Too many connections. Try again later."


def _key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(*, user: User) -> str:
    ticket = secrets.token_urlsafe(32)
    cache.set(_key(ticket), f"{user.pk}:{user.token_generation}", timeout=settings.REALTIME_TICKET_TTL_SECONDS)
    return ticket


def ticket_redeem(*, ticket: str) -> User | None:
    """The ticket's user, or None if it is unknown, expired, already used or revoked. Raises
    ``ConnectionRateLimited`` when the user opened ``REALTIME_CONNECT_THROTTLE_RATE`` connections
    already (the ticket is used up all the same)."""
    if not ticket or len(ticket) > 128:
        return None
    key = _key(ticket)
    value = cache.get(key)
    if value is None or not cache.delete(key):
        return None
    user_id, _, generation = value.rpartition(":")
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or str(user.token_generation) != generation:
        return None
    rate_limit_enforce(
        scope="realtime_connect",
        ident=str(user.pk),
        rate=rate_setting("REALTIME_CONNECT_THROTTLE_RATE"),
        error=ConnectionRateLimited,
    )
    return user

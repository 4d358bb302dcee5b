"""Single-use connection tickets, and the user check every connection passes.

A client opens its socket with its access token offered as a subprotocol (realtime/bearer.py), or
with a ticket: for a client that cannot offer subprotocols, or sits behind a proxy that drops
them. An access token in a URL would end up in proxy logs for its whole lifetime, so such a client
asks the REST API for a ticket (authenticated with its access token), and presents it as
``/ws/?ticket=...`` within seconds. A ticket opens one connection: redeeming deletes it, and only
the request whose delete removed it wins. It is stored hashed, with the token's generation. The
endpoint itself checks only the token (accounts.authentication ``AccessTokenClaimsAuthentication``):
the database is read once per connection, at redemption, not at both steps.

Either way ``connection_user`` reads the user once, so a signed-out or suspended user's token or
ticket opens nothing. Connections a user opens are limited (``REALTIME_CONNECT_THROTTLE_RATE``,
per user, in the shared cache like every limit: core/ratelimit.py); issuing tickets is limited at
the ticket endpoint (``REALTIME_TICKET_THROTTLE_RATE``).
"""

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache

from accounts.authentication import TokenClaimsUser
from accounts.models import User
from core.compiled import CompiledQuery
from core.ratelimit import RateLimited, rate_limit_enforce, rate_setting


class ConnectionRateLimited(RateLimited):
    default_message = "Too many connections. Try again later."


def _key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(*, user: "User | TokenClaimsUser") -> str:
    """A ticket for ``user`` (a stored user, or an access token's claims: its id and generation)."""
    ticket = secrets.token_urlsafe(32)
    cache.set(_key(ticket), f"{user.pk}:{user.token_generation}", timeout=settings.REALTIME_TICKET_TTL_SECONDS)
    return ticket


def _take(key: str) -> str | None:
    """Read and delete the ticket in one step, so that only one redemption gets it: on Redis one
    ``GETDEL`` (one round trip where a read and a delete took two); on any other cache a read,
    then a delete that only one caller wins."""
    backend = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):
        stored_key = cache.make_and_validate_key(key)  # with the cache's KEY_PREFIX and version
        raw = backend.get_client(stored_key, write=True).getdel(stored_key)
        return None if raw is None else backend._serializer.loads(raw)
    value = cache.get(key)
    if value is None or not cache.delete(key):
        return None
    return value


# Compiled once (core/compiled.py): every handshake reads its user.
_active_user: CompiledQuery[User] = CompiledQuery(
    lambda user_id: User.objects.filter(pk=user_id, is_active=True), "user_id"
)


def ticket_redeem(*, ticket: str) -> User | None:
    """The ticket's user, or None if it is unknown, expired, already used or revoked. Raises
    ``ConnectionRateLimited`` as ``connection_user`` does (the ticket is used up all the same)."""
    if not ticket or len(ticket) > 128:
        return None
    value = _take(_key(ticket))
    if value is None:
        return None
    user_id, _, generation = value.rpartition(":")
    return connection_user(user_id=user_id, generation=generation)


def connection_user(*, user_id: str, generation: str) -> User | None:
    """The user a connection opens for, whether it presents a ticket or its access token
    (realtime/bearer.py): None unless they are active and ``generation`` is still their tokens'
    (a sign-out, a password change or a suspension raises it). Raises ``ConnectionRateLimited``
    when the user opened ``REALTIME_CONNECT_THROTTLE_RATE`` connections already."""
    user = _active_user.first(user_id=user_id)
    if user is None or str(user.token_generation) != generation:
        return None
    rate_limit_enforce(
        scope="realtime_connect",
        ident=str(user.pk),
        rate=rate_setting("REALTIME_CONNECT_THROTTLE_RATE"),
        error=ConnectionRateLimited,
    )
    return user

"""The access token carried by the WebSocket handshake itself, as a subprotocol.

A browser cannot set an ``Authorization`` header on a WebSocket handshake, but it can offer
subprotocols, which travel in the ``Sec-WebSocket-Protocol`` header: ``new WebSocket(url,
["telehealth.v1", "bearer." + accessToken])``. Unlike a URL, that header is not written to access
logs. It saves the client the ticket request (realtime/tickets.py) and its round trip on every
connect and reconnect, and the server an HTTP request per connection: on the hour, when every
client of every call connects at once, that request was a fifth to a quarter of a client's set-up
(docs/performance.md).

The token is checked as the REST API checks it (signature, lifetime, an access token), here in
the event loop and without the database, so a bad token is refused without waiting for a database
thread; then, as for a ticket, the user is read once to refuse a revoked token or a suspended
account (``tickets.connection_user``). The server answers with ``telehealth.v1`` alone: the
token is never echoed back.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from accounts.authentication import AccessTokenClaimsAuthentication
from accounts.tokens import GENERATION_CLAIM

# The protocol the server speaks (docs/realtime.md), echoed when the client offers it; a browser
# fails a handshake whose offered subprotocols get no answer, so a client that offers its token
# offers this too.
SUBPROTOCOL = "telehealth.v1"
BEARER_PREFIX = "bearer."
# A real access token is a few hundred characters; anything much longer is not one.
_MAX_TOKEN_CHARS = 4096

_authentication = AccessTokenClaimsAuthentication()


def bearer_subprotocols(token: str) -> list[str]:
    """What a client offers to open its socket with ``token``: the protocol, then the token."""
    return [SUBPROTOCOL, BEARER_PREFIX + token]


@dataclass(frozen=True)
class BearerClaims:
    """What a valid access token says about its user: who, and which generation of their tokens."""

    user_id: str
    generation: str


def bearer_offered(subprotocols: Iterable[str]) -> str | None:
    """The access token among the handshake's offered subprotocols (``bearer.<token>``), if any."""
    for offered in subprotocols:
        if offered.startswith(BEARER_PREFIX):
            return offered[len(BEARER_PREFIX) :]
    return None


def bearer_claims(token: str) -> BearerClaims | None:
    """The claims of a valid access token (signature, lifetime and type, as the REST API checks
    them), or None for anything else: a refresh token, an expired or forged one, garbage."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    try:
        validated = _authentication.get_validated_token(token.encode("latin1"))
    except (InvalidToken, UnicodeEncodeError):
        return None
    user_id = validated.get(api_settings.USER_ID_CLAIM)
    if not user_id:
        return None
    return BearerClaims(user_id=str(user_id), generation=str(validated.get(GENERATION_CLAIM)))

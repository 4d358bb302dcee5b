"""Media credentials: ICE servers (STUN, and TURN with ephemeral credentials) and Agora RTC tokens.

TURN uses the scheme of coturn's REST API (``use-auth-secret``): the username is
``"<expiry unix time>:<user id>"`` and the password is ``base64(HMAC-SHA1(secret, username))``. The
TURN server recomputes it from the shared secret and refuses it after the expiry, so no static TURN
password exists and a leaked credential dies on its own.

Credentials of a session's call never outlive the session's join window: their expiry is the
earlier of "now + TTL" and the window's close (``sessions.join_window.join_window_bounds``), which
is never before the scheduled end plus the grace period, so they last as long as the session.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agora_token_builder.RtcTokenBuilder import Role_Publisher, RtcTokenBuilder
from django.conf import settings
from django.utils import timezone

from sessions.join_window import join_window_bounds
from video_calls.models import Call

# Agora uids are unsigned 32-bit; 0 means "let Agora assign one", so it is excluded.
_AGORA_UID_SPACE = 2**32 - 1


@dataclass(frozen=True)
class AgoraToken:
    app_id: str
    token: str
    uid: int
    channel: str
    expires_at: datetime


@dataclass(frozen=True)
class IceConfiguration:
    ice_servers: list[dict[str, Any]]
    expires_at: datetime


@dataclass(frozen=True)
class MediaCredentials:
    ice: IceConfiguration
    agora: AgoraToken | None


def _expiry(*, now: datetime, ttl_seconds: int, not_after: datetime | None) -> datetime:
    expires_at = now + timedelta(seconds=ttl_seconds)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    # Whole seconds: the TURN username and the Agora token carry unix seconds.
    return datetime.fromtimestamp(int(expires_at.timestamp()), tz=UTC)


def turn_credential(*, username: str, secret: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``, as coturn computes it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_configuration(
    *, user_id: Any, now: datetime | None = None, not_after: datetime | None = None
) -> IceConfiguration:
    """STUN URLs, plus TURN URLs with a credential valid until ``expires_at`` when TURN is set up."""
    now = now or timezone.now()
    expires_at = _expiry(now=now, ttl_seconds=settings.CALL_TURN_TTL_SECONDS, not_after=not_after)
    servers: list[dict[str, Any]] = []
    if settings.CALL_STUN_URLS:
        servers.append({"urls": list(settings.CALL_STUN_URLS)})
    if settings.CALL_TURN_URLS and settings.CALL_TURN_SECRET:
        username = f"{int(expires_at.timestamp())}:{user_id}"
        servers.append(
            {
                "urls": list(settings.CALL_TURN_URLS),
                "username": username,
                "credential": turn_credential(username=username, secret=settings.CALL_TURN_SECRET),
            }
        )
    return IceConfiguration(ice_servers=servers, expires_at=expires_at)


def agora_uid(user_id: Any) -> int:
    """A uid in 1..2^32-1 derived from the user's UUID: the same user always gets the same uid, so
    the other side can map Agora's stream owners to our participants."""
    return int(str(user_id).replace("-", ""), 16) % _AGORA_UID_SPACE + 1


def agora_configured() -> bool:
    return bool(settings.AGORA_APP_ID and settings.AGORA_APP_CERTIFICATE)


def agora_token(
    *, channel: str, user_id: Any, now: datetime | None = None, not_after: datetime | None = None
) -> AgoraToken | None:
    """An RTC publisher token for ``channel``, or None when Agora is not configured."""
    if not agora_configured():
        return None
    now = now or timezone.now()
    expires_at = _expiry(now=now, ttl_seconds=settings.AGORA_TOKEN_TTL_SECONDS, not_after=not_after)
    uid = agora_uid(user_id)
    token = RtcTokenBuilder.buildTokenWithUid(
        settings.AGORA_APP_ID,
        settings.AGORA_APP_CERTIFICATE,
        channel,
        uid,
        Role_Publisher,
        int(expires_at.timestamp()),
    )
    return AgoraToken(app_id=settings.AGORA_APP_ID, token=token, uid=uid, channel=channel, expires_at=expires_at)


def credentials_not_after(call: Call) -> datetime | None:
    """The latest moment any credential for ``call`` may be valid: its session's window close."""
    if call.session_id is None:
        return None
    return join_window_bounds(call.session)[1]


def call_ice_configuration(*, call: Call, user_id: Any, now: datetime | None = None) -> IceConfiguration:
    """The ICE servers of one participant of ``call``, expiring no later than its session's window
    close. Given to a caller while the call rings (no media yet: no Agora token), so their client
    gathers candidates before the callee answers."""
    return ice_configuration(user_id=user_id, now=now, not_after=credentials_not_after(call))


def media_credentials(*, call: Call, user_id: Any, now: datetime | None = None) -> MediaCredentials:
    """Everything a participant needs to reach the media of ``call``. Only services that have
    checked the participant may enter the media (joined) call this."""
    now = now or timezone.now()
    not_after = credentials_not_after(call)
    return MediaCredentials(
        ice=ice_configuration(user_id=user_id, now=now, not_after=not_after),
        agora=agora_token(channel=call.room_name, user_id=user_id, now=now, not_after=not_after),
    )

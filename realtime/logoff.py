"""Automatic logoff of a WebSocket (HIPAA §164.312(a)(2)(iii)): a connection ends, with close
4401 after an ``error`` event ``LOGGED_OFF``, once its user has been idle too long or it has
been open too long, whatever the tokens say.

- **Idle**: no message from the client for ``REALTIME_IDLE_TIMEOUT_MINUTES``. Heartbeats do not
  count: the client sends them on a timer whether or not anyone is at the screen. A connection
  that is in a call is never idle: the call is the user at work (its media does not cross the
  socket), and the call ends by its own rules.
- **Absolute**: the connection is ``REALTIME_SESSION_MAX_HOURS`` old, in a call or not.

The client reconnects with a new ticket, which needs a valid access token: after an idle
logoff that means a refresh, after the refresh token's own lifetime a new sign-in.
"""

from datetime import datetime, timedelta

from django.conf import settings

from core.exceptions import ApplicationError

# Messages that do not show a person at the keyboard.
NOT_ACTIVITY = frozenset({"presence.heartbeat"})

IDLE = "idle"
SESSION_LIMIT = "session_limit"


class LoggedOff(ApplicationError):
    code = "LOGGED_OFF"
    status = 401
    default_message = "Signed out of the socket after a period of inactivity or at its time limit."


def logoff_reason(*, opened_at: datetime, last_activity_at: datetime, in_call: bool, now: datetime) -> str | None:
    """Why a connection must end now, or None. A limit of 0 is off."""
    session_hours = settings.REALTIME_SESSION_MAX_HOURS
    if session_hours and now - opened_at >= timedelta(hours=session_hours):
        return SESSION_LIMIT
    idle_minutes = settings.REALTIME_IDLE_TIMEOUT_MINUTES
    if idle_minutes and not in_call and now - last_activity_at >= timedelta(minutes=idle_minutes):
        return IDLE
    return None

"""The WebSocket endpoint: tickets, frame and rate limits, presence heartbeats, reconnect grace."""

from config.settings.env import env

# Where clients open the socket: given in ticket and join answers.
WEBSOCKET_PUBLIC_URL = env.str("WEBSOCKET_PUBLIC_URL", default="ws://localhost:8000/ws/")
# A ticket from POST /api/v1/realtime/tickets/ opens one connection within this many seconds.
REALTIME_TICKET_TTL_SECONDS = env.int("REALTIME_TICKET_TTL_SECONDS", default=30)
# Connections one process opens at once (realtime/opening.py), about its database threads' worth
# (DATABASE_POOL_MAX_SIZE); a handshake that waited this long for its turn is refused with 1013.
REALTIME_OPENING_SLOTS = env.int("REALTIME_OPENING_SLOTS", default=32)
REALTIME_OPENING_WAIT_SECONDS = env.float("REALTIME_OPENING_WAIT_SECONDS", default=30.0)
# A larger frame closes the connection with 1009 (message too big).
REALTIME_MAX_FRAME_BYTES = env.int("REALTIME_MAX_FRAME_BYTES", default=64 * 1024)
# Messages a connection may send: a sustained rate per second and a burst.
REALTIME_RATE_PER_SECOND = env.float("REALTIME_RATE_PER_SECOND", default=50.0)
REALTIME_RATE_BURST = env.int("REALTIME_RATE_BURST", default=200)
# Clients send presence.heartbeat this often; a connection silent for the timeout is dropped.
PRESENCE_HEARTBEAT_SECONDS = env.int("PRESENCE_HEARTBEAT_SECONDS", default=25)
PRESENCE_TIMEOUT_SECONDS = env.int("PRESENCE_TIMEOUT_SECONDS", default=75)
# A dropped connection leaves its calls only if the user has not reconnected by then.
REALTIME_RECONNECT_GRACE_SECONDS = env.int("REALTIME_RECONNECT_GRACE_SECONDS", default=20)
# Automatic logoff (realtime/logoff.py): a connection idle this long (no client message but
# heartbeats, and not in a call), or open this long, is closed with 4401. 0 turns a limit off.
REALTIME_IDLE_TIMEOUT_MINUTES = env.int("REALTIME_IDLE_TIMEOUT_MINUTES", default=15)
REALTIME_SESSION_MAX_HOURS = env.int("REALTIME_SESSION_MAX_HOURS", default=12)
# How often a connection checks its limits (a logoff happens at most this late).
REALTIME_LOGOFF_CHECK_SECONDS = env.float("REALTIME_LOGOFF_CHECK_SECONDS", default=30.0)

REALTIME_BEAT_SCHEDULE = {
    "presence-sweep-stale-connections": {
        "task": "presence.tasks.sweep_stale_connections",
        "schedule": float(env.int("PRESENCE_SWEEP_SECONDS", default=30)),
    },
}

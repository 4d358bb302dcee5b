"""Video calls: media servers (STUN/TURN, Agora), room limits and call timeouts.

Every value can be set from the environment; docs/calls.md describes them.
"""

from config.settings.env import env

# --- Media servers ----------------------------------------------------------------------------
# STUN needs no credentials. TURN relays media, so its credentials are ephemeral (coturn's REST-API
# scheme, ``use-auth-secret`` + ``static-auth-secret`` on the TURN server): no static password exists.
CALL_STUN_URLS = env.list("CALL_STUN_URLS", default=["stun:stun.l.google.com:19302"])
CALL_TURN_URLS = env.list("CALL_TURN_URLS", default=[])
CALL_TURN_SECRET = env.str("CALL_TURN_SECRET", default="")
CALL_TURN_TTL_SECONDS = env.int("CALL_TURN_TTL_SECONDS", default=60 * 60)

# Agora RTC: tokens are issued only when both are set.
AGORA_APP_ID = env.str("AGORA_APP_ID", default="")
AGORA_APP_CERTIFICATE = env.str("AGORA_APP_CERTIFICATE", default="")
AGORA_TOKEN_TTL_SECONDS = env.int("AGORA_TOKEN_TTL_SECONDS", default=60 * 60)

# WEBSOCKET_PUBLIC_URL, returned by the join endpoint, is a realtime setting (settings/realtime.py).

# --- Rooms --------------------------------------------------------------------------------------
# Upper bound for any call: group consultations and session rooms with invited guests.
CALL_MAX_PARTICIPANTS = env.int("CALL_MAX_PARTICIPANTS", default=8)
# Whether new session rooms hold patients in the waiting room until the doctor admits them.
CALL_WAITING_ROOM_ENABLED = env.bool("CALL_WAITING_ROOM_ENABLED", default=True)
# Doctors (user ids) whose session rooms skip the waiting room regardless of the default above.
CALL_WAITING_ROOM_SKIP_DOCTOR_IDS = env.list("CALL_WAITING_ROOM_SKIP_DOCTOR_IDS", default=[])

# --- Timeouts -----------------------------------------------------------------------------------
CALL_RING_TIMEOUT_SECONDS = env.int("CALL_RING_TIMEOUT_SECONDS", default=45)
# An ongoing call in which nobody has been connected for this long is ended.
CALL_EMPTY_TIMEOUT_SECONDS = env.int("CALL_EMPTY_TIMEOUT_SECONDS", default=5 * 60)
# No call without a session lasts longer than this (a forgotten tab must not keep a call, and its
# TURN relay, alive). A session's call ends when the session's join window closes instead
# (JOIN_WINDOW_* in consultations.py), which covers the whole booked duration.
CALL_MAX_DURATION_MINUTES = env.int("CALL_MAX_DURATION_MINUTES", default=4 * 60)

# How often the sweeps run.
CALL_RING_SWEEP_SECONDS = env.int("CALL_RING_SWEEP_SECONDS", default=10)
CALL_END_SWEEP_SECONDS = env.int("CALL_END_SWEEP_SECONDS", default=60)

CALLS_BEAT_SCHEDULE: dict = {
    "calls-expire-ringing": {
        "task": "video_calls.tasks.calls_expire_ringing",
        "schedule": float(CALL_RING_SWEEP_SECONDS),
    },
    "calls-end-stale": {
        "task": "video_calls.tasks.calls_end_stale",
        "schedule": float(CALL_END_SWEEP_SECONDS),
    },
}

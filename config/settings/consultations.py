"""Booking, join-window and payment rules of consultation sessions (the ``sessions`` app).

Every value can be set from the environment; docs/sessions.md and docs/payments.md describe them.
"""

from config.settings.env import env

# Minimum gap between two non-cancelled sessions of the same doctor or the same patient. It is
# stored on each session at booking time (``blocked_until``), so changing it affects new bookings
# and reschedules, not sessions already on the calendar.
SESSION_BUFFER_MINUTES = env.int("SESSION_BUFFER_MINUTES", default=30)
# How far ahead a session can be booked; also keeps date arithmetic far from datetime's limits.
SESSION_BOOKING_HORIZON_DAYS = env.int("SESSION_BOOKING_HORIZON_DAYS", default=365)
SESSION_MIN_DURATION_MINUTES = env.int("SESSION_MIN_DURATION_MINUTES", default=10)
SESSION_MAX_DURATION_MINUTES = env.int("SESSION_MAX_DURATION_MINUTES", default=240)
# A patient may cancel or reschedule only up to this long before the start; doctors and staff any time.
SESSION_PATIENT_CANCEL_NOTICE_HOURS = env.int("SESSION_PATIENT_CANCEL_NOTICE_HOURS", default=24)

# The join window (sessions/join_window.py): it opens this many minutes before the start and
# closes at the later of "this many minutes after the start" and "the scheduled end plus the
# grace period", so a session longer than the allowance can be joined until it is over. The
# call's media credentials expire and its call is ended when the window closes.
JOIN_WINDOW_OPENS_MINUTES_BEFORE = env.int("JOIN_WINDOW_OPENS_MINUTES_BEFORE", default=15)
JOIN_WINDOW_CLOSES_MINUTES_AFTER = env.int("JOIN_WINDOW_CLOSES_MINUTES_AFTER", default=120)
JOIN_WINDOW_GRACE_MINUTES_AFTER_END = env.int("JOIN_WINDOW_GRACE_MINUTES_AFTER_END", default=30)

# How often the no-show sweep runs.
SESSION_NO_SHOW_SWEEP_SECONDS = env.int("SESSION_NO_SHOW_SWEEP_SECONDS", default=300)
# How often requests still unconfirmed at their start are cancelled. Shorter than the no-show
# period: until the sweep runs, a lapsed request still blocks both calendars.
SESSION_LAPSE_SWEEP_SECONDS = env.int("SESSION_LAPSE_SWEEP_SECONDS", default=60)

# Payment provider webhook (docs/payments.md). With no secret the webhook refuses every call;
# production refuses to start without one of at least 32 characters (config/settings/prod.py).
PAYMENT_WEBHOOK_SECRET = env.str("PAYMENT_WEBHOOK_SECRET", default="")
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)

CONSULTATIONS_BEAT_SCHEDULE: dict = {
    "sessions-mark-no-shows": {
        "task": "sessions.tasks.sessions_mark_no_shows",
        "schedule": float(SESSION_NO_SHOW_SWEEP_SECONDS),
    },
    "sessions-lapse-requests": {
        "task": "sessions.tasks.sessions_lapse_requests",
        "schedule": float(SESSION_LAPSE_SWEEP_SECONDS),
    },
}

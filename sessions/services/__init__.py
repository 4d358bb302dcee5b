"""Writes of the sessions app, split by subdomain; import them from here.

``session_record_join`` and ``session_complete`` are the seams the video-call app calls.
"""

from sessions.services.booking import session_book, session_reschedule
from sessions.services.lifecycle import (
    session_cancel,
    session_complete,
    session_confirm,
    session_lapse_sweep,
    session_no_show_sweep,
    session_record_join,
)
from sessions.services.payments import (
    payment_webhook_apply,
    session_mark_paid,
    session_mark_refunded,
    webhook_parse,
    webhook_verify,
)

__all__ = [
    "payment_webhook_apply",
    "session_book",
    "session_cancel",
    "session_complete",
    "session_confirm",
    "session_lapse_sweep",
    "session_mark_paid",
    "session_mark_refunded",
    "session_no_show_sweep",
    "session_record_join",
    "session_reschedule",
    "webhook_parse",
    "webhook_verify",
]

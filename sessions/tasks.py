"""Periodic work of the sessions app (scheduled in config/settings/consultations.py)."""

import logging

from celery import shared_task

from sessions.services import session_lapse_sweep, session_no_show_sweep

logger = logging.getLogger(__name__)


@shared_task
def sessions_mark_no_shows() -> int:
    """Sessions whose join window closed without both participants become ``no_show`` (one bulk
    UPDATE; both participants are told)."""
    count = session_no_show_sweep()
    if count:
        logger.info("Marked %d sessions as no-show", count)
    return count


@shared_task
def sessions_lapse_requests() -> int:
    """Requested sessions whose start passed without a confirmation become ``cancelled`` (one
    bulk UPDATE; both participants are told)."""
    count = session_lapse_sweep()
    if count:
        logger.info("Cancelled %d unconfirmed sessions whose start had passed", count)
    return count

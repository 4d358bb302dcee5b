"""Periodic call sweeps run by Celery beat (schedule in ``config/settings/calls.py``). Thin: the
rules live in ``video_calls.services.sweeps``, which REST, admin and tests share."""

from celery import shared_task

from video_calls.services import rooms, sweeps


@shared_task(name="video_calls.tasks.calls_expire_ringing", ignore_result=True)
def calls_expire_ringing() -> int:
    """Ringing longer than CALL_RING_TIMEOUT_SECONDS -> missed."""
    return sweeps.calls_expire_ringing()


@shared_task(name="video_calls.tasks.calls_end_stale", ignore_result=True)
def calls_end_stale() -> dict[str, int]:
    """Close rooms of cancelled sessions, end calls whose window closed, that nobody is connected
    to, or that ran past the maximum duration."""
    return sweeps.calls_end_stale()


@shared_task(name="video_calls.tasks.call_leave_unless_reconnected")
def call_leave_unless_reconnected(call_id: str, user_id: str) -> bool:
    """Scheduled by the socket when a connection in a call drops, after the reconnect grace."""
    return rooms.call_leave_unless_reconnected(call_id=call_id, user_id=user_id)

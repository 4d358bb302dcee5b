"""Periodic presence work."""

from celery import shared_task

from presence.services import presence_sweep


@shared_task
def sweep_stale_connections() -> int:
    return presence_sweep()

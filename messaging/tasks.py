"""Periodic messaging clean-up run by Celery beat (schedule in config/settings/messaging.py).
Thin: the rules live in ``messaging.services.sweeps``."""

from celery import shared_task

from messaging.services import sweeps


@shared_task(name="messaging.tasks.attachments_sweep", ignore_result=True)
def attachments_sweep() -> dict[str, int]:
    """Erase private uploads never sent, and delete stored files no attachment points at."""
    return {
        "unsent_erased": sweeps.attachments_sweep_unsent(),
        "orphan_files_deleted": sweeps.attachment_files_sweep_orphans(),
    }

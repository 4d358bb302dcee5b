"""Periodic clean-up of attachment storage (messaging.tasks, scheduled in
config/settings/messaging.py): what no one can use any more is erased, never what someone may
still read.

- A ``private`` upload never sent in a message is readable by its owner alone and exists to be
  sent: after ``ATTACHMENT_UNSENT_RETENTION_HOURS`` it is erased (tombstoned, its file
  deleted). Shared uploads are not swept: the members of their conversation or call read them
  without a message.
- A file no row points at is left by a process killed between writing an upload's file and
  committing its row, or between a re-encryption's new copy and its switch, or by a delete
  after commit that failed. After ``ATTACHMENT_ORPHAN_GRACE_MINUTES`` (so an upload or a
  re-encryption in flight is never touched) it is deleted.
"""

import logging
import uuid
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from messaging.attachment_files import attachment_storage, delete_stored
from messaging.models import Attachment, AttachmentAccess, Message

logger = logging.getLogger(__name__)


def attachments_unsent_stale(*, now: datetime):
    """``private`` uploads older than the retention that no message carries."""
    cutoff = now - timedelta(hours=settings.ATTACHMENT_UNSENT_RETENTION_HOURS)
    return Attachment.objects.filter(
        access=AttachmentAccess.PRIVATE, deleted_at__isnull=True, created_at__lt=cutoff
    ).exclude(Exists(Message.objects.filter(attachment=OuterRef("pk"))))


def attachments_sweep_unsent(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Erase stale unsent uploads, ``batch_size`` per transaction; how many were erased.

    A send locks its attachment before it checks it (services.attachments
    ``attachment_for_message``); the sweep locks the rows it found (skipping those a send holds)
    and then asks again, in a statement of its own, whether a message carries one of them: a
    send that committed after the first read is seen there, and none can commit meanwhile."""
    now = now or timezone.now()
    erased = 0
    while True:
        with transaction.atomic():
            found = list(
                attachments_unsent_stale(now=now)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", "storage_name")[:batch_size]
            )
            if not found:
                return erased
            sent = set(
                Message.objects.filter(attachment_id__in=[pk for pk, _ in found]).values_list(
                    "attachment_id", flat=True
                )
            )
            rows = [(pk, name) for pk, name in found if pk not in sent]
            Attachment.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                deleted_at=now, name_encrypted="", storage_name="", key_id=""
            )
            for _, storage_name in rows:
                transaction.on_commit(partial(delete_stored, storage_name), robust=True)
        erased += len(rows)
        if len(found) < batch_size:
            return erased


def _is_id(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def attachment_files_sweep_orphans(*, now: datetime | None = None) -> int:
    """Delete stored files no attachment row points at, older than the grace; how many.

    Storage names are ``<2 hex>/<attachment id>/<random>.bin``
    (services.attachments ``_storage_name_for``): the sweep walks them one shard at a time and
    reads the shard's rows in one query. Anything else in the storage is left alone."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ATTACHMENT_ORPHAN_GRACE_MINUTES)
    storage = attachment_storage()
    deleted = 0
    shards, _ = storage.listdir("")
    for shard in sorted(shards):
        ids = [name for name in storage.listdir(shard)[0] if _is_id(name)]
        if not ids:
            continue
        referenced = set(
            Attachment.objects.filter(pk__in=ids).exclude(storage_name="").values_list("storage_name", flat=True)
        )
        for attachment_id in ids:
            for file_name in storage.listdir(f"{shard}/{attachment_id}")[1]:
                name = f"{shard}/{attachment_id}/{file_name}"
                if name in referenced or storage.get_modified_time(name) >= cutoff:
                    continue
                delete_stored(name)
                deleted += 1
    if deleted:
        logger.warning("Deleted %d stored attachment file(s) that no attachment pointed at", deleted)
    return deleted

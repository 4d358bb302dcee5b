"""Moving message bodies to the newest encryption key, a batch at a time.

A batch is the next ``batch_size`` messages (by primary key, after ``after``) whose body is under
another key than the newest; it is re-encrypted in one transaction of its own, each row with a
conditional update (unchanged since it was read: a message deleted meanwhile stays deleted). A
run that stops between batches, or inside one (that batch rolls back), loses nothing; the next
run finds the rows still under an old key and goes on. A body no configured key opens is left as
it is, counted and logged with its id, never its content.
"""

import logging
from dataclasses import dataclass

from django.db import transaction

from messaging.encryption import BodyUnreadable, keyring, reencrypt_body
from messaging.models import Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    last_pk: object | None  # None: nothing was left after ``after``
    reencrypted: int
    unreadable: int


def messages_pending_reencryption():
    """Messages with a body under another key than the newest."""
    return Message.objects.exclude(body_encrypted="").exclude(key_id=keyring().current_key_id)


def messages_reencrypt_batch(*, after=None, batch_size: int = 500) -> BatchResult:
    pending = messages_pending_reencryption().order_by("pk")
    if after is not None:
        pending = pending.filter(pk__gt=after)
    rows = list(pending.values_list("pk", "body_encrypted", "key_id")[:batch_size])
    if not rows:
        return BatchResult(last_pk=None, reencrypted=0, unreadable=0)
    reencrypted = unreadable = 0
    with transaction.atomic():
        for pk, token, key_id in rows:
            try:
                new_token, new_key_id = reencrypt_body(token)
            except BodyUnreadable:
                unreadable += 1
                logger.error("Message %s is under key %s, which is not configured: left as it is", pk, key_id or "?")
                continue
            reencrypted += Message.objects.filter(pk=pk, key_id=key_id, body_encrypted=token).update(
                body_encrypted=new_token, key_id=new_key_id
            )
    return BatchResult(last_pk=rows[-1][0], reencrypted=reencrypted, unreadable=unreadable)

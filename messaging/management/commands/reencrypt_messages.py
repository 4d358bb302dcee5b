"""Re-encrypt every message body, then every attachment (its file and name), under the newest key
of ``MESSAGE_ENCRYPTION_KEYS``.

Rotation, step by step (docs/messaging.md):

1. put the new key first in ``MESSAGE_ENCRYPTION_KEYS``, keeping the old ones after it, and
   deploy: new bodies use the new key, old ones still read;
2. run this command until it reports nothing left (it can be stopped with Ctrl-C at any time and
   run again: each batch of bodies, and each file, commits on its own, and a new run picks up
   what is still under an old key);
3. remove the old key. A body still under it (reported as unreadable) would no longer read.
"""

import time

from django.core.management.base import BaseCommand

from messaging.services.attachments import attachments_pending_reencryption, attachments_reencrypt_batch
from messaging.services.rotation import messages_pending_reencryption, messages_reencrypt_batch


class Command(BaseCommand):
    help = (
        "Re-encrypt message bodies and attachment files under the newest MESSAGE_ENCRYPTION_KEYS key, "
        "in batches; resumable."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Messages per transaction (default 500).")
        parser.add_argument("--file-batch-size", type=int, default=20, help="Attachment files per batch (default 20).")
        parser.add_argument("--max-batches", type=int, default=None, help="Stop after this many batches.")
        parser.add_argument("--pause", type=float, default=0.0, help="Seconds to wait between batches (load).")

    def handle(
        self, *args, batch_size: int, file_batch_size: int, max_batches: int | None, pause: float, **options
    ) -> None:
        interrupted = False
        for label, pending, reencrypt_batch, size in (
            ("message body", messages_pending_reencryption, messages_reencrypt_batch, batch_size),
            ("attachment file", attachments_pending_reencryption, attachments_reencrypt_batch, file_batch_size),
        ):
            self.stdout.write(f"{pending().count()} {label}(s) under an older key.")
            totals = {"reencrypted": 0, "unreadable": 0}
            try:
                self._run(label, reencrypt_batch, size, max_batches, pause, totals)
            except KeyboardInterrupt:
                self.stdout.write("Interrupted: the batches above are committed; run again to go on.")
                interrupted = True
            self.stdout.write(
                f"Done: {totals['reencrypted']} re-encrypted, {totals['unreadable']} unreadable "
                "(no configured key opens them), "
                f"{pending().count()} {label}(s) still under an older key."
            )
            if interrupted:
                return

    def _run(self, label: str, reencrypt_batch, size: int, max_batches: int | None, pause: float, totals: dict) -> None:
        """Batches of ``reencrypt_batch`` until none is left (or ``max_batches``), counted into
        ``totals`` as each commits."""
        after = None
        batches = 0
        while max_batches is None or batches < max_batches:
            result = reencrypt_batch(after=after, batch_size=size)
            if result.last_pk is None:
                break
            after = result.last_pk
            batches += 1
            totals["reencrypted"] += result.reencrypted
            totals["unreadable"] += result.unreadable
            self.stdout.write(
                f"{label} batch {batches}: {result.reencrypted} re-encrypted, {result.unreadable} unreadable"
            )
            if pause:
                time.sleep(pause)

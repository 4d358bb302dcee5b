"""Re-encrypt every message body under the newest key of ``MESSAGE_ENCRYPTION_KEYS``.

Rotation, step by step (docs/messaging.md):

1. put the new key first in ``MESSAGE_ENCRYPTION_KEYS``, keeping the old ones after it, and
   deploy: new bodies use the new key, old ones still read;
2. run this command until it reports nothing left (it can be stopped with Ctrl-C at any time and
   run again: each batch commits on its own, and a new run picks up what is still under an old
   key);
3. remove the old key. A body still under it (reported as unreadable) would no longer read.
"""

import time

from django.core.management.base import BaseCommand

from messaging.services.rotation import messages_pending_reencryption, messages_reencrypt_batch


class Command(BaseCommand):
    help = "Re-encrypt message bodies under the newest MESSAGE_ENCRYPTION_KEYS key, in batches; resumable."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Messages per transaction (default 500).")
        parser.add_argument("--max-batches", type=int, default=None, help="Stop after this many batches.")
        parser.add_argument("--pause", type=float, default=0.0, help="Seconds to wait between batches (load).")

    def handle(self, *args, batch_size: int, max_batches: int | None, pause: float, **options) -> None:
        after = None
        batches = reencrypted = unreadable = 0
        self.stdout.write(f"{messages_pending_reencryption().count()} message(s) under an older key.")
        try:
            while max_batches is None or batches < max_batches:
                result = messages_reencrypt_batch(after=after, batch_size=batch_size)
                if result.last_pk is None:
                    break
                after = result.last_pk
                batches += 1
                reencrypted += result.reencrypted
                unreadable += result.unreadable
                self.stdout.write(f"batch {batches}: {result.reencrypted} re-encrypted, {result.unreadable} unreadable")
                if pause:
                    time.sleep(pause)
        except KeyboardInterrupt:
            self.stdout.write("Interrupted: the batches above are committed; run again to go on.")
        left = messages_pending_reencryption().count()
        self.stdout.write(
            f"Done: {reencrypted} re-encrypted, {unreadable} unreadable (no configured key opens them), "
            f"{left} still under an older key."
        )

"""How many connections one server process opens at once.

On the hour a thousand handshakes reach a process within a second. Opened all at once, every one
of them waits for a database thread, and those that waited longer than the pool's timeout are
refused (close 1013) and come back a few seconds later to do it all again; meanwhile the events
the openings announce queue behind each other for Redis until their sends time out, and the
connections that should have had them close 4503 to re-sync. Measured with 1,000 calls on two
processes, that cascade cost more than the work itself (docs/performance.md, "Surge").

So a process opens at most ``REALTIME_OPENING_SLOTS`` connections at a time (about its database
threads' worth) and the other handshakes wait their turn in the event loop, which costs nothing.
A handshake that waited ``REALTIME_OPENING_WAIT_SECONDS`` is refused as before, with close 1013
and a time to retry: a queue that long is overload, not a surge. The default, 30 s, is above
what that surge takes to open every connection (its last client was in its call after 14 to
22 s), and half the minute a reverse proxy usually waits for an upstream's answer to the upgrade.
"""

import asyncio
import contextlib
import weakref

from django.conf import settings

from core.outages import ServerBusy

# One gate per event loop (a server process has one; tests start a loop per test), with the
# number of slots it was made for.
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]]" = (
    weakref.WeakKeyDictionary()
)


def _gate() -> asyncio.Semaphore:
    loop, slots = asyncio.get_running_loop(), settings.REALTIME_OPENING_SLOTS
    made_for, gate = _gates.get(loop, (None, None))
    if gate is None or made_for != slots:
        made_for, gate = _gates[loop] = (slots, asyncio.Semaphore(slots))
    return gate


@contextlib.asynccontextmanager
async def opening_slot():
    """Hold one of the process's opening slots for the block; raises ``ServerBusy`` (refused
    before any work) if none came free within ``REALTIME_OPENING_WAIT_SECONDS``."""
    gate = _gate()
    try:
        async with asyncio.timeout(settings.REALTIME_OPENING_WAIT_SECONDS):
            await gate.acquire()
    except TimeoutError:
        raise ServerBusy(f"waited more than {settings.REALTIME_OPENING_WAIT_SECONDS} s to open") from None
    try:
        yield
    finally:
        gate.release()

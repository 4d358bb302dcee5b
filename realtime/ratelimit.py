"""A token bucket per connection: a sustained rate with room for bursts (ICE candidates come
in bursts at call set-up).

This guards one socket against a flood of frames, on the relay's hot path, so it stays in the
connection's memory: a limit per user across processes (connections opened, messages sent,
typing notices) is core/ratelimit.py's, counted in the shared cache.
"""

import time
from collections.abc import Callable


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_second``; each message takes one.
    ``clock`` gives seconds (monotonic); tests pass their own."""

    def __init__(self, rate_per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_second
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        # However long the connection was idle, it never saves up more than one burst.
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

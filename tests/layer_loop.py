"""An event loop of its own, in a thread, for tests that listen on the channel layer from
synchronous code.

A channel of the Redis relay (core/relay.py) lives on the event loop that created it, as a
consumer's does on the server's loop; ``async_to_sync`` runs each call on a new loop, which would
end the channel with it. Tests that create channels, act, then drain them run every step here.
"""

import asyncio
import atexit
import functools
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-layer-loop", daemon=True)
    thread.start()
    atexit.register(loop.call_soon_threadsafe, loop.stop)
    return loop


def on_layer_loop(awaitable: Awaitable[T], timeout: float = 30) -> T:
    """Run ``awaitable`` on the listening loop and return its result."""
    return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), _loop()).result(timeout)


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable

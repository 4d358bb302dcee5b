"""One Redis connection pool per process for Django's cache.

Django's Redis cache keeps a connection pool per cache object, and there is a cache object per
thread. Under ASGI every HTTP request runs in a thread of its own, so each request opened a new
pool and a new Redis connection (a TCP connect, and redis-py reading its package metadata
from disk), about 10 ms of CPU per request, and left it for the garbage collector to close.
This pool class hands every cache object the same thread-safe pool instead.

The pool is bounded and blocking (``REDIS_CACHE_MAX_CONNECTIONS``, waiting up to
``REDIS_CACHE_POOL_TIMEOUT`` for a free connection): at the top of the hour a thousand request
threads would otherwise each open a connection of their own at once, and the connects that
Redis's accept queue could not take in time answered 503. A pool still exhausted after the wait
raises redis-py's ``ConnectionError``, which is a 503 too (core/outages.py).
"""

import threading

from redis import BlockingConnectionPool, ConnectionPool

_pools: dict[tuple, ConnectionPool] = {}
_lock = threading.Lock()


class SharedConnectionPool(BlockingConnectionPool):
    @classmethod
    def from_url(cls, url: str, **options) -> ConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in options.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = super().from_url(url, **options)
        return pool

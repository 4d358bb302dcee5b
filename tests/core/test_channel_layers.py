"""One fan-out for an event to several groups (core.channel_layers): every channel of every
group gets the message once, in two Redis round trips whatever the number of groups, under the
same expiry and capacity rules as channels-redis's own ``group_send``.

Against a real Redis: the ``REDIS_URL`` server in the services run, the embedded one otherwise.
"""

import pytest
import pytest_asyncio
from cryptography.fernet import InvalidToken
from django.conf import settings

from config import embedded_redis
from core import channel_layers
from core.channel_layers import FanOutRedisChannelLayer, group_send_many


@pytest.fixture
def layer_address(tmp_path):
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    var_dir = tmp_path / "var"
    embedded_redis.ensure_running(var_dir)
    yield embedded_redis.address(var_dir)
    embedded_redis.stop(var_dir)


@pytest_asyncio.fixture
async def layer(layer_address):
    layer = FanOutRedisChannelLayer(hosts=[{"address": layer_address}], prefix="fanout-test", capacity=3)
    await layer.flush()
    yield layer
    await layer.flush()
    await layer.close_pools()


class CountingPipeline:
    """Counts a pipeline's ``execute`` (one round trip) around the real one."""

    def __init__(self, pipeline, counter):
        self._pipeline, self._counter = pipeline, counter

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    async def execute(self, *args, **kwargs):
        self._counter.append("pipeline")
        return await self._pipeline.execute(*args, **kwargs)


class CountingConnection:
    """Counts round trips of a redis-py connection: each command, each pipeline execution."""

    def __init__(self, connection, counter):
        self._connection, self._counter = connection, counter

    def pipeline(self, *args, **kwargs):
        return CountingPipeline(self._connection.pipeline(*args, **kwargs), self._counter)

    def __getattr__(self, name):
        command = getattr(self._connection, name)

        async def counted(*args, **kwargs):
            self._counter.append(name)
            return await command(*args, **kwargs)

        return counted


async def _joined(layer, groups: dict[str, int]) -> dict[str, list[str]]:
    channels = {}
    for group, count in groups.items():
        channels[group] = [await layer.new_channel() for _ in range(count)]
        for channel in channels[group]:
            await layer.group_add(group, channel)
    return channels


@pytest.mark.asyncio
async def test_every_channel_of_every_group_gets_the_message_once(layer):
    channels = await _joined(layer, {"user.a": 2, "user.b": 1, "user.c": 1})
    both = channels["user.a"][0]
    await layer.group_add("user.b", both)  # one connection in two of the groups

    await layer.group_send_many(["user.a", "user.b"], {"type": "domain.event", "n": 1})

    for channel in [*channels["user.a"], *channels["user.b"]]:
        assert await layer.receive(channel) == {"type": "domain.event", "n": 1}
    for channel in [both, channels["user.c"][0]]:  # no second copy, nothing for user.c
        assert await _nothing_waiting(layer, channel)


async def _nothing_waiting(layer, channel) -> bool:
    """Nothing for ``channel`` in Redis, nor already received for it into the layer's buffer."""
    key = layer.non_local_name(channel) if "!" in channel else channel
    in_redis = await layer.connection(layer.consistent_hash(key)).zcard(layer.prefix + key)
    buffered = layer.receive_buffer[channel].qsize() if channel in layer.receive_buffer else 0
    return in_redis == 0 and buffered == 0


@pytest.mark.asyncio
async def test_two_round_trips_whatever_the_number_of_groups(layer, monkeypatch):
    groups = {f"user.{index}": 1 for index in range(6)}
    await _joined(layer, groups)
    counter: list[str] = []
    real_connection = layer.connection
    monkeypatch.setattr(layer, "connection", lambda index: CountingConnection(real_connection(index), counter))

    await layer.group_send_many(list(groups), {"type": "domain.event"})
    many = list(counter)
    counter.clear()
    await FanOutRedisChannelLayer.group_send(layer, "user.0", {"type": "domain.event"})

    assert many == ["pipeline", "eval"]
    assert len(counter) == 4  # channels-redis's group_send, for one group


@pytest.mark.asyncio
async def test_a_channel_at_capacity_drops_the_message_as_group_send_does(layer):
    # Channels of their own (a process's channels from ``new_channel`` share one inbox).
    full, free = "fanout.full", "fanout.free"
    await layer.group_add("user.full", full)
    await layer.group_add("user.free", free)
    for index in range(3):  # the layer's capacity
        await layer.send(full, {"type": "filler", "n": index})

    await layer.group_send_many(["user.full", "user.free"], {"type": "domain.event"})

    assert await layer.receive(free) == {"type": "domain.event"}
    assert [(await layer.receive(full))["type"] for _ in range(3)] == ["filler"] * 3
    assert await _nothing_waiting(layer, full)


@pytest.mark.asyncio
async def test_expired_group_members_are_not_sent_to(layer, monkeypatch):
    channels = await _joined(layer, {"user.a": 1})
    stale = channels["user.a"][0]
    monkeypatch.setattr(layer, "group_expiry", -1)  # every membership is now past its expiry

    await layer.group_send_many(["user.a"], {"type": "domain.event"})

    assert await _nothing_waiting(layer, stale)


@pytest.mark.asyncio
async def test_groups_without_members_cost_one_round_trip(layer, monkeypatch):
    counter: list[str] = []
    real_connection = layer.connection
    monkeypatch.setattr(layer, "connection", lambda index: CountingConnection(real_connection(index), counter))

    await layer.group_send_many(["user.nobody", "user.noone"], {"type": "domain.event"})

    assert counter == ["pipeline"]


@pytest.mark.asyncio
async def test_a_layer_without_it_gets_one_group_send_per_group():
    sent = []

    class PlainLayer:
        async def group_send(self, group, message):
            sent.append((group, message["type"]))

    await group_send_many(PlainLayer(), ["user.a", "user.b"], {"type": "domain.event"})

    assert sent == [("user.a", "domain.event"), ("user.b", "domain.event")]


def test_the_installed_channels_redis_is_the_one_read():
    """``group_send_many`` uses channels-redis helpers that are not public API: on another
    release, read its ``group_send`` again before changing ``VERIFIED_VERSION``."""
    assert channel_layers.installed_version() == channel_layers.VERIFIED_VERSION


MARKER = "DIAGNOSIS-HYPERTENSION-STAGE-2"


async def _raw_inbox(layer, channel: str) -> bytes:
    connection = layer.connection(layer.consistent_hash(channel))
    return b"".join(await connection.zrange(layer.prefix + channel, 0, -1))


@pytest.mark.asyncio
async def test_messages_wait_in_redis_encrypted(layer):
    await layer.group_add("user.a", "fanout.inbox")

    await layer.group_send_many(["user.a"], {"type": "domain.event", "body": MARKER})

    raw = await _raw_inbox(layer, "fanout.inbox")
    assert raw and MARKER.encode() not in raw
    assert (await layer.receive("fanout.inbox"))["body"] == MARKER


@pytest.mark.asyncio
async def test_with_encryption_turned_off_they_wait_in_plain_text(layer_address, settings):
    settings.CHANNEL_LAYER_ENCRYPTED = False
    plain = FanOutRedisChannelLayer(hosts=[{"address": layer_address}], prefix="fanout-plain")
    try:
        await plain.send("fanout.inbox", {"type": "domain.event", "body": MARKER})
        assert MARKER.encode() in await _raw_inbox(plain, "fanout.inbox")
    finally:
        await plain.flush()
        await plain.close_pools()


@pytest.mark.asyncio
async def test_a_process_with_another_key_cannot_read_them(layer_address, settings):
    settings.CHANNEL_LAYER_ENCRYPTION_KEYS = ["the-new-key"]
    sender = FanOutRedisChannelLayer(hosts=[{"address": layer_address}], prefix="fanout-keys")
    settings.CHANNEL_LAYER_ENCRYPTION_KEYS = ["another-deployment"]
    stranger = FanOutRedisChannelLayer(hosts=[{"address": layer_address}], prefix="fanout-keys")
    settings.CHANNEL_LAYER_ENCRYPTION_KEYS = ["the-new-key", "another-deployment"]
    rotating = FanOutRedisChannelLayer(hosts=[{"address": layer_address}], prefix="fanout-keys")
    try:
        await sender.send("fanout.a", {"type": "domain.event"})
        with pytest.raises(InvalidToken):
            await stranger.receive("fanout.a")
        await sender.send("fanout.b", {"type": "domain.event"})
        assert await rotating.receive("fanout.b") == {"type": "domain.event"}
    finally:
        await sender.flush()
        for layer in (sender, stranger, rotating):
            await layer.close_pools()

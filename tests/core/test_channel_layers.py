"""The channel layer (core.channel_layers): messages between processes over one Redis pub/sub
subscription per process, in order, never lost without the receiver being told; an event for
several groups reaches each of their channels once, their members read in one round trip.

Two layer instances stand for two processes (each has its own relay id, so a message between
them crosses Redis). Against a real Redis: the ``REDIS_URL`` server in the services run, the
embedded one otherwise.
"""

import asyncio

import msgpack
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from django.conf import settings

from config import embedded_redis
from core import channel_layers
from core.channel_layers import RelayChannelLayer, RelayLost, group_send_many

pytestmark = pytest.mark.asyncio

MARKER = "relay-marker-7c1d"


@pytest.fixture
def layer_address(tmp_path):
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    var_dir = tmp_path / "var"
    embedded_redis.ensure_running(var_dir)
    yield embedded_redis.address(var_dir)
    embedded_redis.stop(var_dir)


def _layer(address: str, **config) -> RelayChannelLayer:
    return RelayChannelLayer(hosts=[{"address": address}], prefix="relay-test", **config)


@pytest_asyncio.fixture
async def processes(layer_address):
    """Two layers, as two server processes have."""
    here, there = _layer(layer_address, capacity=1000), _layer(layer_address, capacity=1000)
    await here.flush()
    yield here, there
    for layer in (here, there):
        await layer.flush()
        await layer.close_pools()


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _drain(layer, channel: str, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]


async def test_a_message_to_another_process_arrives_through_redis(processes, layer_address):
    here, there = processes
    inbox = await there.new_channel()
    published = []
    watcher = aioredis.from_url(layer_address)
    pubsub = watcher.pubsub()
    await pubsub.psubscribe("relay-test:relay:*")
    await pubsub.get_message(timeout=1)  # the psubscribe confirmation

    await here.send(inbox, {"type": "domain.event", "body": MARKER})

    assert await asyncio.wait_for(there.receive(inbox), 5) == {"type": "domain.event", "body": MARKER}
    while (message := await pubsub.get_message(timeout=1)) is not None:
        published.append(message)
    await pubsub.aclose()
    await watcher.aclose()
    assert len(published) == 1  # one PUBLISH, to the receiving process's relay only


async def test_a_message_between_channels_of_one_process_never_reaches_redis(processes, monkeypatch):
    here, _ = processes
    inbox = await here.new_channel()
    published = []
    monkeypatch.setattr(here, "_publish", lambda pending: published.append(pending))

    await here.send(inbox, {"type": "domain.event", "n": 1})

    assert await asyncio.wait_for(here.receive(inbox), 5) == {"type": "domain.event", "n": 1}
    assert published == []


async def test_messages_to_a_process_arrive_in_the_order_they_were_sent(processes):
    here, there = processes
    first, second = await there.new_channel(), await there.new_channel()
    await here.group_add("call.c", first)

    # Sent concurrently, so that they share pipelines: the order must still hold.
    await asyncio.gather(*(here.send(second, {"type": "domain.event", "n": n}) for n in range(300)))
    for n in range(20):  # one after the other: each sent after the previous one returned
        await here.group_send("call.c", {"type": "domain.event", "n": n})

    assert [message["n"] for message in await _drain(there, second, 300)] == list(range(300))
    assert [message["n"] for message in await _drain(there, first, 20)] == list(range(20))


async def test_an_event_to_several_groups_reaches_each_channel_once(processes):
    here, there = processes
    remote, local = await there.new_channel(), await here.new_channel()
    for group in ("user.a", "call.c"):
        await here.group_add(group, remote)
        await here.group_add(group, local)
    await here.group_add("user.b", remote)

    await here.group_send_many(["user.a", "call.c", "user.b"], {"type": "domain.event"})

    for layer, channel in ((there, remote), (here, local)):
        assert await _drain(layer, channel, 1) == [{"type": "domain.event"}]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)


async def test_a_dropped_subscription_ends_every_channel_after_what_already_arrived(processes, layer_address):
    here, there = processes
    first, second = await there.new_channel(), await there.new_channel()
    await here.send(first, {"type": "domain.event", "n": 1})
    assert await _drain(there, first, 1) == [{"type": "domain.event", "n": 1}]
    await here.send(second, {"type": "domain.event", "n": 2})
    await _until(lambda: there._channels[second].queue.qsize() == 1)  # arrived, not yet read

    killer = aioredis.from_url(layer_address)
    database = str(killer.connection_pool.connection_kwargs.get("db", 0))
    for client in await killer.client_list():  # this test's subscriptions: its database, subscribed
        if client["db"] == database and client.get("sub") != "0":
            await killer.client_kill_filter(_id=client["id"])
    await killer.aclose()

    assert await _drain(there, second, 1) == [{"type": "domain.event", "n": 2}]
    for channel in (first, second):
        with pytest.raises(RelayLost):
            await asyncio.wait_for(there.receive(channel), 5)
    # A new channel gets a new subscription and works.
    fresh = await there.new_channel()
    await here.send(fresh, {"type": "domain.event", "n": 3})
    assert await _drain(there, fresh, 1) == [{"type": "domain.event", "n": 3}]


async def test_a_channel_nobody_reads_is_ended_at_capacity_not_thinned(layer_address):
    sender, receiver = _layer(layer_address), _layer(layer_address, capacity=3)
    try:
        inbox = await receiver.new_channel()
        for n in range(5):
            await sender.send(inbox, {"type": "domain.event", "n": n})
        await _until(lambda: inbox not in receiver._channels)  # the fourth ended it

        with pytest.raises(RelayLost):
            await asyncio.wait_for(receiver.receive(inbox), 5)
    finally:
        for layer in (sender, receiver):
            await layer.close_pools()


async def test_a_corrupt_message_ends_its_channels_and_the_subscription_lives_on(processes, layer_address):
    here, there = processes
    inbox, bystander = await there.new_channel(), await there.new_channel()
    garbage = aioredis.from_url(layer_address)
    relay_key = there._relay_key(channel_layers._relay_id(inbox))
    await garbage.publish(relay_key, msgpack.packb([[[inbox], b"\xc1 not msgpack"]], use_bin_type=True))
    await garbage.aclose()

    with pytest.raises(RelayLost):
        await asyncio.wait_for(there.receive(inbox), 5)
    await here.send(bystander, {"type": "domain.event"})
    assert await _drain(there, bystander, 1) == [{"type": "domain.event"}]


async def test_a_channel_nobody_waits_on_for_the_expiry_is_forgotten(layer_address):
    layer = _layer(layer_address, expiry=1)
    try:
        waited_on, abandoned = await layer.new_channel(), await layer.new_channel()
        reader = asyncio.ensure_future(layer.receive(waited_on))
        await _until(lambda: abandoned not in layer._channels)  # swept after one to two seconds
        await layer.send(waited_on, {"type": "domain.event"})

        assert waited_on in layer._channels
        assert await asyncio.wait_for(reader, 5) == {"type": "domain.event"}
        with pytest.raises(RelayLost):
            await layer.receive(abandoned)
    finally:
        await layer.close_pools()


async def test_a_receive_that_times_out_keeps_the_channel(processes):
    here, there = processes
    inbox = await there.new_channel()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(there.receive(inbox), 0.1)

    await here.send(inbox, {"type": "domain.event"})

    assert await _drain(there, inbox, 1) == [{"type": "domain.event"}]


async def test_a_receiver_takes_messages_while_nothing_waits_in_the_queue(processes):
    here, there = processes
    inbox = await there.new_channel()
    offered = []

    def receiver(message):  # takes 1 and 3, leaves 2 to the queue
        offered.append(message["n"])
        return message["n"] != 2

    there.set_receiver(inbox, receiver)
    for n in (1, 2, 3):
        await here.send(inbox, {"type": "client.text", "n": n})

    # 3 arrived behind 2, which was still waiting in the queue: it was not offered.
    assert [message["n"] for message in await _drain(there, inbox, 2)] == [2, 3]
    assert offered == [1, 2]


async def test_an_event_to_six_groups_costs_one_read_and_one_publish(processes, monkeypatch):
    here, there = processes
    groups = [f"user.{index}" for index in range(6)]
    for group in groups:
        await here.group_add(group, await there.new_channel())
    round_trips: list[str] = []
    real_connection = here.connection
    monkeypatch.setattr(here, "connection", lambda index: CountingConnection(real_connection(index), round_trips))

    await here.group_send_many(groups, {"type": "domain.event"})

    assert round_trips == ["pipeline", "pipeline"]  # the members of all six, then one PUBLISH


async def test_groups_without_members_cost_one_round_trip(processes, monkeypatch):
    here, _ = processes
    round_trips: list[str] = []
    real_connection = here.connection
    monkeypatch.setattr(here, "connection", lambda index: CountingConnection(real_connection(index), round_trips))

    await here.group_send_many(["user.nobody", "user.noone"], {"type": "domain.event"})

    assert round_trips == ["pipeline"]


async def test_joining_a_group_is_one_round_trip_and_the_group_expires(processes, monkeypatch):
    """Every connection joins two groups as it sets up: channels-redis's two commands go as one."""
    here, there = processes
    channel = await there.new_channel()
    round_trips: list[str] = []
    real_connection = here.connection
    monkeypatch.setattr(here, "connection", lambda index: CountingConnection(real_connection(index), round_trips))

    await here.group_add("user.joining", channel)

    assert round_trips == ["pipeline"]
    redis = real_connection(0)
    key = here._group_key("user.joining")
    assert await redis.zrange(key, 0, -1) == [channel.encode()]
    assert 0 < await redis.ttl(key) <= here.group_expiry


async def test_commands_sent_at_once_wait_for_the_pools_connections_instead_of_opening_more(layer_address):
    """A thousand connections closing together each leave their groups: with a pool of two, two
    Redis connections carry all of it."""
    host = {"address": layer_address, "max_connections": 2, "timeout": 5, "client_name": "pool-test"}
    layer = RelayChannelLayer(hosts=[host], prefix="pool")
    channels = [f"pool.{index}!x" for index in range(50)]

    await asyncio.gather(*(layer.group_add("user.pooled", channel) for channel in channels))
    await asyncio.gather(*(layer.group_discard("user.pooled", channel) for channel in channels))

    clients = await layer.connection(0).client_list()
    assert len([client for client in clients if client["name"] == "pool-test"]) == 2
    assert await layer.connection(0).zcard(layer._group_key("user.pooled")) == 0
    await layer.close_pools()


async def test_expired_group_members_are_not_sent_to(processes, monkeypatch):
    here, there = processes
    stale = await there.new_channel()
    await here.group_add("user.a", stale)
    monkeypatch.setattr(here, "group_expiry", -1)  # every membership is now past its expiry

    await here.group_send_many(["user.a"], {"type": "domain.event"})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(there.receive(stale), 0.3)


async def test_a_layer_without_it_gets_one_group_send_per_group():
    sent = []

    class PlainLayer:
        async def group_send(self, group, message):
            sent.append((group, message["type"]))

    await group_send_many(PlainLayer(), ["user.a", "user.b"], {"type": "domain.event"})

    assert sent == [("user.a", "domain.event"), ("user.b", "domain.event")]


async def test_the_installed_channels_redis_is_the_one_read():
    """The layer uses channels-redis helpers that are not public API: on another release, read
    its ``core.py`` again before changing ``VERIFIED_VERSION``."""
    assert channel_layers.installed_version() == channel_layers.VERIFIED_VERSION


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


async def test_sends_from_short_lived_event_loops_leave_nothing_behind(processes):
    """A Celery task sends through ``async_to_sync``, on a new event loop each time: what the
    layer keeps per loop must go with the loop."""
    import gc

    from asgiref.sync import async_to_sync

    here, there = processes
    inbox = await there.new_channel()

    def send_from_new_loops() -> None:
        for n in range(20):
            async_to_sync(here.send)(inbox, {"type": "domain.event", "n": n})

    await asyncio.to_thread(send_from_new_loops)
    gc.collect()

    assert [message["n"] for message in await _drain(there, inbox, 20)] == list(range(20))
    assert len(here._outboxes) == 0


async def test_a_subscription_that_goes_silent_ends_its_channels(layer_address, monkeypatch):
    """Its heartbeats no longer come back (here: never published, as over a link that died
    without a reset): after two heartbeat periods its channels end, so their consumers re-sync."""
    layer = _layer(layer_address)
    layer.heartbeat_seconds = 0.2
    try:
        inbox = await layer.new_channel()
        published = []

        async def lost_on_the_way(pending):
            published.append(pending)

        monkeypatch.setattr(layer, "_publish", lost_on_the_way)

        with pytest.raises(RelayLost):
            await asyncio.wait_for(layer.receive(inbox), 5)
        assert published  # a heartbeat was tried before giving up
    finally:
        await layer.close_pools()


async def test_a_quiet_subscription_stays_up_on_its_heartbeats(layer_address):
    layer = _layer(layer_address)
    layer.heartbeat_seconds = 0.2
    sender = _layer(layer_address)
    try:
        inbox = await layer.new_channel()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(inbox), 1.5)  # seven heartbeat periods, no message

        await sender.send(inbox, {"type": "domain.event"})
        assert await asyncio.wait_for(layer.receive(inbox), 5) == {"type": "domain.event"}
    finally:
        for each in (layer, sender):
            await each.close_pools()

"""The channel layer between processes: group memberships in Redis as channels-redis keeps them,
messages over one Redis pub/sub subscription per process.

Why not channels-redis's own message path: it stores each message in a sorted set per process,
and the receiving process takes them out one ``BZPOPMIN`` at a time — a round trip per message,
one after another — and its ``group_send`` costs four round trips per group. Across two
processes that held a call's signaling to about a tenth of what Node's socket.io relays through
its Redis adapter, which is pub/sub (docs/performance.md). Here Redis pushes a process's messages
to it as a stream; a process sends what its event loop produced in one tick as one pipeline of
``PUBLISH``es, one per receiving process; an event for several groups reads all their members in
one pipeline and reaches each channel once.

What channels-redis guaranteed, and how it still holds:

1. **Order.** Everything for one process arrives through its one subscription, in the order
   Redis ran the ``PUBLISH``es. A process runs one pipeline at a time, and a send returns only
   once Redis has run it: a message caused by one already received (an offer after
   ``call.participant_joined``) is published after it, so it arrives after it.
2. **Loss is never silent.** Pub/sub keeps nothing for a subscriber that is not listening. When
   a process's subscription fails (Redis restarted, the connection dropped, Redis cut off a
   subscriber that fell behind), every channel of it receives ``RelayLost`` after what already
   arrived; the consumer then closes with 4503 and its client reconnects and re-syncs
   (docs/realtime.md). A channel whose queue reaches the layer's capacity (its consumer stopped
   reading) ends the same way, rather than losing messages from the middle of its stream.
3. **Groups** are channels-redis's sorted sets with their expiry: ``group_discard`` is
   channels-redis's own, ``group_add`` its two commands in one pipeline.
4. **Expiry.** A message nobody takes is not kept: a channel nobody has waited on for the
   layer's ``expiry`` is forgotten with what it holds, as channels-redis drops a message not
   taken within it. That is how the channel of a consumer that has ended goes away.

Nothing waits in Redis any more: a published message lives only in the memory of the Redis
server until it is written to the subscriber's socket, and never reaches a snapshot or an
append-only file. Messages are therefore not sealed (channels-redis's Fernet encryption cost a
quarter of the cross-process rate); the link to Redis is protected with TLS (``rediss://``)
where it crosses a network (docs/operations.md).

A message between two channels of the same event loop never reaches Redis: it goes straight to
the receiving channel's queue, or to the consumer's own receiver (``set_receiver``) when it can
take it at once.

Channel names are ``<prefix>.<relay id>!<random>``; the relay id names one event loop of one
process (a process may run several: a health probe's, a test's), and a channel lives on the loop
that created it. Redis channel of a relay: ``<layer prefix>:relay:<relay id>``.

channels-redis helpers that are not public API are used (``_group_key``, ``consistent_hash``,
``create_pool``, ``connection``): ``VERIFIED_VERSION`` names the release this was read against,
and a test fails when another one is installed (read its ``core.py`` again, then update it).
"""

import asyncio
import collections
import contextlib
import itertools
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import version

import msgpack
from channels_redis.core import RedisChannelLayer, aioredis

logger = logging.getLogger(__name__)

VERIFIED_VERSION = "4.3.0"


def installed_version() -> str:
    return version("channels-redis")


class RelayLost(ConnectionError):
    """Messages for this channel may have been lost: its process's subscription failed, or the
    channel's queue overflowed. The receiver must re-sync."""


# Put in a channel's queue behind what it already holds, once its messages may be lost from then on.
_LOST = object()

_relay_numbers = itertools.count()

# ``receiver(message) -> bool``: takes a message for its channel at once (True), or leaves it to
# the channel's queue (False).
Receiver = Callable[[dict], bool]


@dataclass(eq=False)
class _Channel:
    """A live channel: its queue, its consumer's receiver if it set one, and since when nobody
    has waited on it (``None`` while someone does)."""

    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    receiver: Receiver | None = None
    receivers_waiting: int = 0
    idle_since: float | None = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Subscription:
    """One event loop's end of the relay: the task that reads its Redis subscription into its
    channels, and the one that forgets channels nobody waits on."""

    relay_id: str
    key: str
    ready: asyncio.Future
    reader: asyncio.Task | None = None
    sweeper: asyncio.Task | None = None
    lost: bool = False
    last_heard: float = field(default_factory=time.monotonic)  # when the reader last got a message


@dataclass(eq=False)
class _Outbox:
    """One event loop's sends not yet handed to Redis, by receiving relay, and the one task that
    hands them over, a pipeline at a time (so that they reach Redis in the order they were sent)."""

    pending: dict[str, list[tuple[list[str], bytes]]] = field(default_factory=dict)
    sent: asyncio.Future | None = None  # resolved once ``pending`` is in Redis
    writer: asyncio.Task | None = None


class RelayChannelLayer(RedisChannelLayer):
    """channels-redis's groups; messages over one pub/sub subscription per event loop."""

    # How often a quiet subscription is checked with a heartbeat (``_sweep``).
    heartbeat_seconds = 15.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # By event loop, held weakly: a Celery task's ``async_to_sync`` sends from a new loop each
        # time, and an idle outbox refers to none, so it goes with its loop.
        self._subscriptions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Subscription] = (
            weakref.WeakKeyDictionary()
        )
        self._channels: dict[str, _Channel] = {}  # every live channel of this layer, by name
        self._outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = weakref.WeakKeyDictionary()

    # --- The channel layer API ------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        """A channel of this event loop's subscription, which listens before the name is
        returned: nothing sent to the name can be published before it is heard."""
        subscription = await self._subscription()
        channel = f"{prefix}.{subscription.relay_id}!{uuid.uuid4().hex}"
        self._channels[channel] = _Channel()
        return channel

    async def receive(self, channel: str) -> dict:
        """The next message for ``channel``, on the event loop that created it; ``RelayLost``
        once messages for it may have been lost."""
        if "!" not in channel:  # a general channel (none of ours): channels-redis's own path
            return await super().receive(channel)
        live = self._channels.get(channel)
        if live is None:
            raise RelayLost("This channel has ended: messages for it may have been lost.")
        live.receivers_waiting += 1
        live.idle_since = None
        try:
            message = await live.queue.get()
        finally:
            live.receivers_waiting -= 1
            if not live.receivers_waiting:
                live.idle_since = time.monotonic()
        if message is _LOST:
            raise RelayLost("Messages for this channel may have been lost.")
        return message

    async def send(self, channel: str, message: dict) -> None:
        if "!" not in channel:
            await super().send(channel, message)
            return
        sent = self.send_nowait(channel, message)
        if sent is not None:
            await asyncio.shield(sent)  # a sender that gives up must not cancel the others' pipeline

    async def group_send(self, group: str, message: dict) -> None:
        await self.group_send_many([group], message)

    async def group_send_many(self, groups: Iterable[str], message: dict) -> None:
        """Send ``message`` once to every channel of every group: one round trip to read the
        members (per Redis host), then one ``PUBLISH`` per receiving process."""
        by_relay: dict[str, list[str]] = collections.defaultdict(list)
        for channel in await self._group_channels(groups):
            if "!" in channel:
                by_relay[_relay_id(channel)].append(channel)
        sent = self._deliver(by_relay, message)
        if sent is not None:
            await asyncio.shield(sent)

    async def group_add(self, group: str, channel: str) -> None:
        """channels-redis's ``group_add`` (the member's ZADD, then the group's EXPIRE) as one
        pipeline: one round trip instead of two. Every connection joins its user's group as it
        opens and its call's group as it joins, all at once on the hour."""
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        group_key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zadd(group_key, {channel: time.time()})
        pipe.expire(group_key, self.group_expiry)
        await pipe.execute()

    def create_pool(self, index: int):
        """channels-redis's pool for ``hosts[index]``, but one that waits for a free connection
        (up to the host's ``timeout``) instead of opening another. When a thousand connections
        closed at once, each one's ``group_discard`` opened a Redis connection of its own (2,040
        after a surge of 1,000 calls, each with redis-py's handshake and its package-metadata
        lookup), and all of them stayed open. A host without an ``address`` (a sentinel's) keeps
        channels-redis's pool."""
        host = dict(self.hosts[index])
        address = host.pop("address", None)
        if address is None:
            return super().create_pool(index)
        return aioredis.BlockingConnectionPool.from_url(address, **host)

    async def close_pools(self) -> None:
        """Stop this event loop's subscription (its channels end with ``RelayLost``), then close
        channels-redis's pools."""
        subscription = self._subscriptions.get(asyncio.get_running_loop())
        if subscription is not None:
            for task in (subscription.reader, subscription.sweeper):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (subscription.reader, subscription.sweeper) if t), return_exceptions=True)
        await super().close_pools()

    # --- For the consumer (realtime/consumers.py) --------------------------------------------

    def send_nowait(self, channel: str, message: dict) -> asyncio.Future | None:
        """Send without waiting: queued now, in order with every other send of this loop.
        Returns a future resolved once Redis has the message (or failed with why it could not),
        or ``None`` when the channel is on this loop and already has it."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        return self._deliver({_relay_id(channel): [channel]}, message)

    def set_receiver(self, channel: str, receiver: Receiver | None) -> None:
        """Let the consumer of ``channel`` take messages as they arrive, when ``receiver`` says
        it can (its socket writable, nothing of its own queued or being sent); otherwise they
        wait in the queue. A message is offered only while the queue is empty, so none overtakes
        another."""
        live = self._channels.get(channel)
        if live is not None:
            live.receiver = receiver

    # --- Sending --------------------------------------------------------------------------------

    def _deliver(self, by_relay: dict[str, list[str]], message: dict) -> asyncio.Future | None:
        """Put ``message`` to this loop's own channels at once, and queue it for every other relay;
        returns the future of the pipeline that publishes it, if any."""
        loop = asyncio.get_running_loop()
        local = self._subscriptions.get(loop)
        if local is not None and not local.lost and local.relay_id in by_relay:
            for channel in by_relay.pop(local.relay_id):
                self._enqueue(channel, message)
        if not by_relay:
            return None
        body = msgpack.packb(message, use_bin_type=True)
        outbox = self._outboxes.get(loop)
        if outbox is None:
            outbox = self._outboxes[loop] = _Outbox()
        for relay_id, channels in by_relay.items():
            outbox.pending.setdefault(relay_id, []).append((channels, body))
        if outbox.sent is None:
            outbox.sent = loop.create_future()
            outbox.sent.add_done_callback(_retrieve)
        if outbox.writer is None:
            outbox.writer = loop.create_task(self._write(outbox))
        return outbox.sent

    async def _write(self, outbox: _Outbox) -> None:
        """Hand the pending sends to Redis, a pipeline at a time, until none are left. What is
        sent while a pipeline is in flight waits for the next one: that is the batching."""
        try:
            while outbox.pending:
                pending, sent = outbox.pending, outbox.sent
                outbox.pending, outbox.sent = {}, None
                try:
                    await self._publish(pending)
                except Exception as error:
                    sent.set_exception(error)
                else:
                    sent.set_result(None)
        finally:
            outbox.writer = None

    async def _publish(self, pending: dict[str, list[tuple[list[str], bytes]]]) -> None:
        by_host: dict[int, list[tuple[str, bytes]]] = collections.defaultdict(list)
        for relay_id, entries in pending.items():
            key = self._relay_key(relay_id)
            by_host[self.consistent_hash(key)].append((key, msgpack.packb(entries, use_bin_type=True)))
        for index, publishes in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for key, payload in publishes:
                pipe.publish(key, payload)
            await pipe.execute()

    async def _group_channels(self, groups: Iterable[str]) -> list[str]:
        """The channels of ``groups``, each once: expired members dropped and the rest read in
        one pipeline per Redis host, as channels-redis's ``group_send`` does for one group."""
        groups = list(dict.fromkeys(groups))
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
        by_host: dict[int, list[str]] = collections.defaultdict(list)
        for group in groups:
            by_host[self.consistent_hash(group)].append(group)
        channels: dict[str, None] = {}  # an ordered set
        oldest_member = int(time.time()) - self.group_expiry
        for index, host_groups in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in host_groups:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=oldest_member)
                pipe.zrange(key, 0, -1)
            replies = await pipe.execute()
            for members in replies[1::2]:
                channels.update((name.decode("utf8"), None) for name in members)
        return list(channels)

    # --- Receiving ------------------------------------------------------------------------------

    def _relay_key(self, relay_id: str) -> str:
        return f"{self.prefix}:relay:{relay_id}"

    async def _subscription(self) -> _Subscription:
        """This loop's subscription, listening; a new one (a new relay id) after one failed, so
        that a channel of the failed one is never mistaken for a live one."""
        loop = asyncio.get_running_loop()
        subscription = self._subscriptions.get(loop)
        if subscription is None or subscription.lost:
            relay_id = f"{self.client_prefix}{next(_relay_numbers):x}"
            subscription = _Subscription(relay_id=relay_id, key=self._relay_key(relay_id), ready=loop.create_future())
            subscription.ready.add_done_callback(_retrieve)
            subscription.reader = loop.create_task(self._read(subscription))
            subscription.sweeper = loop.create_task(self._sweep(subscription))
            self._subscriptions[loop] = subscription
        await asyncio.shield(subscription.ready)
        return subscription

    async def _read(self, subscription: _Subscription) -> None:
        """Subscribe, then move every message of the subscription to its channels until the
        subscription fails; then end every channel of it with ``RelayLost``."""
        client = aioredis.Redis(connection_pool=self.create_pool(self.consistent_hash(subscription.key)))
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(subscription.key)
            while (reply := await pubsub.parse_response(block=True)) and reply[0] != b"subscribe":
                pass
            subscription.ready.set_result(None)
            while True:
                reply = await pubsub.parse_response(block=True)
                subscription.last_heard = time.monotonic()
                if reply and reply[0] == b"message":
                    self._dispatch(reply[2])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if subscription.ready.done():
                logger.error(
                    "The channel layer's subscription failed (%s); this process's connections re-sync",
                    type(error).__name__,
                )
            else:
                subscription.ready.set_exception(error)
        finally:
            self._end(subscription)
            try:
                await pubsub.aclose()
                await client.aclose(close_connection_pool=True)
            except Exception:  # noqa: S110 - the connection is already broken; nothing to save
                pass

    def _dispatch(self, payload: bytes) -> None:
        for channels, body in msgpack.unpackb(payload, raw=False):
            live = [channel for channel in channels if channel in self._channels]
            if not live:
                continue
            try:
                message = msgpack.unpackb(body, raw=False)  # once per process, however many channels
            except Exception as error:  # corrupt: its receivers re-sync
                logger.error("Could not read a channel-layer message (%s)", type(error).__name__)
                for channel in live:
                    self._lose(channel)
                continue
            for channel in live:
                self._enqueue(channel, message)

    def _enqueue(self, channel: str, message: dict) -> None:
        live = self._channels.get(channel)
        if live is None:  # the channel has ended
            return
        if live.receiver is not None and live.queue.empty():
            try:
                if live.receiver(message):
                    return
            except Exception:
                logger.exception("A channel's receiver failed; the message waits in its queue")
        if live.queue.qsize() >= self.capacity:
            while not live.queue.empty():  # its consumer has stopped reading
                live.queue.get_nowait()
            self._lose(channel)
            return
        live.queue.put_nowait(message)

    def _lose(self, channel: str) -> None:
        """End ``channel``: its receiver gets ``RelayLost`` after what its queue holds."""
        live = self._channels.pop(channel, None)
        if live is not None:
            live.queue.put_nowait(_LOST)

    def _end(self, subscription: _Subscription) -> None:
        subscription.lost = True
        if subscription.sweeper is not None:
            subscription.sweeper.cancel()
        if not subscription.ready.done():
            subscription.ready.set_exception(RelayLost("The subscription ended before it started."))
        for channel in [channel for channel in self._channels if _relay_id(channel) == subscription.relay_id]:
            self._lose(channel)

    async def _sweep(self, subscription: _Subscription) -> None:
        """Keep the subscription honest, every ``heartbeat_seconds`` (or ``expiry``, if shorter):

        1. If it has heard nothing for that long, publish it a heartbeat (an empty message).
        2. If it has heard nothing, heartbeat included, for twice that long, its link is dead
           without having said so (a Redis host gone without a reset, a link cut by a
           firewall): end it, so that its connections re-sync rather than wait for messages that
           no longer come.
        3. Every ``expiry`` seconds, forget its channels nobody has waited on for that long.
        """
        swept_at = time.monotonic()
        while True:
            await asyncio.sleep(min(self.heartbeat_seconds, self.expiry))
            now = time.monotonic()
            if now - subscription.last_heard >= 2 * self.heartbeat_seconds:
                logger.error("The channel layer's subscription went silent; this process's connections re-sync")
                subscription.reader.cancel()
                return
            if now - subscription.last_heard >= self.heartbeat_seconds:
                with contextlib.suppress(Exception):  # Redis unreachable: the reader will hear of it
                    await asyncio.wait_for(self._publish({subscription.relay_id: []}), self.heartbeat_seconds)
            if now - swept_at >= self.expiry:
                swept_at = now
                idle_before = now - self.expiry
                for channel, live in list(self._channels.items()):
                    if (
                        live.idle_since is not None
                        and live.idle_since <= idle_before
                        and _relay_id(channel) == subscription.relay_id
                    ):
                        del self._channels[channel]


def _relay_id(channel: str) -> str:
    return channel.split("!", 1)[0].rsplit(".", 1)[-1]


def _retrieve(future: asyncio.Future) -> None:
    """Mark a future's exception as seen: every waiter may have given up before it was set."""
    if not future.cancelled():
        future.exception()


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

"""The channel layer between server processes: group memberships in Redis as channels-redis keeps
them, messages over one Redis pub/sub subscription per process.

Why not channels-redis's own message path: it stores each message in a sorted set per process,
and the receiving process takes them out one ``BZPOPMIN`` at a time — a round trip per message,
one after another. Across two processes that capped a call's signaling at about a tenth of what
Node's socket.io relays through its Redis adapter, which is pub/sub (docs/performance.md).
Here Redis pushes a process's messages to it as a stream, and a process sends what its event loop
produced in one tick as one pipeline of ``PUBLISH``es, one per receiving process.

What channels-redis guaranteed, and how it still holds:

1. **Order.** Everything for one process arrives through its one subscription, in the order Redis
   ran the ``PUBLISH``es. A process runs one pipeline at a time, and a send returns only once
   Redis has run it: a message caused by one already received (an offer after
   ``call.participant_joined``) is published after it, so it arrives after it.
2. **Loss is never silent.** Pub/sub keeps nothing for a subscriber that is not listening. When a
   process's subscription fails (Redis restarted, the connection dropped, Redis cut off a
   subscriber that fell behind), every channel of that subscription receives ``RelayLost``
   after what already arrived; the consumer then closes with 4503 and its client reconnects and
   re-syncs (docs/realtime.md). A channel whose queue reaches the layer's capacity (its consumer
   stopped reading) is ended the same way rather than losing messages from the middle.
3. **Groups** are channels-redis's sorted sets, with their expiry; ``group_add`` and
   ``group_discard`` are unchanged.
4. **Encryption**: each message is serialized by the layer's serializer, so it is sealed under
   the layer's keys (core/channel_layers.py) on the wire as before, although pub/sub never writes
   it anywhere.

A message between two connections of the same process never reaches Redis: it goes straight to
the receiving channel's queue.

Channel names are ``<prefix>.<relay id>!<random>``; the relay id names one event loop of one
process (a process may run several loops: a health probe's, a test's). Redis channel of a relay:
``<layer prefix>:relay:<relay id>``.
"""

import asyncio
import collections
import itertools
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack
from channels_redis.core import aioredis

from core.channel_layers import FanOutRedisChannelLayer

logger = logging.getLogger(__name__)


class RelayLost(ConnectionError):
    """Messages for this channel may have been lost: its process's subscription failed, or the
    channel's queue overflowed. The receiver must re-sync."""


# Put in a channel's queue behind what it already holds, when the channel's messages may have
# been lost from then on.
_LOST = object()

_relay_numbers = itertools.count()


@dataclass(eq=False)
class _Subscription:
    """One event loop's end of the relay: the task that reads its Redis subscription into the
    queues of the channels it created."""

    relay_id: str
    key: str
    ready: asyncio.Future | None = None
    reader: asyncio.Task | None = None
    sweeper: asyncio.Task | None = None
    lost: bool = False


@dataclass(eq=False)
class _Channel:
    """A live channel: its queue, and since when nobody has waited on it (``None`` while
    someone does). One nobody waits on for the layer's expiry is forgotten, as channels-redis
    drops a message nobody takes within it; that is how a channel whose consumer has ended goes."""

    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    receivers: int = 0
    idle_since: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Outbox:
    """One event loop's sends not yet handed to Redis, by receiving relay, and the one task that
    hands them over, a pipeline at a time (so that they reach Redis in the order they were sent)."""

    pending: dict[str, list[tuple[list[str], bytes]]] = field(default_factory=dict)
    sent: asyncio.Future | None = None  # resolved when ``pending`` is in Redis
    writer: asyncio.Task | None = None


class RelayChannelLayer(FanOutRedisChannelLayer):
    """channels-redis's groups, and messages over one pub/sub subscription per event loop."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions: dict[asyncio.AbstractEventLoop, _Subscription] = {}
        # Every live channel of this layer's subscriptions, by name.
        self._channels: dict[str, _Channel] = {}
        self._outboxes: dict[asyncio.AbstractEventLoop, _Outbox] = {}

    # --- Channels -----------------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        """A channel of this event loop's subscription, which is listening before the name is
        returned: nothing sent to the name can be published before it is heard."""
        subscription = await self._subscription()
        channel = f"{prefix}.{subscription.relay_id}!{uuid.uuid4().hex}"
        self._channels[channel] = _Channel()
        return channel

    async def receive(self, channel: str) -> dict:
        """The next message for ``channel``, on the event loop that created it; ``RelayLost`` once
        messages for it may have been lost."""
        if "!" not in channel:
            return await super().receive(channel)
        live = self._channels.get(channel)
        if live is None:
            raise RelayLost("This channel has ended: messages for it may have been lost.")
        live.receivers += 1
        live.idle_since = None
        try:
            message = await live.queue.get()
        finally:
            live.receivers -= 1
            if not live.receivers:
                live.idle_since = time.monotonic()
        if message is _LOST:
            raise RelayLost("Messages for this channel may have been lost.")
        return message

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        if "!" not in channel:  # a general channel (none of ours): channels-redis's own path
            await super().send(channel, message)
            return
        await self._deliver({_relay_id(channel): [channel]}, message)

    async def group_send(self, group: str, message: dict) -> None:
        await self.group_send_many([group], message)

    async def group_send_many(self, groups: Iterable[str], message: dict) -> None:
        """Send ``message`` once to every channel of every group: one round trip to read the
        members (per Redis host), then one message per receiving process."""
        channels = await self._group_channels(groups)
        by_relay: dict[str, list[str]] = collections.defaultdict(list)
        for channel in channels:
            if "!" in channel:
                by_relay[_relay_id(channel)].append(channel)
        if by_relay:
            await self._deliver(by_relay, message)

    async def close_pools(self) -> None:
        """Stop this event loop's subscription (its channels end with ``RelayLost``), then close
        channels-redis's pools."""
        subscription = self._subscriptions.get(asyncio.get_running_loop())
        if subscription is not None and subscription.reader is not None:
            subscription.reader.cancel()
            await asyncio.gather(subscription.reader, return_exceptions=True)
        await super().close_pools()

    # --- Sending ------------------------------------------------------------------------------

    async def _deliver(self, by_relay: dict[str, list[str]], message: dict) -> None:
        """Put ``message`` in the queues of this loop's own channels at once, and publish it to
        every other relay; return once Redis has taken it."""
        local = self._subscriptions.get(asyncio.get_running_loop())
        if local is not None and not local.lost and local.relay_id in by_relay:
            for channel in by_relay.pop(local.relay_id):
                self._enqueue(channel, message)
        if not by_relay:
            return
        body = self.serialize(message)
        outbox = self._outbox()
        for relay_id, channels in by_relay.items():
            outbox.pending.setdefault(relay_id, []).append((channels, body))
        if outbox.sent is None:
            outbox.sent = asyncio.get_running_loop().create_future()
            outbox.sent.add_done_callback(_retrieve)
        sent = outbox.sent
        if outbox.writer is None:
            outbox.writer = asyncio.get_running_loop().create_task(self._write(outbox))
        # Shielded: a sender that gives up waiting must not cancel the others' pipeline.
        await asyncio.shield(sent)

    def _outbox(self) -> _Outbox:
        loop = asyncio.get_running_loop()
        outbox = self._outboxes.get(loop)
        if outbox is None:
            outbox = self._outboxes[loop] = _Outbox()
        return outbox

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
        """The channels of ``groups``, each once: expired members dropped and the rest read in one
        pipeline per Redis host, as channels-redis's ``group_send`` does one group at a time."""
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

    # --- Receiving ----------------------------------------------------------------------------

    def _relay_key(self, relay_id: str) -> str:
        return f"{self.prefix}:relay:{relay_id}"

    async def _subscription(self) -> _Subscription:
        """This loop's subscription, subscribed; a new one (a new relay id) after one failed, so
        that a channel of the failed one can never be mistaken for a live one."""
        loop = asyncio.get_running_loop()
        subscription = self._subscriptions.get(loop)
        if subscription is None or subscription.lost:
            relay_id = f"{self.client_prefix}{next(_relay_numbers):x}"
            subscription = _Subscription(relay_id=relay_id, key=self._relay_key(relay_id))
            subscription.ready = loop.create_future()
            subscription.ready.add_done_callback(_retrieve)
            subscription.reader = loop.create_task(self._read(subscription))
            subscription.sweeper = loop.create_task(self._sweep(subscription))
            self._subscriptions[loop] = subscription
        await asyncio.shield(subscription.ready)
        return subscription

    async def _read(self, subscription: _Subscription) -> None:
        """Subscribe, then move every message of the subscription into its channels' queues until
        the subscription fails; then end every channel of it with ``RelayLost``."""
        client = aioredis.Redis(connection_pool=self.create_pool(self.consistent_hash(subscription.key)))
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(subscription.key)
            while True:  # the subscribe confirmation first
                reply = await pubsub.parse_response(block=True)
                if reply and reply[0] == b"subscribe":
                    break
            subscription.ready.set_result(None)
            while True:
                reply = await pubsub.parse_response(block=True)
                if reply and reply[0] == b"message":
                    self._dispatch(subscription, reply[2])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not subscription.ready.done():
                subscription.ready.set_exception(error)
            else:
                logger.error(
                    "The channel layer's subscription failed (%s); this process's connections re-sync",
                    type(error).__name__,
                )
        finally:
            self._end(subscription)
            try:
                await pubsub.aclose()
                await client.aclose(close_connection_pool=True)
            except Exception:  # noqa: S110 - the connection is already broken; nothing to save
                pass

    def _dispatch(self, subscription: _Subscription, payload: bytes) -> None:
        for channels, body in msgpack.unpackb(payload, raw=False):
            live = [channel for channel in channels if channel in self._channels]
            if not live:
                continue
            try:
                message = self.deserialize(body)  # once per process, however many of its channels
            except Exception as error:  # sealed under a key this process lacks, or corrupt
                logger.error("Could not read a channel-layer message (%s); its receivers re-sync", type(error).__name__)
                for channel in live:
                    self._lose(channel)
                continue
            for channel in live:
                self._enqueue(channel, message)

    def _enqueue(self, channel: str, message: dict) -> None:
        live = self._channels.get(channel)
        if live is None:  # the channel's consumer has ended
            return
        if live.queue.qsize() >= self.capacity:
            # Its consumer has stopped reading: end the channel rather than lose messages from
            # the middle of its stream.
            while not live.queue.empty():
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
        if subscription.ready is not None and not subscription.ready.done():
            subscription.ready.set_exception(RelayLost("The subscription ended before it started."))
        for channel in [channel for channel in self._channels if _relay_id(channel) == subscription.relay_id]:
            self._lose(channel)

    async def _sweep(self, subscription: _Subscription) -> None:
        """Forget, every ``expiry`` seconds, the channels of this subscription nobody has waited on
        for that long."""
        while True:
            await asyncio.sleep(self.expiry)
            idle_before = time.monotonic() - self.expiry
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

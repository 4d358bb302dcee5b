"""The load generator of ``make bench-chat``: N conversations, each a doctor and a patient on two
sockets of our server, taking turns: one side sends, the other receives, then answers.

Two workloads over the same pairs, the same connections set-up and the same text:

- ``chat``: ``chat.send`` with the pair's conversation, the text and a client key; the message
  is stored (encrypted, with a receipt) before the server tells anyone, so the other side's
  ``chat.message`` is a message stored and delivered. The sender also gets its ``ack`` (which
  carries the stored message) and its own ``chat.message``; both are counted, not waited for.
- ``relay``: ``signal.offer`` / ``signal.answer`` in the pair's call with the same text as the
  SDP: the signaling relay, nothing stored. The ceiling for the chat figures.

One message is in flight per conversation (closed loop): when one side's message arrives, the
other side sends the next. The send→deliver time of each message is measured on the machine's
monotonic clock (both sockets of a pair live in the same process). Connecting reuses the
signaling load generator's client (ticket, handshake, ``connection.ready``, ``call.join``).

Bounded everywhere: connecting has a deadline, the run ends at a fixed instant, a message waits
at most ``message_timeout`` seconds for its delivery (then the same side sends again), and
draining and closing have deadlines. Loopback targets only.
"""

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "signaling"))

from loadgen import (
    ChannelsDialect,
    PairSpec,
    Plan,
    check_loopback,
    close_all,
    cpu_report,
    finish,
    latency_summary,
    loadgen_cpu,
    merges,
    run_workers,
    sample_cpu,
    split_connects,
    totals,
)

MODES = ("relay", "chat")
# Frames parsed in full and checked field by field at the start of each connection.
VALIDATED_PER_CONNECTION = 5


@dataclass
class ChatPairSpec(PairSpec):
    conversation_id: str = ""


def chat_text(size: int) -> str:
    """A chat message of ``size`` characters."""
    text = "Good morning doctor, the new dose is fine but I still wake up at night around three. "
    while len(text) < size:
        text += text
    return text[:size]


@dataclass
class Stats:
    delivered_in_window: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    delivered_total: int = 0
    sent_total: int = 0
    acks: int = 0
    acks_not_created: int = 0
    echoes: int = 0
    other_events: int = 0
    timeouts: int = 0
    timeouts_in_window: int = 0
    invalid: int = 0
    unexpected_frames: Counter = field(default_factory=Counter)
    error_frames: Counter = field(default_factory=Counter)
    closed_by_server: Counter = field(default_factory=Counter)


class Refused(Exception):
    pass


class Side:
    """One socket of a conversation and its reader."""

    def __init__(self, conversation: "Conversation", connection, user_id: str, peer_id: str) -> None:
        self.conversation = conversation
        self.connection = connection
        self.user_id = user_id
        self.peer_id = peer_id
        self.validated = 0
        self.closing = False
        self.sent = 0
        self.peer_marker = f'"sender_id":"{peer_id}"'
        self.reader = asyncio.create_task(self.read())

    def frame(self) -> str:
        conversation = self.conversation
        self.sent += 1
        if conversation.mode == "chat":
            data = {
                "conversation_id": conversation.spec.conversation_id,
                "body": conversation.text,
                "client_message_id": f"{conversation.tag}-{self.user_id[:8]}-{self.sent}",
            }
            return json.dumps({"type": "chat.send", "id": str(self.sent), "data": data}, separators=(",", ":"))
        kind = "signal.offer" if self.user_id == conversation.spec.a_id else "signal.answer"
        data = {"call_id": conversation.spec.call_id, "to": self.peer_id, "sdp": conversation.text}
        return json.dumps({"type": kind, "data": data}, separators=(",", ":"))

    def _check(self, text: str) -> bool:
        """Full check of a delivered frame: the right type, sender and text."""
        if self.validated >= VALIDATED_PER_CONNECTION:
            return True
        self.validated += 1
        conversation = self.conversation
        try:
            message = json.loads(text)
            data = message["data"]
            if conversation.mode == "chat":
                return (
                    message["type"] == "chat.message"
                    and data["sender_id"] == self.peer_id
                    and data["conversation_id"] == conversation.spec.conversation_id
                    and data["body"] == conversation.text
                    and [receipt["user_id"] for receipt in data["receipts"]] == [self.user_id]
                )
            return data.get("from") == self.peer_id and data.get("sdp") == conversation.text
        except (ValueError, KeyError, TypeError):
            return False

    async def read(self) -> None:
        conversation = self.conversation
        stats = conversation.stats
        chat = conversation.mode == "chat"
        try:
            async for text in self.connection:
                now = time.monotonic()
                if not isinstance(text, str):
                    stats.unexpected_frames["binary"] += 1
                elif chat and text.startswith('{"type":"chat.message"'):
                    if self.peer_marker in text[:400]:
                        if not self._check(text):
                            stats.invalid += 1
                        conversation.delivered(self, now)
                    else:
                        stats.echoes += 1  # the sender's own copy
                elif chat and text.startswith('{"type":"ack"'):
                    stats.acks += 1
                    if '"created":true' not in text:
                        stats.acks_not_created += 1
                elif not chat and text.startswith(('{"type":"signal.offer"', '{"type":"signal.answer"')):
                    if not self._check(text):
                        stats.invalid += 1
                    conversation.delivered(self, now)
                elif text.startswith('{"type":"error"'):
                    try:
                        code = str(json.loads(text)["data"]["code"])
                    except (ValueError, KeyError, TypeError):
                        code = "UNPARSEABLE_ERROR"
                    stats.error_frames[code] += 1
                    conversation.refused(code)
                elif text.startswith(('{"type":"presence.', '{"type":"call.')):
                    stats.other_events += 1  # the peer's presence, call events: not part of the workload
                else:
                    stats.unexpected_frames[text[:40]] += 1
        except ConnectionClosed:
            pass
        if not self.closing:
            code = str(self.connection.close_code)
            stats.closed_by_server[code] += 1
            conversation.refused(f"closed {code}")

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await self.connection.close()
        self.reader.cancel()


class Conversation:
    def __init__(self, spec: ChatPairSpec, mode: str, text: str, tag: str, stats: Stats) -> None:
        self.spec, self.mode, self.text, self.tag, self.stats = spec, mode, text, tag, stats
        self.plan: Plan | None = None
        self.waiter: asyncio.Future | None = None
        self.receiver: Side | None = None
        self.sent_at = 0.0
        self.a: Side | None = None
        self.b: Side | None = None

    def delivered(self, side: Side, now: float) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done() or side is not self.receiver:
            self.stats.unexpected_frames["late or duplicate delivery"] += 1
            return
        self.stats.delivered_total += 1
        plan = self.plan
        if plan is not None and plan.measure_from <= self.sent_at < plan.end:
            self.stats.latencies_ms.append((now - self.sent_at) * 1000.0)
        if plan is not None and plan.measure_from <= now < plan.end:
            self.stats.delivered_in_window += 1
        waiter.set_result(None)

    def refused(self, reason: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(Refused(reason))

    async def drive(self) -> None:
        """Take turns until the end of the run: A sends, B receives and sends, A receives..."""
        plan = self.plan
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, plan.start - time.monotonic()))
        sender, receiver = self.a, self.b
        while time.monotonic() < plan.end:
            if sender.connection.close_code is not None or receiver.connection.close_code is not None:
                return
            self.waiter = loop.create_future()
            self.receiver = receiver
            self.sent_at = time.monotonic()
            try:
                await sender.connection.send(sender.frame())
                self.stats.sent_total += 1
                await asyncio.wait_for(self.waiter, plan.round_trip_timeout)
            except TimeoutError:
                self.stats.timeouts += 1
                self.stats.timeouts_in_window += self.sent_at >= plan.measure_from
                continue  # the same side sends again
            except Refused:
                await asyncio.sleep(0.05)  # refused by the server: do not spin on errors
                continue
            except ConnectionClosed:
                return
            sender, receiver = receiver, sender


async def _open(dialect: ChannelsDialect, spec: ChatPairSpec, gate: asyncio.Semaphore, deadline: float):
    async with gate:
        a = await dialect.open(spec.a_id, spec.a_token, spec.call_id, deadline, spec.a_url or dialect.base_url)
        try:
            b = await dialect.open(spec.b_id, spec.b_token, spec.call_id, deadline, spec.b_url or dialect.base_url)
        except BaseException:
            await a.close()
            raise
    return a, b


async def worker_main(pipe, mode: str, base_url: str, specs: list[ChatPairSpec], options: dict) -> None:
    dialect = ChannelsDialect(base_url, "")
    stats = Stats()
    text = chat_text(options["text_chars"])
    gate = asyncio.Semaphore(options["connect_concurrency"])
    deadline = time.monotonic() + options["connect_timeout"]
    cpu_start = time.process_time()
    results = await asyncio.gather(*(_open(dialect, spec, gate, deadline) for spec in specs), return_exceptions=True)
    conversations: list[Conversation] = []
    opened, connect_errors, samples = split_connects(specs, results)
    for spec, result in opened:
        conversation = Conversation(spec, mode, text, options["tag"], stats)
        conversation.a = Side(conversation, result[0], spec.a_id, spec.b_id)
        conversation.b = Side(conversation, result[1], spec.b_id, spec.a_id)
        conversations.append(conversation)
    pipe.send(
        {
            "connected_pairs": len(conversations),
            "connect_errors": dict(connect_errors),
            "connect_error_samples": samples,
        }
    )
    message = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    sides = [side for conversation in conversations for side in (conversation.a, conversation.b)]
    if message.get("abort"):
        await close_all(sides)
        pipe.send({"aborted": True})
        return
    plan = Plan(**message)
    for conversation in conversations:
        conversation.plan = plan
    cpu_window: dict[str, float] = {}
    sampler = asyncio.create_task(sample_cpu(plan, cpu_window))
    drivers = [asyncio.create_task(conversation.drive()) for conversation in conversations]
    await sampler
    await finish(drivers, plan)
    await asyncio.sleep(0.2)  # acks and echoes of the last messages
    closed_early = sum(stats.closed_by_server.values())
    await close_all(sides)
    report = dict(stats.__dict__)
    report.update(
        {
            "unexpected_frames": dict(stats.unexpected_frames),
            "error_frames": dict(stats.error_frames),
            "closed_by_server": dict(stats.closed_by_server),
            "closed_by_server_during_run": closed_early,
            **cpu_report(cpu_window, cpu_start),
        }
    )
    pipe.send(report)


def run_point(
    mode: str,
    base_url: str,
    specs: list[ChatPairSpec],
    *,
    tag: str,
    procs: int = 2,
    warmup: float = 2.0,
    duration: float = 10.0,
    message_timeout: float = 10.0,
    drain_seconds: float = 5.0,
    connect_timeout: float = 120.0,
    connect_concurrency: int = 16,
    text_chars: int = 200,
    on_window=None,
) -> dict[str, Any]:
    """Connect every pair, run ``mode`` for a warm-up and a measured window, and return the figures.
    ``on_window(measure_from, end)`` is called once the instants are fixed."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode}")
    check_loopback(base_url)
    result, reports = run_workers(
        worker_main,
        ChatPairSpec,
        mode,
        base_url,
        specs,
        {
            "connect_timeout": connect_timeout,
            "connect_concurrency": connect_concurrency,
            "text_chars": text_chars,
            "tag": tag,
        },
        procs=procs,
        warmup=warmup,
        duration=duration,
        round_trip_timeout=message_timeout,
        drain_seconds=drain_seconds,
        on_window=on_window,
    )
    if reports is None:
        return result
    total, merged = totals(reports), merges(reports)
    latencies = [value for report in reports for value in report.get("latencies_ms", [])]
    cpu_window = [report.get("cpu_window_seconds", 0.0) for report in reports]
    delivered = total("delivered_in_window")
    result.update(
        {
            "window_seconds": duration,
            "delivered_in_window": delivered,
            "messages_per_second": delivered / duration,
            "latency_ms": latency_summary(latencies),
            "sent_total": total("sent_total"),
            "delivered_total": total("delivered_total"),
            "acks": total("acks"),
            "acks_not_created": total("acks_not_created"),
            "echoes": total("echoes"),
            "other_events": total("other_events"),
            "timeouts": total("timeouts"),
            "timeouts_in_window": total("timeouts_in_window"),
            "invalid": total("invalid"),
            "unexpected_frames": merged("unexpected_frames"),
            "error_frames": merged("error_frames"),
            "closed_by_server": merged("closed_by_server"),
            "closed_by_server_during_run": total("closed_by_server_during_run"),
            **loadgen_cpu(cpu_window, duration),
        }
    )
    fatal = [report["fatal"] for report in reports if "fatal" in report]
    if fatal:
        result["fatal"] = fatal
    return result

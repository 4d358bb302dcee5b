"""``make bench-chat``: chat messages stored and delivered over the socket, against the signaling
relay between the same pairs (no storage) measured in the same run as the ceiling
(docs/performance.md, "Chat").

For every number of conversations N and every repeat, the harness prepares N doctor/patient
pairs (bench/chat/setup.py: the care relationship, an ongoing call both joined, and their direct
conversation), starts the production server (``python -m config.serve``) on PostgreSQL and the
Redis channel layer, and runs one workload (bench/chat/chat_loadgen.py) for a warm-up and a
measured window:

- ``chat``: each side in turn sends ``chat.send``; the other receives ``chat.message``;
- ``relay``: each side in turn sends ``signal.offer`` / ``signal.answer``; the other receives it.

A fresh server per point; the two workloads alternate in order from one repeat to the next, so
load from elsewhere on the machine falls on both alike. Over exactly the measured window it
samples the server's CPU, the machine's, PostgreSQL's counters for the benchmark's database
(``pg_stat_database``, ``pg_stat_user_tables``) and the Redis server's command counter. Before
the first chat point of each N, setup.py counts one send in process (SQL statements, requests
that reach PostgreSQL, channel-layer messages). It prints a table and writes JSON to
``var/bench/``.

It reuses the signaling harness (bench/signaling/run.py) for the server environment, start and
stop, and process sampling, and the signaling load generator's client for connecting.

Everything is bounded: connect, message, drain and stop deadlines per point, and no point starts
after ``--max-minutes``. PostgreSQL and Redis must be on this machine; load goes to 127.0.0.1.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# First, so that ``run`` and ``loadgen`` are the signaling harness's modules.
sys.path.insert(0, str(HERE.parent / "signaling"))

import chat_loadgen  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from loadgen import LOOPBACK_HOSTS  # noqa: E402
from run import (  # noqa: E402 - the signaling harness
    PROJECT_ROOT,
    Run,
    WindowSampler,
    _fmt,
    check_redis,
    ensure_database,
    free_port,
    markdown_table,
    problem_parts,
    redis_server_pid,
    stop_server,
    tree_memory_mb,
    wait_for_port,
    window_cores,
    write_report,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/telehealth_bench_chat"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
# The spec's target: at least this share of the relay's rate at 250 conversations.
TARGET_SHARE = 1 / 3
TARGET_STATEMENTS = 4


# --- PostgreSQL and Redis counters ----------------------------------------------------------


def pg_counters(database_url: str) -> dict[str, Any]:
    """This database's counters. PostgreSQL publishes a backend's counts when it goes idle, at most
    once a second, so a 10-second window is right within about a second's worth."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as connection:
        database = connection.execute(
            "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated,"
            " tup_deleted FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        tables = connection.execute(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0), n_tup_ins, n_tup_upd, n_tup_del"
            " FROM pg_stat_user_tables"
        ).fetchall()
        messages = connection.execute("SELECT count(*) FROM messaging_message").fetchone()[0]
    names = ("transactions", "rows_returned", "rows_fetched", "rows_inserted", "rows_updated", "rows_deleted")
    return {
        **dict(zip(names, database, strict=True)),
        "tables": {
            name: {"scans": scans, "ins": ins, "upd": upd, "del": dele} for name, scans, ins, upd, dele in tables
        },
        "messages": messages,
    }


def pg_delta(before: dict, after: dict) -> dict[str, Any]:
    delta = {key: after[key] - before[key] for key in before if key not in ("tables",)}
    tables = {}
    for name, values in after["tables"].items():
        old = before["tables"].get(name, {})
        changed = {key: value - old.get(key, 0) for key, value in values.items()}
        if any(changed.values()):
            tables[name] = changed
    delta["tables"] = tables
    return delta


def redis_commands(url: str) -> int | None:
    """The Redis server's command counter: all databases, everyone using that server."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            return int(client.info("stats")["total_commands_processed"])
        finally:
            client.close()
    except redis.RedisError:
        return None


class CountingSampler(WindowSampler):
    def __init__(self, *args, database_url: str, redis_url: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.database_url, self.redis_url = database_url, redis_url

    def _sample(self, suffix: str) -> None:
        super()._sample(suffix)
        with contextlib.suppress(psycopg.Error):
            self.values["pg" + suffix] = pg_counters(self.database_url)
        self.values["redis_commands" + suffix] = redis_commands(self.redis_url)


# --- The harness ----------------------------------------------------------------------------


class ChatRun(Run):
    def server_env(self, layer: str) -> dict[str, str]:
        env = super().server_env(layer)
        # Each user sends several messages a second, far above a person's rate; the limit is
        # still checked (a Redis cache read and write per send), at a rate that never refuses.
        env["MESSAGE_THROTTLE_RATE"] = "1000000/s"
        return env

    def prepare_chat(self, conversations: int, count: bool) -> tuple[list[chat_loadgen.ChatPairSpec], dict | None]:
        out = self.workdir / f"chat-{conversations}.json"
        command = [sys.executable, str(HERE / "setup.py"), "--pairs", str(conversations), "--out", str(out)]
        command += ["--text-chars", str(self.arguments.text_chars)]
        if count:
            command.append("--count")
        setup = subprocess.run(  # noqa: S603 - our own interpreter and script, fixed arguments
            command,
            env=self.server_env("redis"),
            cwd=PROJECT_ROOT,
            timeout=900,
            capture_output=True,
            text=True,
        )
        if setup.returncode != 0:
            raise RuntimeError("setup.py failed: " + " | ".join(setup.stderr.strip().splitlines()[-3:]))
        result = json.loads(out.read_text())
        specs = [
            chat_loadgen.ChatPairSpec(
                a_id=item["a"]["id"],
                b_id=item["b"]["id"],
                call_id=item["call_id"],
                a_token=item["a"]["token"],
                b_token=item["b"]["token"],
                conversation_id=item["conversation_id"],
            )
            for item in result["pairs"]
        ]
        return specs, result.get("send")


def warmup_for(arguments: argparse.Namespace, conversations: int) -> float:
    """Unless given, 3 s plus 1 s per 125 conversations: in a closed loop every conversation's
    first message leaves at once, and the chat's send→deliver time is seconds at N=250."""
    return arguments.warmup if arguments.warmup is not None else 3.0 + conversations / 125


def measure(run: ChatRun, mode: str, conversations: int, repeat: int, count: bool) -> dict[str, Any]:
    arguments = run.arguments
    point: dict[str, Any] = {"mode": mode, "conversations": conversations, "repeat": repeat}
    point["load_average_start"] = os.getloadavg()
    try:
        specs, send = run.prepare_chat(conversations, count)
    except Exception as error:
        point["fatal"] = [f"{type(error).__name__}: {error}"]
        return point
    if send is not None:
        point["send"] = send
    port = free_port()
    process = run.start("uvicorn", "redis", port, f"chat-{mode}-{conversations}-{repeat}")
    sampler: CountingSampler | None = None

    def on_window(measure_from: float, end: float) -> None:
        nonlocal sampler
        sampler = CountingSampler(
            [process.pid],
            measure_from,
            end,
            redis_server_pid(run.redis_url),
            database_url=run.database_url,
            redis_url=run.redis_url,
        )
        sampler.start()
        print(
            f"         connected; measuring {arguments.duration:.0f} s after {warmup_for(arguments, conversations):.0f} s warm-up",
            flush=True,
        )

    try:
        stored_before = pg_counters(run.database_url)["messages"]
        wait_for_port(port, process, timeout=60)
        point.update(
            chat_loadgen.run_point(
                mode,
                f"ws://127.0.0.1:{port}",
                specs,
                tag=uuid.uuid4().hex[:10],
                procs=arguments.procs,
                warmup=warmup_for(arguments, conversations),
                duration=arguments.duration,
                message_timeout=arguments.message_timeout,
                # Messages sent late in the window are waited for, so slow ones count in the p99.
                drain_seconds=arguments.message_timeout,
                connect_timeout=30 + 0.25 * conversations,
                connect_concurrency=arguments.connect_concurrency,
                text_chars=arguments.text_chars,
                on_window=on_window,
            )
        )
        point["stored_during_point"] = pg_counters(run.database_url)["messages"] - stored_before
        if sampler is not None:
            sampler.join(timeout=15)
            values = sampler.values
            point.update(window_cores(values, arguments.duration))
            if "pg_to" in values and "pg_from" in values:
                point["pg"] = pg_delta(values["pg_from"], values["pg_to"])
            if values.get("redis_commands_to") is not None and values.get("redis_commands_from") is not None:
                point["redis_commands"] = values["redis_commands_to"] - values["redis_commands_from"]
        point["server_peak_rss_mb"] = tree_memory_mb(process.pid)[0]
        point["server_exited"] = process.poll()
    except Exception as error:  # one broken point must not lose the others
        point["fatal"] = [f"{type(error).__name__}: {error}"]
    finally:
        stop_server(process)
        process.log_file.close()  # type: ignore[attr-defined]
        point["load_average_end"] = os.getloadavg()
    return point


# --- Report ---------------------------------------------------------------------------------


def _per(value: float | None, messages: float | None, digits: int = 1) -> str:
    if value is None or not messages:
        return "-"
    return f"{value / messages:,.{digits}f}"


def problems(point: dict[str, Any]) -> str:
    parts = problem_parts(
        point,
        count_key="conversations",
        fatal_chars=160,
        timeouts="{timeouts} messages not delivered within the timeout",
        flagged=(
            ("unexpected_frames", "unexpected {}"),
            ("invalid", "{} wrong payloads"),
            ("acks_not_created", "{} acks not created"),
        ),
    )
    stored = point.get("stored_during_point")
    if point.get("mode") == "chat" and stored is not None and stored < point.get("delivered_total", 0):
        parts.append(f"delivered {point['delivered_total']} > stored {point['stored_during_point']}")
    return ", ".join(parts) or "none"


def table(points: list[dict[str, Any]]) -> str:
    header = (
        "| repeat | N | workload | msg/s | send→deliver p50 ms | p99 ms | server CPU (cores) | server CPU µs/msg "
        "| loadgen CPU (cores, busiest) | Redis CPU (cores) | machine busy (cores) | PG transactions/msg "
        "| PG rows written/msg | Redis commands/msg | load avg 1 min (start → end) | errors |"
    )
    rows = []
    for point in points:
        rate = point.get("messages_per_second")
        latency = point.get("latency_ms") or {}
        pg = point.get("pg") or {}
        duration = point.get("window_seconds") or 1
        delivered = point.get("delivered_in_window")
        written = (pg.get("rows_inserted", 0) + pg.get("rows_updated", 0)) if pg else None
        cpu = point.get("server_cpu_cores")
        load = f"{point['load_average_start'][0]:.2f} → {point.get('load_average_end', [0])[0]:.2f}"
        rows.append(
            [
                str(point["repeat"]),
                str(point["conversations"]),
                point["mode"],
                _fmt(rate),
                _fmt(latency.get("p50"), 1),
                _fmt(latency.get("p99"), 1),
                _fmt(cpu, 2),
                _per(cpu * 1e6 * duration if cpu is not None else None, delivered, 0),
                f"{_fmt(point.get('loadgen_cpu_cores'), 2)} ({_fmt(point.get('loadgen_busiest_proc'), 2)})",
                _fmt(point.get("redis_cpu_cores"), 2),
                _fmt(point.get("machine_busy_cores"), 2),
                _per(pg.get("transactions"), delivered, 2),
                _per(written, delivered, 2),
                _per(point.get("redis_commands"), delivered, 1),
                load,
                problems(point),
            ]
        )
    return markdown_table(header, rows)


def summary(points: list[dict[str, Any]], counts: dict[int, dict]) -> str:
    lines = []
    for conversations in sorted({point["conversations"] for point in points}):

        def rates(mode: str, conversations: int = conversations) -> list[float]:
            return [
                point["messages_per_second"]
                for point in points
                if point["conversations"] == conversations
                and point["mode"] == mode
                and not point.get("fatal")
                and point.get("messages_per_second")
            ]

        chat, relay = rates("chat"), rates("relay")
        ratios = [
            c["messages_per_second"] / r["messages_per_second"]
            for c in points
            for r in points
            if c["conversations"] == r["conversations"] == conversations
            and c["repeat"] == r["repeat"]
            and c["mode"] == "chat"
            and r["mode"] == "relay"
            and c.get("messages_per_second")
            and r.get("messages_per_second")
        ]
        line = f"N={conversations}: chat {', '.join(_fmt(v) for v in chat) or '-'} msg/s; relay {', '.join(_fmt(v) for v in relay) or '-'} msg/s"
        if ratios:
            line += f"; chat/relay per repeat {', '.join(f'{v:.3f}' for v in ratios)} (median {statistics.median(ratios):.3f}, target ≥ {TARGET_SHARE:.3f} at 250)"
        lines.append(line)
    for conversations, send in sorted(counts.items()):
        lines.append(
            f"One send (N={conversations}, in process): {send['statements'] - send['transaction_control']} SQL statements "
            f"(target ≤ {TARGET_STATEMENTS}) plus {send['transaction_control']} for the transaction (BEGIN, COMMIT): "
            f"{send['statements']} requests to PostgreSQL; "
            f"{send['channel_layer_messages']} fan-out(s) "
            f"({'; '.join(item['event'] + ' to ' + str(len(item['groups'])) + ' groups' for item in send['fan_out'])}); "
            f"sequential send {_fmt(send['sequential_send_ms_p50'], 2)} ms p50, {100 * (send['sequential_sql_share'] or 0):.0f} % of it in SQL"
        )
        for index, sql in enumerate(send["sql"], 1):
            lines.append(f"  {index}. {sql[:200]}")
    return "\n".join(lines)


# --- Entry point ----------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", default="50,250", help="Comma-separated N (default 50,250).")
    parser.add_argument("--modes", default="relay,chat", help="Any of relay, chat (default both).")
    parser.add_argument("--duration", type=float, default=10.0, help="Measured seconds per point.")
    parser.add_argument("--warmup", type=float, default=None, help="Seconds before the window (default 3 + N/125).")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of every point (default 2).")
    parser.add_argument("--procs", type=int, default=3, help="Load generator processes.")
    parser.add_argument("--text-chars", type=int, default=200, help="Characters per message (chat body, relay SDP).")
    parser.add_argument("--message-timeout", type=float, default=30.0, help="Seconds a message may take to arrive.")
    parser.add_argument("--connect-concurrency", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="Start no new point after this.")
    parser.add_argument("--quick", action="store_true", help="Smoke check: N=20, 3 s, 1 s warm-up, one repeat.")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_CHAT_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_CHAT_REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "var" / "bench"))
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.conversations, arguments.duration, arguments.warmup, arguments.repeats = "20", 3.0, 1.0, 1
    arguments.counts = [int(value) for value in arguments.conversations.split(",") if value.strip()]
    arguments.mode_list = [value.strip() for value in arguments.modes.split(",") if value.strip()]
    if any(mode not in chat_loadgen.MODES for mode in arguments.mode_list):
        parser.error("--modes: relay, chat")
    if any(count < 1 or count > 2000 for count in arguments.counts):
        parser.error("--conversations values must be between 1 and 2000")
    if not 1 <= arguments.repeats <= 10:
        parser.error("--repeats must be between 1 and 10")
    if not 1 <= arguments.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    if not arguments.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a PostgreSQL URL")
    for url in (arguments.database_url, arguments.redis_url):
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            parser.error(f"{url}: the benchmark uses services on this machine only")
    # The signaling harness's Run reads these.
    arguments.node = ""
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    check_redis(arguments.redis_url)
    ensure_database(arguments.database_url)
    run = ChatRun(arguments)
    points: list[dict[str, Any]] = []
    counts: dict[int, dict] = {}
    plan = []
    for repeat in range(1, arguments.repeats + 1):
        for conversations in arguments.counts:
            modes = arguments.mode_list if repeat % 2 else list(reversed(arguments.mode_list))
            plan += [(mode, conversations, repeat) for mode in modes]
    started = time.monotonic()
    started_at = datetime.now(UTC)
    try:
        for mode, conversations, repeat in plan:
            if time.monotonic() - started > arguments.max_minutes * 60:
                points.append(
                    {
                        "mode": mode,
                        "conversations": conversations,
                        "repeat": repeat,
                        "fatal": ["skipped: --max-minutes"],
                        "load_average_start": os.getloadavg(),
                    }
                )
                continue
            print(f"[{time.monotonic() - started:6.0f} s] {mode} N={conversations} repeat {repeat} ...", flush=True)
            count = mode == "chat" and conversations not in counts
            point = measure(run, mode, conversations, repeat, count)
            if "send" in point:
                counts[conversations] = point["send"]
            print(
                f"         {_fmt(point.get('messages_per_second'))} msg/s, p50 {_fmt((point.get('latency_ms') or {}).get('p50'), 1)} ms,"
                f" p99 {_fmt((point.get('latency_ms') or {}).get('p99'), 1)} ms, load {point['load_average_start'][0]:.2f},"
                f" {problems(point)}",
                flush=True,
            )
            points.append(point)
    finally:
        run.cleanup()
    settings = {
        "conversations": arguments.counts,
        "duration": arguments.duration,
        "warmup": arguments.warmup if arguments.warmup is not None else "3 + N/125",
        "repeats": arguments.repeats,
        "procs": arguments.procs,
        "text_chars": arguments.text_chars,
        "database": "postgresql",
        "layer": "redis",
    }
    latest = write_report(Path(arguments.out), "chat", started_at, started, settings, points, send=counts)
    print()
    print(table(points))
    print()
    print(summary(points, counts))
    print()
    print(f"JSON: {latest}; server logs: {run.log_dir}")
    return 1 if any(point.get("fatal") for point in points) else 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench-surge``: P calls set up at the same instant (the top of the hour) on PostgreSQL,
with one and with two server processes, beside socket.io connecting as many clients in the same
run (docs/performance.md, "Surge").

For every P, every number of server processes and each target, the harness starts the servers
on free loopback ports, prepares P doctor/patient pairs in ongoing calls
(bench/signaling/django_setup.py, through the signaling harness's ``Run.prepare``), and lets
every client (2 per call) set itself up at once (bench/surge/surge_loadgen.py): the socket
opened with its access token, ``call.join``. With two processes a call's two clients go to
different ones, as a load balancer would place them. Targets:

- ``uvicorn``: the production server, ``python -m config.serve`` per process, the Redis channel
  layer, PostgreSQL;
- ``uvicorn-ticket``: the same server, each client taking a ticket (``POST realtime/tickets/``)
  and opening the socket with it, as clients that cannot offer subprotocols do;
- ``socketio``: bench/signaling/node/relay.js, one process, or with two the processes sharing
  ``@socket.io/redis-adapter`` (the signaling harness's ``socketio-redis``); it opens the socket
  and nothing else (no authentication, no database).

It prints, per point: the time until the last client was set up, per-client set-up p50/p95/p99
(from the common start to the ``ack``, retries included), the server processes' CPU from the
start until every client was done (read from /proc through psutil) per client, and failures by
stage with their status or close codes — 503s with ``Retry-After`` (retried with jittered
backoff, bounded in count and time) apart from 500s. JSON goes to ``var/bench/``.

Bounded: each point has a deadline (``--deadline``), retries are at most ``--max-attempts`` per
client, no point starts after ``--max-minutes``. PostgreSQL and Redis must be on this machine,
and load goes to 127.0.0.1 only.
"""

import argparse
import asyncio
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# First, so that ``run`` and ``loadgen`` are the signaling harness's modules.
sys.path.insert(0, str(HERE.parent / "signaling"))

import surge_loadgen  # noqa: E402
from loadgen import (  # noqa: E402
    DIALECTS,
    LOOPBACK_HOSTS,
    PairSpec,
    latency_summary,
    merges,
    reference_pairs,
    run_workers,
    totals,
)
from run import (  # noqa: E402 - the signaling harness
    PROJECT_ROOT,
    Run,
    _fmt,
    check_redis,
    ensure_database,
    free_port,
    machine_busy_seconds,
    markdown_table,
    split_pairs,
    stop_server,
    tree_cpu_seconds,
    tree_memory_mb,
    wait_for_port,
    write_report,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/telehealth_bench_surge"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
# Our server, with the dialect its clients speak: the access token in the handshake, or a ticket.
OUR_TARGETS = {"uvicorn": "channels", "uvicorn-ticket": "channels-ticket"}
TARGETS = (*OUR_TARGETS, "socketio")
# The targets for 1,000 calls on two processes.
TARGET_CALLS, TARGET_PROCS, TARGET_ALL_JOINED_S, TARGET_CPU_MS = 1000, 2, 20.0, 8.0


class SurgeRun(Run):
    def server_env(self, layer: str) -> dict[str, str]:
        """The signaling harness's environment, with the per-user ticket and connect limits
        (10 a minute) checked but never refusing: points follow each other within a minute with
        the same users, and a retried client takes a new ticket; a real surge has each user
        connect once."""
        env = super().server_env(layer)
        env["REALTIME_TICKET_THROTTLE_RATE"] = "1000000/min"
        env["REALTIME_CONNECT_THROTTLE_RATE"] = "1000000/min"
        return env


class SetUpSampler(threading.Thread):
    """The server's CPU and the machine's busy time at the plan's start and at the instant the
    last worker process reached the barrier (every client set up, or out of attempts or time)."""

    def __init__(self, pids: list[int], start: float, end: float, barrier_dir: Path, procs: int) -> None:
        super().__init__(daemon=True)
        self.pids, self.start_at, self.end, self.barrier_dir, self.procs = pids, start, end, barrier_dir, procs
        self.values: dict[str, float] = {}

    def _sample(self, suffix: str) -> None:
        self.values["server" + suffix] = sum(tree_cpu_seconds(pid) for pid in self.pids)
        self.values["machine" + suffix] = machine_busy_seconds()
        self.values["at" + suffix] = time.monotonic()

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.monotonic()))
        self._sample("_from")
        while len(list(self.barrier_dir.iterdir())) < self.procs and time.monotonic() < self.end:
            time.sleep(0.02)
        self._sample("_to")


def start_servers(run: SurgeRun, target: str, copies: int, calls: int) -> tuple[list[int], list]:
    ports = [free_port() for _ in range(copies)]
    # Our server, or socket.io: on several processes sharing them through the Redis adapter.
    kind = "uvicorn" if target in OUR_TARGETS else target if copies == 1 else "socketio-redis"
    processes = [
        run.start(kind, "redis", port, f"surge-{target}-x{copies}-{calls}-{index}") for index, port in enumerate(ports)
    ]
    return ports, processes


def warm_up(kind: str, spec: PairSpec, ports: list[int]) -> None:
    """Set one pair up on every process before the surge, then close it: a server that has been
    up for a while has loaded what a first request loads lazily (URL resolver, serializers,
    the database pool's connections), and that one-off cost would otherwise be spread over the
    surge's clients — a whole second over 100 of them in the quick run."""

    async def both() -> None:
        dialect = DIALECTS[kind](f"ws://127.0.0.1:{ports[0]}", "")
        deadline = time.monotonic() + 30
        for index, port in enumerate(ports):
            peer = f"ws://127.0.0.1:{ports[(index + 1) % len(ports)]}"
            a = await dialect.open(spec.a_id, spec.a_token, spec.call_id, deadline, f"ws://127.0.0.1:{port}")
            b = await dialect.open(spec.b_id, spec.b_token, spec.call_id, deadline, peer)
            await a.close()
            await b.close()

    asyncio.run(both())


def measure(run: SurgeRun, target: str, calls: int, copies: int) -> dict[str, Any]:
    arguments = run.arguments
    point: dict[str, Any] = {"target": target, "calls": calls, "clients": 2 * calls, "server_procs": copies}
    point["load_average_start"] = os.getloadavg()
    try:
        # One pair more than the surge's, for the warm-up.
        *specs, spare = run.prepare("redis", calls + 1) if target in OUR_TARGETS else reference_pairs(calls + 1)
    except Exception as error:
        point["fatal"] = [f"{type(error).__name__}: {error}"]
        return point
    ports, processes = start_servers(run, target, copies, calls)
    split_pairs(specs, ports)
    procs = max(1, min(arguments.procs, len(specs)))
    barrier_dir = run.workdir / f"barrier-{uuid.uuid4().hex[:8]}"
    barrier_dir.mkdir()
    sampler: SetUpSampler | None = None

    def on_window(start: float, end: float) -> None:
        nonlocal sampler
        sampler = SetUpSampler([process.pid for process in processes], start, end, barrier_dir, procs)
        sampler.start()

    try:
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process, timeout=60)
        kind = OUR_TARGETS.get(target, "socketio")
        warm_up(kind, spare, ports)
        figures, reports = run_workers(
            surge_loadgen.surge_main,
            PairSpec,
            kind,
            f"ws://127.0.0.1:{ports[0]}",
            specs,
            {
                "connect_timeout": 60,
                "max_attempts": arguments.max_attempts,
                "barrier_dir": str(barrier_dir),
                "procs": procs,
            },
            procs=procs,
            warmup=0.0,
            duration=arguments.deadline,
            round_trip_timeout=0.0,
            drain_seconds=10.0,
            on_window=on_window,
        )
        if reports is None or any("fatal" in report for report in reports):
            point["fatal"] = figures.get("fatal") or [report["fatal"] for report in reports or [] if "fatal" in report]
        else:
            point.update(merge(reports))
        if sampler is not None:
            sampler.join(timeout=arguments.deadline + 15)
            point.update(set_up_cpu(sampler.values, point.get("clients", 0)))
        point["server_peak_rss_mb"] = sum(tree_memory_mb(process.pid)[0] for process in processes)
        point["server_exited"] = [process.poll() for process in processes]
    except Exception as error:  # one broken point must not lose the others
        point["fatal"] = [f"{type(error).__name__}: {error}"]
    finally:
        for process in processes:
            stop_server(process)
            process.log_file.close()  # type: ignore[attr-defined]
        shutil.rmtree(barrier_dir, ignore_errors=True)
        point["load_average_end"] = os.getloadavg()
    return point


def merge(reports: list[dict]) -> dict[str, Any]:
    total, merged = totals(reports), merges(reports)
    setup = [value for report in reports for value in report["setup_ms"]]
    joined = total("joined")
    return {
        "clients": total("clients"),
        "joined": joined,
        # Until the last client was set up; only "all joined" if none failed.
        "last_joined_s": max(setup) / 1000 if setup else None,
        "setup_ms": latency_summary(setup),
        "refusals": merged("refusals"),
        "failures": merged("failures"),
        "retried_clients": total("retried_clients"),
        "loadgen_cpu_seconds": round(sum(report["cpu_seconds"] for report in reports), 2),
    }


def set_up_cpu(values: dict[str, float], clients: int) -> dict[str, Any]:
    if "server_to" not in values:
        return {}
    seconds = values["at_to"] - values["at_from"]
    server = values["server_to"] - values["server_from"]
    return {
        "set_up_window_s": round(seconds, 2),
        "server_cpu_seconds": round(server, 2),
        "server_cpu_ms_per_client": server * 1000 / clients if clients else None,
        "server_cpu_cores": server / seconds if seconds > 0 else None,
        "machine_busy_cores": (values["machine_to"] - values["machine_from"]) / seconds if seconds > 0 else None,
    }


# --- Report ---------------------------------------------------------------------------------


def status_counts(point: dict[str, Any]) -> Counter:
    """Answers by class over every attempt (retried and final): 503 apart from other 5xx."""
    counts: Counter = Counter()
    for key, count in [*point.get("refusals", {}).items(), *point.get("failures", {}).items()]:
        code = key.split(" ", 1)[1] if " " in key else key
        if code == "503":
            counts["503"] += count
        elif code.isdigit() and code.startswith("5"):
            counts["5xx other"] += count
        elif code.startswith("close 1013"):
            counts["close 1013"] += count
    return counts


def _counter(values: dict[str, int]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(values.items())) or "none"


def table(points: list[dict[str, Any]]) -> str:
    header = (
        "| P calls | clients | target | server procs | joined | last joined s | set-up p50 ms | p95 ms | p99 ms "
        "| server CPU ms/client | server CPU (cores) | machine busy (cores) | 503 | other 5xx | close 1013 "
        "| failed (stage code: clients) | retried (stage code: attempts) | load avg 1 min (start → end) |"
    )
    rows = []
    for point in points:
        setup = point.get("setup_ms") or {}
        counts = status_counts(point)
        failed = _counter(point.get("failures", {}))
        if point.get("fatal"):
            failed = "FAILED: " + "; ".join(map(str, point["fatal"]))[:160]
        load = point.get("load_average_start", [0])[0], point.get("load_average_end", [0])[0]
        rows.append(
            [
                str(point["calls"]),
                str(point.get("clients", "-")),
                point["target"],
                str(point["server_procs"]),
                str(point.get("joined", "-")),
                _fmt(point.get("last_joined_s"), 1),
                _fmt(setup.get("p50"), 0),
                _fmt(setup.get("p95"), 0),
                _fmt(setup.get("p99"), 0),
                _fmt(point.get("server_cpu_ms_per_client"), 2),
                _fmt(point.get("server_cpu_cores"), 2),
                _fmt(point.get("machine_busy_cores"), 2),
                str(counts["503"]),
                str(counts["5xx other"]),
                str(counts["close 1013"]),
                failed,
                _counter(point.get("refusals", {})),
                f"{load[0]:.2f} → {load[1]:.2f}",
            ]
        )
    return markdown_table(header, rows)


def verdict(points: list[dict[str, Any]]) -> str:
    """The issue's targets, on the point they are set for."""
    lines = []
    for point in points:
        if (point["target"], point["calls"], point["server_procs"]) != ("uvicorn", TARGET_CALLS, TARGET_PROCS):
            continue
        if point.get("fatal"):
            lines.append(f"{TARGET_CALLS} calls on {TARGET_PROCS} processes: not measured")
            continue
        counts = status_counts(point)
        fivexx = counts["503"] + counts["5xx other"]
        all_joined = point["joined"] == point["clients"]
        last = point.get("last_joined_s")
        cpu = point.get("server_cpu_ms_per_client")
        checks = [
            (f"zero 5xx: {fivexx} ({counts['503']} 503, {counts['5xx other']} other)", fivexx == 0),
            (
                f"every client joined within {TARGET_ALL_JOINED_S:.0f} s: {point['joined']} of {point['clients']}, "
                f"last at {_fmt(last, 1)} s",
                all_joined and last is not None and last <= TARGET_ALL_JOINED_S,
            ),
            (
                f"≤ {TARGET_CPU_MS:.0f} ms server CPU per client: {_fmt(cpu, 2)} ms",
                cpu is not None and cpu <= TARGET_CPU_MS,
            ),
        ]
        for text, met in checks:
            lines.append(f"{'met' if met else 'NOT met'}: {text}")
    return "\n".join(lines)


# --- Entry point ----------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", default="500,1000", help="Comma-separated P, calls set up at once (default 500,1000)."
    )
    parser.add_argument("--server-procs", default="1,2", help="Comma-separated numbers of server processes (1,2).")
    parser.add_argument("--targets", default="uvicorn,socketio", help=f"Any of {', '.join(TARGETS)}.")
    parser.add_argument("--deadline", type=float, default=120.0, help="Seconds a point's clients have to set up.")
    parser.add_argument("--max-attempts", type=int, default=6, help="Attempts per client, the first included.")
    parser.add_argument("--procs", type=int, default=3, help="Load generator processes (pairs are split).")
    parser.add_argument("--max-minutes", type=float, default=20.0, help="Start no new point after this.")
    parser.add_argument("--quick", action="store_true", help="Smoke check: P=50, 30 s deadline.")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_SURGE_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_SURGE_REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--node", default=shutil.which("node") or "node")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "var" / "bench"))
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.calls, arguments.deadline = "50", 30.0
    arguments.call_counts = [int(value) for value in arguments.calls.split(",") if value.strip()]
    arguments.proc_counts = [int(value) for value in arguments.server_procs.split(",") if value.strip()]
    arguments.target_list = [value.strip() for value in arguments.targets.split(",") if value.strip()]
    if any(target not in TARGETS for target in arguments.target_list):
        parser.error(f"--targets: {', '.join(TARGETS)}")
    if any(count < 1 or count > 2000 for count in arguments.call_counts):
        parser.error("--calls values must be between 1 and 2000")
    if any(count < 1 or count > 4 for count in arguments.proc_counts):
        parser.error("--server-procs values must be between 1 and 4")
    if not 5 <= arguments.deadline <= 300:
        parser.error("--deadline must be between 5 and 300 seconds")
    if not 1 <= arguments.max_attempts <= 10:
        parser.error("--max-attempts must be between 1 and 10")
    if not arguments.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a PostgreSQL URL")
    for url in (arguments.database_url, arguments.redis_url):
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            parser.error(f"{url}: the benchmark uses services on this machine only")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    node_modules = HERE.parent / "signaling" / "node" / "node_modules"
    if "socketio" in arguments.target_list and not (node_modules / "@socket.io" / "redis-adapter").is_dir():
        raise SystemExit("socket.io is not installed: npm ci --prefix bench/signaling/node")
    check_redis(arguments.redis_url)
    ensure_database(arguments.database_url)
    run = SurgeRun(arguments)
    plan = [
        (target, calls, copies)
        for calls in arguments.call_counts
        for copies in arguments.proc_counts
        for target in arguments.target_list
    ]
    points: list[dict[str, Any]] = []
    started = time.monotonic()
    started_at = datetime.now(UTC)
    try:
        for target, calls, copies in plan:
            if time.monotonic() - started > arguments.max_minutes * 60:
                points.append(
                    {"target": target, "calls": calls, "server_procs": copies, "fatal": ["skipped: --max-minutes"]}
                )
                continue
            print(f"[{time.monotonic() - started:6.0f} s] {target} x{copies}, {calls} calls ...", flush=True)
            point = measure(run, target, calls, copies)
            setup = point.get("setup_ms") or {}
            print(
                f"         {point.get('joined', 0)} of {point.get('clients')} set up, last at "
                f"{_fmt(point.get('last_joined_s'), 1)} s, p50 {_fmt(setup.get('p50'), 0)} ms, "
                f"{_fmt(point.get('server_cpu_ms_per_client'), 2)} ms server CPU per client, "
                f"failed {_counter(point.get('failures', {}))}, retried {_counter(point.get('refusals', {}))}, "
                f"load {point['load_average_start'][0]:.2f}"
                + (f", FATAL {point['fatal']}" if point.get("fatal") else ""),
                flush=True,
            )
            points.append(point)
    finally:
        run.cleanup()
    settings = {
        "calls": arguments.call_counts,
        "server_procs": arguments.proc_counts,
        "deadline": arguments.deadline,
        "max_attempts": arguments.max_attempts,
        "procs": arguments.procs,
        "database": "postgresql",
        "layer": "redis",
    }
    latest = write_report(Path(arguments.out), "surge", started_at, started, settings, points)
    print()
    print(table(points))
    print()
    print(verdict(points))
    print()
    print(f"JSON: {latest}; server logs: {run.log_dir}")
    return 1 if any(point.get("fatal") for point in points) else 0


if __name__ == "__main__":
    sys.exit(main())

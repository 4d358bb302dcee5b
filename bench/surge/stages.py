"""What each step of a client's set-up costs the server: the ticket, the handshake (with
``connection.ready``) and ``call.join``, one step at a time for all clients, with at most
``--concurrency`` in flight (docs/performance.md, "Surge"). Two floors come first, as many times:
an HTTP request that does nothing (a 404) and a handshake refused at once (an unknown ticket),
what the server and the frameworks cost before any of our work.

``make bench-surge`` measures the steps together, all at once, where queues, retries and
contention add to the cost; this measures each step alone, so a change to one of them shows in
its own figure. One server process (``python -m config.serve``, PostgreSQL and the Redis layer,
the surge harness's environment) and P prepared calls, as ``bench/surge/run.py`` sets them up;
the server's CPU time (psutil, children included) is read before and after each step and
divided by the number of clients. Figures, not a test: nothing passes or fails. Load goes to
127.0.0.1 only, every step is bounded by ``--deadline``.

    bench/surge/stages.py --calls 150 --concurrency 1
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "signaling"))

from loadgen import DIALECTS, _ws_connect  # noqa: E402

# The surge harness by its path: ``run`` on the import path is the signaling harness it builds on.
_spec = importlib.util.spec_from_file_location("surge_run", HERE / "run.py")
surge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(surge)


async def _bounded(items: list, step, concurrency: int) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(item):
        async with gate:
            return await step(item)

    return await asyncio.gather(*(one(item) for item in items))


async def measure(url: str, clients: list[tuple[str, str]], pid: int, concurrency: int, deadline: float) -> dict:
    """Server CPU ms per client and wall seconds of each step, in order."""
    dialect = DIALECTS["channels"](url, "")
    figures: dict[str, tuple[float, float]] = {}
    until = time.monotonic() + deadline

    async def step(name: str, items: list, work) -> list:
        cpu, started = surge.tree_cpu_seconds(pid), time.monotonic()
        results = await _bounded(items, work, concurrency)
        figures[name] = ((surge.tree_cpu_seconds(pid) - cpu) * 1000 / len(items), time.monotonic() - started)
        return results

    async def handshake(ticket: str):
        connection = await _ws_connect(f"{url}/ws/?ticket={ticket}", until)
        ready = json.loads(await connection.recv())
        if ready.get("type") != "connection.ready":
            raise RuntimeError(f"handshake answered {ready}")
        return connection

    async def join(item):
        connection, call_id = item
        await connection.send(json.dumps({"type": "call.join", "id": "j", "data": {"call_id": call_id}}))
        while True:  # events (presence, participant joined) may come before the ack
            reply = json.loads(await asyncio.wait_for(connection.recv(), max(0.1, until - time.monotonic())))
            if reply.get("id") == "j":
                if reply.get("type") != "ack":
                    raise RuntimeError(f"call.join answered {reply}")
                return

    async def bare_request(_client) -> None:
        """What any HTTP request costs before our code does anything: a 404."""
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            f"GET /api/v1/no-such-route/ HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), max(0.1, until - time.monotonic()))
        writer.close()
        if not answer.startswith(b"HTTP/1.1 404"):
            raise RuntimeError(f"the bare request answered {answer[:60]!r}")

    async def refused_handshake(_client) -> None:
        """What a handshake costs that our code refuses at once: a ticket nobody issued (4401)."""
        connection = await _ws_connect(f"{url}/ws/?ticket=unknown", until)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(connection.recv(), max(0.1, until - time.monotonic()))
        if connection.close_code != 4401:
            raise RuntimeError(f"the refused handshake closed {connection.close_code}")

    await step("floor: an HTTP request that does nothing (404)", clients, bare_request)
    await step("floor: a handshake refused (unknown ticket)", clients, refused_handshake)
    tickets = await step("ticket", clients, lambda client: dialect.ticket(client[0], until, url))
    connections = await step("handshake and connection.ready", tickets, handshake)
    try:
        await step("call.join", [(c, call_id) for c, (_, call_id) in zip(connections, clients, strict=True)], join)
    finally:
        for connection in connections:
            await connection.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=150, help="Calls prepared; two clients each.")
    parser.add_argument("--concurrency", type=int, default=1, help="Clients in flight at once within a step.")
    parser.add_argument("--deadline", type=float, default=300.0, help="Seconds the three steps may take.")
    options, rest = parser.parse_known_args(argv)
    arguments = surge.parse_arguments(["--calls", str(options.calls), *rest])
    surge.check_redis(arguments.redis_url)
    surge.ensure_database(arguments.database_url)
    run = surge.SurgeRun(arguments)
    *specs, spare = run.prepare("redis", options.calls + 1)
    port = surge.free_port()
    process = run.start("uvicorn", "redis", port, "surge-stages")
    try:
        surge.wait_for_port(port, process, timeout=60)
        surge.warm_up("channels", spare, [port])
        clients = [(spec.a_token, spec.call_id) for spec in specs] + [(spec.b_token, spec.call_id) for spec in specs]
        figures = asyncio.run(
            measure(f"ws://127.0.0.1:{port}", clients, process.pid, options.concurrency, options.deadline)
        )
    finally:
        surge.stop_server(process)
        process.log_file.close()  # type: ignore[attr-defined]
    print(f"{len(clients)} clients, {options.concurrency} in flight, one server process")
    print("| step | server CPU ms per client | wall s |")
    print("| --- | --- | --- |")
    for name, (cpu_ms, seconds) in figures.items():
        print(f"| {name} | {cpu_ms:.2f} | {seconds:.2f} |")
    steps = [(cpu, seconds) for name, (cpu, seconds) in figures.items() if not name.startswith("floor")]
    print(f"| all three | {sum(cpu for cpu, _ in steps):.2f} | {sum(seconds for _, seconds in steps):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What each step of a client's set-up costs the server: the handshake (with
``connection.ready``) and ``call.join``, one step at a time for all clients, with at most
``--concurrency`` in flight (docs/performance.md, "Surge"). Half the calls' clients open their
sockets with the access token in the handshake, the other half with a ticket (``POST
realtime/tickets/`` first, a step of its own), so both ways are measured on fresh calls in the
same run. Two floors come first, for every client: an HTTP request that does nothing (a 404)
and a handshake refused at once (an unknown ticket), what the server and the frameworks cost
before any of our work.

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

from loadgen import DIALECTS, _ws_connect, bearer_subprotocols  # noqa: E402

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


async def measure(
    url: str, ticket_clients: list[tuple[str, str]], token_clients: list[tuple[str, str]], pid: int, options
) -> dict[str, tuple[str, float, float]]:
    """Per step, in order: which set-up it belongs to (``floor``, ``ticket``, ``token``), server
    CPU ms per client and wall seconds."""
    dialect = DIALECTS["channels"](url, "")
    figures: dict[str, tuple[str, float, float]] = {}
    until = time.monotonic() + options.deadline

    async def step(kind: str, name: str, items: list, work) -> list:
        cpu, started = surge.tree_cpu_seconds(pid), time.monotonic()
        results = await _bounded(items, work, options.concurrency)
        figures[name] = (kind, (surge.tree_cpu_seconds(pid) - cpu) * 1000 / len(items), time.monotonic() - started)
        return results

    async def ready(connection):
        answer = json.loads(await connection.recv())
        if answer.get("type") != "connection.ready":
            raise RuntimeError(f"handshake answered {answer}")
        return connection

    async def ticket_handshake(ticket: str):
        return await ready(await _ws_connect(f"{url}/ws/?ticket={ticket}", until))

    async def token_handshake(client: tuple[str, str]):
        return await ready(await _ws_connect(f"{url}/ws/", until, bearer_subprotocols(client[0])))

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

    everyone = ticket_clients + token_clients
    await step("floor", "floor: an HTTP request that does nothing (404)", everyone, bare_request)
    await step("floor", "floor: a handshake refused (unknown ticket)", everyone, refused_handshake)
    opened = []
    try:
        tickets = await step(
            "ticket", "ticket (`POST realtime/tickets/`)", ticket_clients, lambda c: dialect.ticket(c[0], until, url)
        )
        connections = await step("ticket", "handshake with the ticket, `connection.ready`", tickets, ticket_handshake)
        opened += connections
        joins = [(c, call_id) for c, (_, call_id) in zip(connections, ticket_clients, strict=True)]
        await step("ticket", "`call.join` (socket opened with a ticket)", joins, join)
        connections = await step(
            "token", "handshake with the access token, `connection.ready`", token_clients, token_handshake
        )
        opened += connections
        joins = [(c, call_id) for c, (_, call_id) in zip(connections, token_clients, strict=True)]
        await step("token", "`call.join` (socket opened with the access token)", joins, join)
    finally:
        for connection in opened:
            await connection.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=150, help="Calls prepared; two clients each.")
    parser.add_argument("--concurrency", type=int, default=1, help="Clients in flight at once within a step.")
    parser.add_argument("--deadline", type=float, default=300.0, help="Seconds all the steps may take.")
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
        half = len(specs) // 2
        ticket_clients, token_clients = _clients(specs[:half]), _clients(specs[half:])
        figures = asyncio.run(measure(f"ws://127.0.0.1:{port}", ticket_clients, token_clients, process.pid, options))
    finally:
        surge.stop_server(process)
        process.log_file.close()  # type: ignore[attr-defined]
    print(
        f"{len(ticket_clients)} clients with a ticket, {len(token_clients)} with the access token, "
        f"{options.concurrency} in flight, one server process"
    )
    print("| step | server CPU ms per client | wall s |")
    print("| --- | --- | --- |")
    for name, (_, cpu_ms, seconds) in figures.items():
        print(f"| {name} | {cpu_ms:.2f} | {seconds:.2f} |")
    for kind, total in (
        ("ticket", "set-up with a ticket (its three steps)"),
        ("token", "set-up with the access token"),
    ):
        steps = [(cpu, seconds) for of, cpu, seconds in figures.values() if of == kind]
        print(f"| {total} | {sum(cpu for cpu, _ in steps):.2f} | {sum(seconds for _, seconds in steps):.2f} |")
    return 0


def _clients(specs) -> list[tuple[str, str]]:
    """Both clients of each call, as (access token, call id): the a sides, then the b sides."""
    return [(spec.a_token, spec.call_id) for spec in specs] + [(spec.b_token, spec.call_id) for spec in specs]


if __name__ == "__main__":
    raise SystemExit(main())

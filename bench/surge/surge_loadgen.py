"""The clients of ``make bench-surge``: every client of P calls starts setting itself up at the
same instant, as a clinic's calls do on the hour.

A client of our server opens the socket with its access token (or, for the ``uvicorn-ticket``
target, a ticket from ``POST /api/v1/realtime/tickets/`` first), waits for ``connection.ready``
and sends ``call.join`` until its ``ack`` — the signaling load generator's ``ChannelsDialect.open``,
so both benchmarks exercise one client. A socket.io client opens the socket and its namespace
(``SocketIODialect.open``): it has no authentication and no join.

A refusal that says "too busy, come back" (503 or 429 with ``Retry-After``, close 1013, 4429 or
4503, an ``error`` event ``SERVICE_UNAVAILABLE``) and a network failure (refused, reset, timed
out) are retried the way docs/realtime.md tells clients to (``loadgen.open_with_retries``):
wait ``Retry-After`` plus a random delay from zero to a window that doubles with each attempt
("full jitter"), at most ``max_attempts`` times and never past the point's deadline. Anything
else — a 500 among them — is a failure: a real client would show the patient an error.

The pairs are split over several processes by the signaling load generator's ``run_workers``.
No process opens anything before the plan's start instant; when a process's clients are all set
up (or out of attempts or time), it says so by creating a file in ``barrier_dir`` and keeps its
connections open until every process has, so that closing them does not add to the server CPU
the harness measures up to that moment.
"""

import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "signaling"))

from loadgen import DIALECTS, Dialect, PairSpec, Plan, close_all, failure_key, open_with_retries


async def set_up(dialect: Dialect, user_id: str, token: str, call_id: str, url: str, plan: Plan, options: dict):
    """One client, from the plan's start to its ack (or its last failure). Returns the
    connection (None if it failed), the milliseconds since the start, the refusals it retried
    and the failure it ended with."""
    refusals: Counter = Counter()
    try:
        connection = await open_with_retries(
            dialect, user_id, token, call_id, url, plan.end, max_attempts=options["max_attempts"], refusals=refusals
        )
    except Exception as error:  # every failure is counted, none ends the other clients
        return None, (time.monotonic() - plan.start) * 1000.0, refusals, failure_key(error)
    return connection, (time.monotonic() - plan.start) * 1000.0, refusals, None


async def wait_for_everyone(barrier_dir: Path, procs: int, until: float) -> None:
    """The barrier: until every worker process created its file, or the deadline."""
    while len(list(barrier_dir.iterdir())) < procs and time.monotonic() < until:
        await asyncio.sleep(0.02)


async def surge_main(pipe, kind: str, base_url: str, specs: list[PairSpec], options: dict) -> None:
    """A worker process (``loadgen.worker_entry``): ready at once, then every client of its
    pairs set up from the plan's start instant, all at once."""
    dialect = DIALECTS[kind](base_url, "")
    # Nothing is opened before the instant: the harness hears "ready" for all clients.
    pipe.send({"connected_pairs": len(specs), "connect_errors": {}, "connect_error_samples": []})
    message = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    if message.get("abort"):
        pipe.send({"aborted": True})
        return
    plan = Plan(**message)
    await asyncio.sleep(max(0.0, plan.start - time.monotonic()))
    cpu_from = time.process_time()
    clients = [
        (user, token, spec.call_id, url or dialect.base_url)
        for spec in specs
        for user, token, url in ((spec.a_id, spec.a_token, spec.a_url), (spec.b_id, spec.b_token, spec.b_url))
    ]
    outcomes = await asyncio.gather(*(set_up(dialect, *client, plan, options) for client in clients))
    cpu_seconds = time.process_time() - cpu_from
    barrier_dir = Path(options["barrier_dir"])
    (barrier_dir / str(os.getpid())).touch()
    await wait_for_everyone(barrier_dir, options["procs"], plan.end)
    connections = [connection for connection, *_ in outcomes if connection is not None]
    refusals: Counter = Counter()
    failures: Counter = Counter()
    for _, _, met, failure in outcomes:
        refusals.update(met)
        if failure is not None:
            failures[failure] += 1
    report: dict[str, Any] = {
        "clients": len(clients),
        "joined": len(connections),
        "setup_ms": [elapsed for connection, elapsed, *_ in outcomes if connection is not None],
        "failed_after_ms": [elapsed for connection, elapsed, *_ in outcomes if connection is None],
        "refusals": dict(refusals),
        "failures": dict(failures),
        "retried_clients": sum(1 for _, _, met, _ in outcomes if met),
        "cpu_seconds": cpu_seconds,
    }
    await close_all(connections)
    pipe.send(report)

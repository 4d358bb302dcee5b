#!/usr/bin/env python
"""Benchmark of the call-history list (GET /api/v1/calls/history/): latency and query count.

Not a test: it prints figures for docs/call-history.md. It uses the test settings (SQLite in
memory by default; set ``DATABASE_URL`` for PostgreSQL), builds a throwaway database named
``bench_history_<pid>``, fills it with ``--calls`` calls of one patient (two participants each,
quality samples on a tenth of them), times the endpoint through Django's test client for each
page size and drops the database again, whatever happens.

    .venv/bin/python scripts/bench_call_history.py --calls 10000 --pages 10,20,50,100 --repeat 30

Bounded: at most 200,000 calls and 500 requests per page size, and it stops timing once
``--time-limit`` seconds have passed (the figures printed say how many requests they cover).
"""

import argparse
import statistics
import time

from bench_database import setup_django, throwaway_database

MAX_CALLS = 200_000
MAX_REPEAT = 500


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help=f"calls to create (1..{MAX_CALLS})")
    parser.add_argument("--pages", default="10,20,50,100", help="comma-separated page sizes (1..100)")
    parser.add_argument("--repeat", type=int, default=30, help=f"timed requests per page size (1..{MAX_REPEAT})")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds of timing before stopping")
    args = parser.parse_args()
    if not 1 <= args.calls <= MAX_CALLS:
        parser.error(f"--calls must be between 1 and {MAX_CALLS}")
    if not 1 <= args.repeat <= MAX_REPEAT:
        parser.error(f"--repeat must be between 1 and {MAX_REPEAT}")
    try:
        args.pages = [int(size) for size in args.pages.split(",")]
    except ValueError:
        parser.error("--pages must be integers separated by commas")
    if not all(1 <= size <= 100 for size in args.pages):
        parser.error("page sizes must be between 1 and 100")
    return args


def populate(count: int):
    """One doctor and one patient share ``count`` completed calls; returns the patient."""
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Role, User
    from video_calls.models import (
        Call,
        CallKind,
        CallMedia,
        CallParticipant,
        CallQualitySample,
        CallStatus,
        ParticipantRole,
        ParticipantStatus,
    )

    password = make_password(None)  # unusable: nobody signs in with these users
    doctor = User.objects.create(email="bench-doctor@example.test", role=Role.DOCTOR, password=password)
    patient = User.objects.create(email="bench-patient@example.test", role=Role.PATIENT, password=password)
    calls = Call.objects.bulk_create(
        [
            Call(
                kind=CallKind.AD_HOC,
                media=CallMedia.VOICE if index % 3 else CallMedia.VIDEO,
                status=CallStatus.COMPLETED,
                initiated_by=doctor,
                duration_seconds=60 + index % 3600,
            )
            for index in range(count)
        ],
        batch_size=2_000,
    )
    participants = CallParticipant.objects.bulk_create(
        [
            CallParticipant(call=call, user=user, role=role, status=ParticipantStatus.LEFT, connected_seconds=60)
            for call in calls
            for user, role in ((doctor, ParticipantRole.DOCTOR), (patient, ParticipantRole.PATIENT))
        ],
        batch_size=4_000,
    )
    now = timezone.now()
    CallQualitySample.objects.bulk_create(
        [
            CallQualitySample(
                call_id=participant.call_id,
                participant=participant,
                recorded_at=now - timedelta(seconds=second),
                rtt_ms=40 + second * 30,
                packet_loss_percent=Decimal("0.50"),
                jitter_ms=10,
            )
            for participant in participants[::20]
            for second in range(3)
        ],
        batch_size=4_000,
    )
    return patient


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(patient, page_sizes: list[int], repeat: int, time_limit: float) -> list[tuple]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from accounts.tokens import token_pair_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(patient)['access']}")
    deadline = time.monotonic() + time_limit
    rows = []
    for size in page_sizes:
        client.get("/api/v1/calls/history/", {"page_size": size})  # warm caches and connections
        latencies, query_counts = [], set()
        for iteration in range(repeat):
            if time.monotonic() > deadline:
                break
            page = 1 + iteration % 5
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get("/api/v1/calls/history/", {"page_size": size, "page": page})
                latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"history answered {response.status_code}: {response.content[:200]!r}")
            query_counts.add(len(queries))
        if latencies:
            rows.append(
                (
                    size,
                    len(latencies),
                    statistics.median(latencies),
                    percentile(latencies, 0.95),
                    ",".join(map(str, sorted(query_counts))),
                )
            )
    return rows


def main() -> None:
    args = parse_args()
    setup_django("history")

    with throwaway_database() as connection:
        started = time.monotonic()
        patient = populate(args.calls)
        print(f"database: {connection.vendor}; {args.calls} calls created in {time.monotonic() - started:.1f} s")
        rows = measure(patient, args.pages, args.repeat, args.time_limit)

    print(f"{'page size':>9}  {'requests':>8}  {'p50 ms':>8}  {'p95 ms':>8}  {'queries':>7}")
    for size, requests, p50, p95, queries in rows:
        print(f"{size:>9}  {requests:>8}  {p50:>8.1f}  {p95:>8.1f}  {queries:>7}")


if __name__ == "__main__":
    main()

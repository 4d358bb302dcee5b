#!/usr/bin/env python
"""Benchmark of what the audit trail costs a list endpoint (GET /api/v1/sessions/).

Not a test: it prints figures for docs/performance.md ("Audit trail overhead"). It uses the
test settings (SQLite in memory by default; set ``DATABASE_URL`` for PostgreSQL), builds a
throwaway database named ``bench_audit_<pid>``, gives one doctor ``--sessions`` sessions, then
times the list through Django's test client for each page size, alternating rounds with
audit/middleware.py in ``MIDDLEWARE`` and without it, and drops the database again.

    .venv/bin/python scripts/bench_audit_overhead.py --sessions 2000 --pages 20,100 --repeat 200

Bounded: at most 50,000 sessions and 2,000 requests per page size and mode.
"""

import argparse
import statistics
import time

from bench_database import setup_django, throwaway_database

MAX_SESSIONS = 50_000
MAX_REPEAT = 2_000
AUDIT_MIDDLEWARE = "audit.middleware.AuditMiddleware"
URL = "/api/v1/sessions/"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2_000, help=f"sessions to create (1..{MAX_SESSIONS})")
    parser.add_argument("--pages", default="20,100", help="comma-separated page sizes (1..100)")
    parser.add_argument(
        "--repeat", type=int, default=200, help=f"timed requests per page size and mode (1..{MAX_REPEAT})"
    )
    args = parser.parse_args()
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if not 1 <= args.repeat <= MAX_REPEAT:
        parser.error(f"--repeat must be between 1 and {MAX_REPEAT}")
    args.pages = [int(size) for size in args.pages.split(",")]
    if not all(1 <= size <= 100 for size in args.pages):
        parser.error("page sizes must be between 1 and 100")
    return args


def populate(count: int):
    """One doctor with ``count`` sessions, each with a patient of its own; returns the doctor."""
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Role, User
    from sessions.models import Session
    from sessions.services.booking import blocked_until_for

    password = make_password(None)
    doctor = User.objects.create(email="bench-doctor@example.test", role=Role.DOCTOR, password=password)
    patients = User.objects.bulk_create(
        [User(email=f"bench-patient-{n}@example.test", role=Role.PATIENT, password=password) for n in range(count)],
        batch_size=2_000,
    )
    start = timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        [
            Session(
                doctor=doctor,
                patient=patient,
                scheduled_start=start + timedelta(hours=n),
                duration_minutes=30,
                blocked_until=blocked_until_for(scheduled_start=start + timedelta(hours=n), duration_minutes=30),
            )
            for n, patient in enumerate(patients)
        ],
        batch_size=2_000,
    )
    return doctor


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def client_for(user, audited: bool):
    """A client whose handler loads MIDDLEWARE with or without the audit middleware."""
    from django.conf import settings
    from django.test import override_settings
    from rest_framework.test import APIClient

    from accounts.tokens import token_pair_for

    middleware = [name for name in settings.MIDDLEWARE if audited or name != AUDIT_MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
        client.get(URL, {"page_size": 1})  # loads the middleware chain under these settings
    return client


def measure(doctor, page_sizes: list[int], repeat: int) -> list[tuple]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    clients = {False: client_for(doctor, audited=False), True: client_for(doctor, audited=True)}
    rows = []
    for size in page_sizes:
        latencies: dict[bool, list[float]] = {False: [], True: []}
        queries: dict[bool, set[int]] = {False: set(), True: set()}
        for iteration in range(repeat):
            # Alternate, so drift (caches, the growing audit table) falls on both modes alike.
            for audited in (iteration % 2 == 0, iteration % 2 == 1):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = clients[audited].get(URL, {"page_size": size, "page": 1 + iteration % 5})
                    latencies[audited].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"the list answered {response.status_code}: {response.content[:200]!r}")
                queries[audited].add(len(captured))
        for audited in (False, True):
            rows.append(
                (
                    size,
                    "on" if audited else "off",
                    len(latencies[audited]),
                    statistics.median(latencies[audited]),
                    percentile(latencies[audited], 0.95),
                    ",".join(map(str, sorted(queries[audited]))),
                )
            )
    return rows


def main() -> None:
    args = parse_args()
    setup_django("audit")

    from audit.models import AuditEntry

    with throwaway_database() as connection:
        started = time.monotonic()
        doctor = populate(args.sessions)
        print(f"database: {connection.vendor}; {args.sessions} sessions created in {time.monotonic() - started:.1f} s")
        rows = measure(doctor, args.pages, args.repeat)
        entries = AuditEntry.objects.count()

    print(f"{'page size':>9}  {'audit':>5}  {'requests':>8}  {'p50 ms':>8}  {'p95 ms':>8}  {'queries':>7}")
    for size, mode, requests, p50, p95, query_counts in rows:
        print(f"{size:>9}  {mode:>5}  {requests:>8}  {p50:>8.2f}  {p95:>8.2f}  {query_counts:>7}")
    for size in args.pages:
        off, on = (next(row for row in rows if row[0] == size and row[1] == mode) for mode in ("off", "on"))
        print(f"page size {size}: audit adds {on[3] - off[3]:+.2f} ms at p50 ({(on[3] / off[3] - 1) * 100:+.1f} %)")
    print(f"audit entries written: {entries}")


if __name__ == "__main__":
    main()

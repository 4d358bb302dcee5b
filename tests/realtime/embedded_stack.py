"""Helpers for tests that run the embedded stack (``make run``'s processes) for real.

Imported: the stack's environment, stopping it as Ctrl-C does, listing what is left of it.
Run: writes test data into the database of a running stack, from a process of its own:
``python -m tests.realtime.embedded_stack seed|call|no-show ...`` with the stack's environment
(``VAR_DIR``, dev settings). Each command prints one JSON line.

The stack (tests/realtime/test_embedded_layer.py) runs on a SQLite file that the test process,
which has its own in-memory test database, cannot reach through the ORM; a short-lived process
with the stack's settings can, and its events go out through the same embedded channel layer.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

STOP_LIMIT = 10  # seconds: everything gone this long after Ctrl-C


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def embedded_environment(var_dir: Path, port: int) -> dict[str, str]:
    """The environment of ``make run`` on the embedded defaults, sweeping every second."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "REDIS_TEST_DB", "WEBSOCKET_ALLOWED_ORIGINS", "DJANGO_SETTINGS_MODULE"}
    }
    return {
        **environment,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "VAR_DIR": str(var_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "CALL_RING_TIMEOUT_SECONDS": "1",
        "CALL_RING_SWEEP_SECONDS": "1",
        "SESSION_NO_SHOW_SWEEP_SECONDS": "1",
        "PRESENCE_SWEEP_SECONDS": "1",
        "PRESENCE_TIMEOUT_SECONDS": "3",
    }


def stop_within(process: subprocess.Popen, seconds: float) -> float | None:
    """SIGINT to the process group of ``process`` (started with ``start_new_session``), as
    Ctrl-C in a terminal; the seconds until it exited, or None if it had not after ``seconds``
    (then everything in its session is killed)."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=seconds)
        return time.monotonic() - started
    except subprocess.TimeoutExpired:
        kill_session(process.pid)
        process.wait(timeout=seconds)
        return None


def kill_session(session_id: int) -> None:
    for pid, _ in _session(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def session_members(session_id: int) -> list[str]:
    """Command lines of the processes still running in the session ``session_id``."""
    return [command for _, command in _session(session_id)]


def _session(session_id: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes of a session, from /proc (Linux)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == session_id:
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                members.append((int(stat.parent.name), command))
    return members


def main(argv: list[str]) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from accounts.models import User
    from accounts.tokens import token_pair_for
    from sessions.models import SessionStatus
    from tests.factories import DoctorFactory, PatientFactory
    from tests.sessions.factories import SessionFactory
    from video_calls.services.adhoc import call_initiate

    command, *names = argv
    if command == "seed":  # seed NAME...: a doctor and a patient in care, per name
        pairs = {}
        for name in names:
            doctor, patient = DoctorFactory(), PatientFactory()
            SessionFactory(doctor=doctor, patient=patient)  # requested, days ahead: a care relationship
            pairs[name] = {
                role: {"id": str(user.pk), "access": token_pair_for(user)["access"]}
                for role, user in (("doctor", doctor), ("patient", patient))
            }
        return pairs
    doctor, patient = (User.objects.get(pk=pk) for pk in names)
    if command == "call":  # call DOCTOR PATIENT: the doctor rings the patient
        return {"call_id": str(call_initiate(caller=doctor, callee_id=patient.pk).pk)}
    if command == "no-show":  # no-show DOCTOR PATIENT: a confirmed session whose join window closed
        start = timezone.now() - timedelta(minutes=settings.JOIN_WINDOW_CLOSES_MINUTES_AFTER + 10)
        session = SessionFactory(
            doctor=doctor, patient=patient, status=SessionStatus.CONFIRMED, scheduled_start=start.replace(microsecond=0)
        )
        return {"session_id": str(session.pk)}
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)

"""``make run`` as a developer runs it, on the embedded defaults in a temporary ``VAR_DIR``:
Ctrl-C (SIGINT to its process group) stops everything it started — the server, the Celery
worker and its pool, beat and the embedded Redis of the channel layer — within 10 seconds; and
a process that ignores SIGTERM (a worker whose warm shutdown waits on a long task) does not hold
that up."""

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from config import embedded_redis
from tests.realtime.embedded_stack import (
    STOP_LIMIT,
    embedded_environment,
    free_port,
    kill_session,
    session_members,
    stop_within,
)

STARTUP_TIMEOUT = 240  # migrate and seed a new database first
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _live(port: int) -> bool:
    with contextlib.suppress(OSError), HTTP.open(f"http://127.0.0.1:{port}/api/health/live", timeout=5) as response:
        return response.status == 200
    return False


def _all_started(commands: list[str]) -> bool:
    return (
        any("config.serve" in command for command in commands)
        and sum("celery" in command and " worker" in command for command in commands) >= 3  # main + a pool of 2
        and any("celery" in command and " beat" in command for command in commands)
    )


def test_ctrl_c_stops_everything_make_run_started_within_10_seconds(tmp_path):
    var_dir, port = tmp_path / "var", free_port()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=settings.BASE_DIR,
            env=embedded_environment(var_dir, port),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Given everything up: the server, the worker with its pool, beat, and the embedded Redis
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (_live(port) and _all_started(running := session_members(make.pid))):
            assert make.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, (running, log.read_text(errors="replace")[-4000:])
            time.sleep(0.5)
        redis_pid = int((embedded_redis.directory(var_dir) / "redis.pid").read_text())

        # When Ctrl-C reaches make's process group
        stopped_after = stop_within(make, STOP_LIMIT)
        left = session_members(make.pid)
    finally:
        kill_session(make.pid)
        if embedded_redis.is_serving(embedded_redis.socket_path(var_dir)):
            embedded_redis.stop(var_dir)

    # Then all of it is gone within the limit, the embedded Redis too
    assert stopped_after is not None, log.read_text(errors="replace")[-4000:]
    assert left == []
    assert not embedded_redis._alive(redis_pid)
    assert not embedded_redis.is_serving(embedded_redis.socket_path(var_dir))


STUBBORN = (
    # A process that ignores SIGTERM, as a worker whose warm shutdown waits on a long task, with
    # a child of its own, as a worker's pool.
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)']); print('ready', flush=True); time.sleep(120)"
)


def test_a_process_that_ignores_sigterm_is_killed_with_its_children_after_the_grace():
    from config import run

    # Given a process that ignores SIGTERM and has a child, started as make run starts its own
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, process_group=0)
    assert process.stdout.readline().strip() == "ready"
    group = process.pid

    # When make run stops its processes
    started = time.monotonic()
    run._stop({"stubborn": process})
    took = time.monotonic() - started

    # Then it waited the grace, no more, and nothing of the group is left
    assert run.GRACE_SECONDS <= took < run.GRACE_SECONDS + 3
    assert process.returncode == -signal.SIGKILL
    assert _live_in_group(group) == []


def _live_in_group(group: int) -> list[int]:
    """Pids of the processes of a process group that are not zombies (a killed child whose
    parent died too waits for init to reap it), after a moment for the kill to land."""
    deadline = time.monotonic() + 2
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(") ", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == group:
                    live.append(int(stat.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)

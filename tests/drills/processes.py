"""Real processes for the fault drills: a throwaway Redis, a throwaway PostgreSQL cluster, server
processes (``python -m config.serve``, as production serves) and a Celery worker and beat
(``celery -A config``), each on a free loopback port, started and stopped by the drill.

The machine's own PostgreSQL (5432) and Redis (6379) are never touched: other test runs use them.
Every wait is bounded; a process that does not come up fails the drill with the tail of its log.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.conftest import REQUIRE_SERVICES

STARTUP_TIMEOUT = 30  # seconds for a process to come up
STOP_TIMEOUT = 10  # after SIGTERM, before SIGKILL
DRILL_SETTINGS = "tests.drills.settings"
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def require_tool(path: str | None, name: str) -> str:
    """The tool's path; without it the drill skips on a developer's machine and fails in CI's
    services run (REQUIRE_SERVICES=1), where a drill that silently skipped would prove nothing."""
    if path:
        return path
    message = f"the drill needs {name}, which is not installed"
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def wait_for(condition, *, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{message}: not true within {timeout}s", pytrace=False)
        time.sleep(interval)


def run_database_url() -> str:
    """The database this test run uses (pytest-django's ``test_...`` copy), as a URL."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"


# --- Redis ------------------------------------------------------------------------------------


@dataclass
class RedisInstance:
    """A ``redis-server`` with no persistence on a fixed loopback port: a restart comes back on
    the same address, empty, as a Redis restarted without a snapshot does."""

    binary: str
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.directory), "--logfile", str(log)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

        def answers() -> bool:
            assert self.process.poll() is None, f"redis-server exited:\n{_tail(log)}"
            try:
                return self.client().ping()
            except redis.RedisError:
                return False

        wait_for(answers, timeout=STARTUP_TIMEOUT, message=f"redis-server on {self.port} answering")

    def stop(self) -> None:
        """SIGTERM: Redis closes every client connection and exits, as on a restart."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else Debian's layout."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        if bindir and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of its own in a temporary directory, on a free loopback port, that a
    drill may stop and start. ``initdb`` refuses to run as root; as root the cluster belongs to
    the ``postgres`` OS user and its commands run as that user (``runuser``)."""

    bindir: Path
    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = STARTUP_TIMEOUT) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}\n{_tail(self.log)}"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def init(self) -> None:
        if os.geteuid() == 0:
            require_tool(shutil.which("runuser"), "runuser (initdb refuses to run as root)")
            shutil.chown(self.directory, user="postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back and every client is disconnected."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> None:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


# --- Project processes ------------------------------------------------------------------------


def process_environment(*, database_url: str, redis_url: str, var_dir: Path, **overrides: str) -> dict:
    """The environment of a server, worker or beat: the drill settings pointed at the drill's
    database and Redis (broker, cache and channel layer all follow ``REDIS_URL``)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": DRILL_SETTINGS,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_TEST_DB": "0",
        "VAR_DIR": str(var_dir),
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }


@dataclass
class ProjectProcess:
    name: str
    command: list[str]
    environment: dict
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command, cwd=settings.BASE_DIR, env=self.environment, stdout=output, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return _tail(self.log)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs, as when a machine or container dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL if it has not exited in time. True if it exited by itself."""
        if not self.running():
            return True
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
            return True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
            return False


@dataclass
class Server(ProjectProcess):
    port: int = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_until_live(self) -> None:
        def live() -> bool:
            assert self.running(), f"{self.name} exited:\n{self.output()}"
            try:
                with HTTP.open(f"{self.http}/api/health/live", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(live, timeout=STARTUP_TIMEOUT, interval=0.1, message=f"{self.name} live")


def server(name: str, environment: dict, directory: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)]
    return Server(
        name=name,
        command=[*command, "--log-level", "warning"],
        environment=environment,
        log=directory / f"{name}.log",
        port=port,
    )


def celery_worker(name: str, environment: dict, directory: Path, *, concurrency: int = 4) -> ProjectProcess:
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING"]
    command += ["--pool", "prefork", "--concurrency", str(concurrency), "--hostname", f"{name}@drill"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return ProjectProcess(name=name, command=command, environment=environment, log=directory / f"{name}.log")


def celery_beat(environment: dict, directory: Path) -> ProjectProcess:
    command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"]
    command += ["--schedule", str(directory / "celerybeat-schedule")]
    return ProjectProcess(name="beat", command=command, environment=environment, log=directory / "beat.log")

"""The embedded Redis of the channel layer (config/embedded_redis.py): one server per VAR_DIR,
however many processes start together; a crash's leftovers replaced; stopped without a trace.
Real servers, each in a temporary VAR_DIR."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from config import embedded_redis


@pytest.fixture
def var_dir(tmp_path):
    yield tmp_path / "var"
    embedded_redis.stop(tmp_path / "var")


def _pid(var_dir) -> int:
    return int((embedded_redis.directory(var_dir) / "redis.pid").read_text())


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while embedded_redis._alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_the_first_use_starts_a_server_and_later_ones_reuse_it(var_dir):
    started = embedded_redis.ensure_running(var_dir)
    first_pid = _pid(var_dir)
    started_again = embedded_redis.ensure_running(var_dir)

    assert (started, started_again) == (True, False)
    assert _pid(var_dir) == first_pid
    assert embedded_redis.is_serving(embedded_redis.socket_path(var_dir))


def test_processes_starting_together_start_one_server(var_dir):
    code = (
        "import json, sys; from pathlib import Path; from config import embedded_redis; "
        "print(json.dumps(embedded_redis.ensure_running(Path(sys.argv[1]))))"
    )
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(var_dir)], cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    answers = [json.loads(starter.communicate(timeout=60)[0]) for starter in starters]

    assert sorted(answers) == [False, False, False, True]
    assert embedded_redis.is_serving(embedded_redis.socket_path(var_dir))


def test_a_killed_servers_socket_and_pid_file_are_replaced(var_dir):
    # Given a server killed without a chance to clean up: its socket and pid file stay behind
    embedded_redis.ensure_running(var_dir)
    crashed_pid = _pid(var_dir)
    os.kill(crashed_pid, signal.SIGKILL)
    _wait_gone(crashed_pid)
    stale_socket = embedded_redis.socket_path(var_dir)
    assert stale_socket.exists()
    assert not embedded_redis.is_serving(stale_socket)

    # When a process needs the layer
    started = embedded_redis.ensure_running(var_dir)

    # Then a new server answers on the same socket
    assert started is True
    assert _pid(var_dir) != crashed_pid
    assert embedded_redis.is_serving(stale_socket)


def test_stop_ends_the_server_and_removes_its_socket_and_pid_file(var_dir):
    embedded_redis.ensure_running(var_dir)
    pid = _pid(var_dir)

    stopped = embedded_redis.stop(var_dir)
    stopped_again = embedded_redis.stop(var_dir)

    assert (stopped, stopped_again) == (True, False)
    assert not embedded_redis._alive(pid)
    assert not embedded_redis.socket_path(var_dir).exists()
    assert not (embedded_redis.directory(var_dir) / "redis.pid").exists()


def test_a_var_dir_too_deep_for_a_unix_socket_gets_a_short_socket_path(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)

    path = embedded_redis.socket_path(deep)

    assert len(os.fsencode(path)) <= 100
    assert path != embedded_redis.socket_path(tmp_path)
    assert path == embedded_redis.socket_path(deep)  # stable: every process finds the same one

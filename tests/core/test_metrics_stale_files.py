"""The metrics directory at a process's start: the last run's files go when none of its processes
runs any more, and nothing goes while one does (core/metrics.py ``clear_stale_files``)."""

import subprocess
import sys

import pytest

from core.metrics import clear_stale_files


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def running_pid():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def test_the_files_of_a_run_whose_processes_are_all_gone_are_removed(tmp_path):
    dead = _dead_pid()
    stale = [tmp_path / f"counter_{dead}.db", tmp_path / f"histogram_{dead}.db", tmp_path / f"gauge_livesum_{dead}.db"]
    for path in stale:
        path.write_bytes(b"x")
    other = tmp_path / "notes.txt"
    other.write_text("not ours")

    assert clear_stale_files(tmp_path) == [dead]

    assert [path for path in stale if path.exists()] == []
    assert other.exists()


def test_nothing_is_removed_while_a_process_of_the_run_still_writes(tmp_path, running_pid):
    dead = _dead_pid()
    files = [tmp_path / f"counter_{dead}.db", tmp_path / f"counter_{running_pid}.db"]
    for path in files:
        path.write_bytes(b"x")

    assert clear_stale_files(tmp_path) == []

    assert all(path.exists() for path in files)

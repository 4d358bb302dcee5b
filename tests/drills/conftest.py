"""Fixtures of the fault drills: a throwaway Redis per drill, and a register of the processes a
drill starts, all stopped when it ends (before the test's rows are flushed, so no process is
left writing into the next test's database)."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills.processes import ProjectProcess, RedisInstance, require_tool
from tests.sessions.factories import SessionFactory
from video_calls.services.adhoc import call_accept, call_initiate


class Processes:
    """The project processes a drill started; ``stop_all`` ends those still running."""

    def __init__(self) -> None:
        self.started: list[ProjectProcess] = []

    def start(self, *processes: ProjectProcess) -> None:
        for process in processes:
            process.start()
            self.started.append(process)

    def stop_all(self) -> list[str]:
        """Stop every process still running; the names of those that needed SIGKILL."""
        return [process.name for process in reversed(self.started) if not process.stop()]

    def logs(self) -> str:
        return "\n".join(f"--- {process.name}\n{process.output()}" for process in self.started)


@pytest.fixture
def processes(transactional_db) -> Iterator[Processes]:
    register = Processes()
    try:
        yield register
    finally:
        register.stop_all()


@pytest.fixture
def redis_instance(tmp_path: Path) -> Iterator[RedisInstance]:
    binary = require_tool(shutil.which("redis-server"), "redis-server")
    directory = tmp_path / "redis"
    directory.mkdir()
    instance = RedisInstance(binary=binary, directory=directory)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def ongoing_call(doctor, patient):
    """An ad-hoc call between the persona doctor and patient, accepted, nobody connected yet."""
    SessionFactory(doctor=doctor, patient=patient)  # the care relationship that lets them talk
    call = call_initiate(caller=doctor, callee_id=patient.pk)
    call_accept(call=call, user=patient)
    return call

"""Metrics with several server processes: two real ``python -m config.serve`` processes share
one PROMETHEUS_MULTIPROC_DIR, and a scrape of either reports the requests both served."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.core.test_metrics import samples

METRICS_TOKEN = "metrics-token-0123456789abcdef"
STARTUP_TIMEOUT = 30
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, no proxy
LIVE = ("telehealth_http_requests_total", (("method", "GET"), ("route", "health-live"), ("status", "200")))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _serve(port: int, directory: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": METRICS_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "config.serve", "--port", str(port), "--log-level", "warning"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_until_live(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if _get(f"{url}/api/health/ready")[0] in (200, 503):
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not serving after {STARTUP_TIMEOUT}s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def two_servers(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    ports = [_free_port(), _free_port()]
    processes = [_serve(port, directory, tmp_path / f"server-{port}.log") for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process, port in zip(urls, processes, ports, strict=True):
            _wait_until_live(url, process, tmp_path / f"server-{port}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_scrape_of_either_process_reports_the_sum_of_both(two_servers):
    first, second = two_servers
    for _ in range(3):
        assert _get(f"{first}/api/health/live")[0] == 200
    for _ in range(2):
        assert _get(f"{second}/api/health/live")[0] == 200

    for url in (first, second):
        status, body = _get(f"{url}/api/health/metrics", METRICS_TOKEN)
        assert status == 200, body
        assert samples(body.decode())[LIVE] == 5


def test_a_server_started_anew_does_not_add_the_last_runs_figures(tmp_path):
    """The files of a run whose processes are all gone are removed when the next one starts
    (core/metrics.py ``clear_stale_files``); a scrape then counts this run's requests only."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    for run in ("first", "second"):
        port = _free_port()
        log = tmp_path / f"{run}.log"
        process = _serve(port, directory, log)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_live(url, process, log)
            for _ in range(3 if run == "first" else 2):
                assert _get(f"{url}/api/health/live")[0] == 200
            status, body = _get(f"{url}/api/health/metrics", METRICS_TOKEN)
        finally:
            process.terminate()
            process.wait(timeout=10)
        assert status == 200, body
        assert samples(body.decode())[LIVE] == (3 if run == "first" else 2)

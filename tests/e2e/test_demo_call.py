"""Two real browsers hold a consultation through the reference client at ``/demo/``.

A server process (``config.serve``, the test settings, a SQLite file of its own, the in-memory
channel layer of one process) serves the page, the API and the socket; the demo accounts and a
paid, confirmed session come from ``seed_demo`` and ``demo_session``, as in ``make run``. Two
headless Chromium browsers (Debian's ``/usr/bin/chromium``, fake camera and microphone) sign in
as the doctor and the patient: the patient waits, the doctor admits, both reach a connected
RTCPeerConnection with inbound video frames increasing (getStats), chat each way with read
receipts, the patient's page is reloaded and reconnects, and the doctor ends the call. The API
then shows the session completed and the call's duration as the server computed it.

Screenshots of both browsers mid-call are saved in ``var/e2e/`` (README, "Reference web client").
Without chromium the test skips on the embedded defaults and fails under ``REQUIRE_SERVICES=1``.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings

from tests.realtime.embedded_stack import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Demo-pass-2026"
DOCTOR, PATIENT = "dr.house@demo.clinic", "alice@demo.clinic"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "e2e"
STEP_MS = 20_000  # any one step in a browser
STARTUP_TIMEOUT = 60
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _require_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _http(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with HTTP.open(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``config.serve`` on a free port with its own SQLite file, seeded as ``make run`` is."""
    directory = tmp_path_factory.mktemp("e2e")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    environment = {
        **{
            key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "REDIS_TEST_DB"}
        },
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "VAR_DIR": str(directory),
        "PORT": str(port),
        "WEBSOCKET_PUBLIC_URL": f"ws://127.0.0.1:{port}/ws/",
        "WEBSOCKET_ALLOWED_ORIGINS": origin,
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["seed_demo", "--force"], ["demo_session", "--force"]):
        done = subprocess.run(
            manage + command, cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-4000:]
    log = directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "config.serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            try:
                _http("GET", f"{origin}/api/health/live")
                break
            except OSError:
                assert time.monotonic() < deadline, "server not live"
                time.sleep(0.2)
        yield origin
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _sign_in(page, origin: str, email: str) -> None:
    page.goto(f"{origin}/demo/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in-form button")
    page.wait_for_selector("#socket-state[data-state=online]")


def _stats(page) -> dict:
    return page.evaluate("window.telehealthDemo.stats()")  # evaluate awaits the page's promise


def _frames_flowing(page) -> None:
    """Wait until the page's one peer connection is connected and has decoded more than 10 video
    frames since this started watching that connection.

    Polled from here with ``evaluate``: ``wait_for_function`` would take the promise that
    ``stats()`` returns for a truthy answer and return at once. The count starts again whenever
    the connection seen is not the one measured before (none yet, or a new RTCPeerConnection
    after a re-offer), so frames are always counted on one connection."""
    deadline = time.monotonic() + STEP_MS / 1000
    baseline = None
    while True:
        stats = _stats(page)
        peers = stats["peers"]
        peer = peers[0] if len(peers) == 1 and peers[0]["state"] == "connected" else None
        if peer is not None and baseline is not None and peer["connection"] == baseline["connection"]:
            if peer["framesDecoded"] > baseline["framesDecoded"] + 10:
                return
        else:
            baseline = peer
        assert time.monotonic() < deadline, f"no video frames flowing on one connected peer connection: {stats}"
        time.sleep(0.25)


def _chat(sender, receiver, text: str) -> None:
    sender.fill("#chat-form input[name=body]", text)
    sender.click("#chat-form button")
    receiver.wait_for_selector(f"#chat-messages li[data-mine=false] >> text={text}", timeout=STEP_MS)
    sender.wait_for_selector(f"#chat-messages li[data-mine=true][data-receipt=read] >> text={text}", timeout=STEP_MS)


def test_a_consultation_through_the_demo_client(server):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launch = {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}
        doctor_browser, patient_browser = playwright.chromium.launch(**launch), playwright.chromium.launch(**launch)
        doctor, patient = doctor_browser.new_page(), patient_browser.new_page()
        console: list[str] = []
        try:
            for name, page in (("doctor", doctor), ("patient", patient)):
                page.set_default_timeout(STEP_MS)
                page.on("console", lambda message, name=name: console.append(f"{name} {message.type}: {message.text}"))
            _sign_in(doctor, server, DOCTOR)
            _sign_in(patient, server, PATIENT)

            # The patient checks can-join, joins, and waits to be admitted.
            session_row = patient.locator("#sessions-list li[data-session-id]").first
            session_id = session_row.get_attribute("data-session-id")
            session_row.locator("button", has_text="Can I join?").click()
            patient.wait_for_selector(f"#sessions-list li[data-session-id='{session_id}'][data-can-join=true]")
            session_row.locator("button.join").click()
            patient.wait_for_selector("#waiting-panel:not([hidden])")

            # The doctor joins the room and admits the patient from the queue.
            doctor_row = doctor.locator(f"#sessions-list li[data-session-id='{session_id}']")
            doctor_row.locator("button", has_text="Can I join?").click()
            doctor_row.locator("button.join").click()
            doctor.wait_for_selector("#call-panel:not([hidden])")
            doctor.locator("#queue-list li button.admit").first.click()
            patient.wait_for_selector("#call-panel:not([hidden])")

            _frames_flowing(doctor)
            _frames_flowing(patient)
            doctor.screenshot(path=str(SCREENSHOTS / "doctor.png"))
            patient.screenshot(path=str(SCREENSHOTS / "patient.png"))

            _chat(patient, doctor, "Hello doctor")
            _chat(doctor, patient, "Hello Alice")

            # A reload mid-call: new ticket, reconnect, re-join, re-negotiate, missed chat fetched.
            patient.reload()
            patient.wait_for_selector("#call-panel:not([hidden])")
            _frames_flowing(patient)
            _frames_flowing(doctor)
            patient.wait_for_selector("#chat-messages li >> text=Hello Alice")

            doctor.click("#end-call")
            doctor.wait_for_selector("#ended-panel:not([hidden])")
            patient.wait_for_selector("#ended-panel:not([hidden])")
        except Exception as error:
            # What each page told its user (the notice line names the error code) and its console.
            seen = {name: page.inner_text("#notice") for name, page in (("doctor", doctor), ("patient", patient))}
            raise AssertionError(f"{error}\npages said: {seen}\nconsole: {console[-40:]}") from error
        finally:
            doctor_browser.close()
            patient_browser.close()

    token = _http("POST", f"{server}/api/v1/auth/login/", {"email": PATIENT, "password": PASSWORD})["access"]
    session = _http("GET", f"{server}/api/v1/sessions/{session_id}/", token=token)
    assert session["status"] == "completed"
    room = _http("GET", f"{server}/api/v1/sessions/{session_id}/room/", token=token)
    call = _http("GET", f"{server}/api/v1/calls/{room['id']}/", token=token)
    assert call["status"] == "completed"
    started, ended = (datetime.fromisoformat(call[name].replace("Z", "+00:00")) for name in ("started_at", "ended_at"))
    assert call["duration_seconds"] == int((ended - started).total_seconds())
    assert call["duration_seconds"] > 0

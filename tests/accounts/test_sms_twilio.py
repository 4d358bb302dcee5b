"""The Twilio SMS backend, through the real SDK and its HTTP client, against a local fake of
Twilio's Messages API on a loopback port: what it sends, and how each kind of refusal or outage
becomes 503 ``SMS_UNAVAILABLE`` with no code stored and nothing personal in the logs."""

import base64
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from accounts import sms
from accounts.models import PhoneVerification
from tests.accounts.helpers import PHONE, PHONE_SEND_CODE, PHONE_VERIFY
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "twilio-auth-token-" + "9" * 14
FROM_NUMBER = "+14155550100"
MESSAGING_SERVICE_SID = "MG" + "b2" * 16

# Numbers the fake treats specially, as Twilio does for its documented error cases.
INVALID_NUMBER = "+15005550001"  # 400, error 21211
FAILED_AT_ONCE = "+15005550009"  # 201, but status "failed"
SLOW_NUMBER = "+15005550077"  # answers after the client has given up


@dataclass
class FakeTwilio:
    """What the fake received: one dict of form fields per accepted POST, plus the auth it saw."""

    base_url: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def _twilio_error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _message_resource(form: dict[str, str], status: str) -> dict:
    sid = "SM" + secrets.token_hex(16)
    now = formatdate(usegmt=True)
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": form["Body"],
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": 30008 if status == "failed" else None,
        "error_message": "Unknown error" if status == "failed" else None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"},
        "to": form["To"],
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # the default writes every request to stderr
            pass

        def _answer(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            state.authorizations.append(self.headers.get("Authorization", ""))
            if not re.fullmatch(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json", self.path):
                return self._answer(404, _twilio_error(20404, "The requested resource was not found", 404))
            if self.headers.get("Authorization") != expected_auth or ACCOUNT_SID not in self.path:
                return self._answer(401, _twilio_error(20003, "Authenticate", 401))
            if not form.get("To") or not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
                return self._answer(400, _twilio_error(21603, "A 'From' or 'MessagingServiceSid' is required", 400))
            if form["To"] == INVALID_NUMBER:
                # Twilio's real error text quotes the number
                return self._answer(400, _twilio_error(21211, f"The 'To' number {form['To']} is not valid.", 400))
            if form["To"] == SLOW_NUMBER:
                time.sleep(1.5)
            state.messages.append(form)
            self._answer(201, _message_resource(form, "failed" if form["To"] == FAILED_AT_ONCE else "queued"))

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the slow case writes its answer after the client hung up


@pytest.fixture
def fake_twilio(settings):
    state = FakeTwilio()
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SMS_BACKEND = "accounts.sms.TwilioSmsBackend"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM_NUMBER
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_API_BASE_URL = state.base_url
    settings.TWILIO_TIMEOUT_SECONDS = 0.5
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _code_in(message: dict[str, str]) -> str:
    return re.search(r"\b(\d{6})\b", message["Body"]).group(1)


def _assert_nothing_personal_logged(caplog, *secrets_: str) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets_:
        assert secret not in logged
    assert AUTH_TOKEN not in logged
    assert all(record.exc_info is None for record in caplog.records)


def test_backend_posts_the_message_to_twilio_with_the_account_credentials(fake_twilio):
    # when the backend sends a text
    sms.send_sms(PHONE, "Your verification code is 123456. It expires soon.")

    # then Twilio's Messages API received it, from the configured number, with basic auth
    assert fake_twilio.messages == [
        {"To": PHONE, "From": FROM_NUMBER, "Body": "Your verification code is 123456. It expires soon."}
    ]
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert fake_twilio.authorizations == [f"Basic {expected}"]
    # and nothing went to the in-memory outbox
    assert sms.outbox == []


def test_backend_sends_from_the_messaging_service_when_one_is_set(fake_twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = MESSAGING_SERVICE_SID

    sms.send_sms(PHONE, "hello")

    (message,) = fake_twilio.messages
    assert message == {"To": PHONE, "MessagingServiceSid": MESSAGING_SERVICE_SID, "Body": "hello"}


def test_phone_code_goes_out_through_twilio_and_verifies_the_number(patient_client, patient, fake_twilio):
    # when a patient asks for a code
    response = patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})

    # then Twilio was asked to text it, and one live code is stored
    assert response.status_code == 202, response.content
    (message,) = fake_twilio.messages
    assert message["To"] == PHONE
    assert PhoneVerification.objects.filter(user=patient, consumed_at__isnull=True).count() == 1
    # and the texted code verifies the number
    verified = patient_client.post(PHONE_VERIFY, {"code": _code_in(message)})
    assert verified.status_code == 200, verified.content
    assert verified.json()["phone_verified"] is True


@pytest.mark.parametrize(
    ("number", "override"),
    [
        pytest.param(INVALID_NUMBER, {}, id="twilio-refuses-the-number"),
        pytest.param(FAILED_AT_ONCE, {}, id="twilio-marks-it-failed"),
        pytest.param(PHONE, {"TWILIO_AUTH_TOKEN": "a-revoked-token"}, id="wrong-credentials"),
        pytest.param(SLOW_NUMBER, {}, id="twilio-too-slow"),
        pytest.param(PHONE, {"TWILIO_API_BASE_URL": "http://127.0.0.1:9"}, id="twilio-unreachable"),
    ],
)
def test_undelivered_code_answers_503_and_leaves_nothing_behind(
    patient_client, patient, fake_twilio, settings, caplog, number, override
):
    # given Twilio that will not take this message
    for name, value in override.items():
        setattr(settings, name, value)
    caplog.set_level(logging.DEBUG)

    # when the patient asks for a code
    started = time.monotonic()
    response = patient_client.post(PHONE_SEND_CODE, {"phone_number": number})
    elapsed = time.monotonic() - started

    # then the answer is 503 SMS_UNAVAILABLE, soon (the timeout is 0.5 s)
    assert_error(response, 503, "SMS_UNAVAILABLE")
    assert elapsed < 5
    # and no code is stored and the account has no number
    assert not PhoneVerification.objects.filter(user=patient).exists()
    patient.refresh_from_db()
    assert patient.phone_number == ""
    # and the failure is logged by type, without the number, the code or Twilio's text
    assert any(record.name == "accounts.sms" and record.levelno == logging.ERROR for record in caplog.records)
    _assert_nothing_personal_logged(caplog, number, "is not valid", "Authenticate")

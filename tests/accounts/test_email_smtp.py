"""Account email over real SMTP: Django's SMTP backend, configured from an ``EMAIL_URL`` the way
the settings parse it, delivers a password-reset email to a local SMTP server (aiosmtpd) on a
loopback port, over STARTTLS or implicit TLS, with authentication and a verified certificate."""

import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta

import environ
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.accounts.helpers import PASSWORD_FORGOT, PASSWORD_RESET, STRONG_PASSWORD, link_in

pytestmark = pytest.mark.django_db

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret@relay"  # an @ must be percent-encoded in the URL
FRONTEND_URL = "https://app.clinic.example"
SENDER = "no-reply@clinic.example"


class Mailbox:
    """The aiosmtpd handler: keeps each delivered envelope and whether it came over TLS, signed in."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.deliveries.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "login": session.auth_data.login if session.authenticated else None,
            }
        )
        return "250 Message accepted for delivery"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> dict[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1. Its validity is wide on both sides,
    so it holds whether or not the process's clock has been moved (OpenSSL reads the real one)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1000))
        .not_valid_after(now + timedelta(days=1000))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {"cert": str(cert_path), "key": str(key_path)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate["cert"], certificate["key"])
    return context


@pytest.fixture
def smtp_server(certificate, request):
    """A local SMTP server that requires TLS (STARTTLS, or TLS from the start with the
    ``implicit_tls`` parameter) and a login; yields (mailbox, port)."""
    implicit_tls = getattr(request, "param", "starttls") == "implicit_tls"
    mailbox = Mailbox()
    tls = (
        {"ssl_context": _server_context(certificate)} if implicit_tls else {"tls_context": _server_context(certificate)}
    )
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=_free_port(),
        server_hostname="localhost",
        require_starttls=not implicit_tls,
        auth_required=True,
        # aiosmtpd counts only STARTTLS as TLS for this; with implicit TLS every byte is encrypted anyway
        auth_require_tls=not implicit_tls,
        authenticator=_authenticate,
        **tls,
    )
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def _use_email_url(settings, url: str) -> None:
    """Apply an EMAIL_URL as config/settings/base.py does."""
    for name, value in environ.Env.email_url_config(url).items():
        setattr(settings, name, value)
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = f"Clinic <{SENDER}>"
    settings.FRONTEND_URL = FRONTEND_URL


def _url(scheme: str, port: int) -> str:
    return f"{scheme}://{SMTP_USER}:{SMTP_PASSWORD.replace('@', '%40')}@localhost:{port}"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize(
    ("smtp_server", "scheme"),
    [("starttls", "smtp+tls"), ("starttls", "smtps"), ("implicit_tls", "smtp+ssl")],
    indirect=["smtp_server"],
)
def test_password_reset_email_is_delivered_over_tls_and_its_link_works(
    smtp_server, scheme, certificate, settings, monkeypatch, anon_client, patient, django_capture_on_commit_callbacks
):
    # given the SMTP backend pointed at a server whose certificate this machine trusts
    # (the default context the backend builds reads SSL_CERT_FILE)
    mailbox, port = smtp_server
    monkeypatch.setenv("SSL_CERT_FILE", certificate["cert"])
    _use_email_url(settings, _url(scheme, port))
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"

    # when the patient asks for a reset link
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(PASSWORD_FORGOT, {"email": patient.email})

    # then one email reached the server, over TLS, signed in, from our address to theirs
    assert response.status_code == 202
    (delivery,) = mailbox.deliveries
    assert delivery["tls"] is True
    assert delivery["login"] == SMTP_USER.encode()
    assert (delivery["mail_from"], delivery["rcpt_tos"]) == (SENDER, [patient.email])
    message = delivery["message"]
    assert message["Subject"] == "Reset your password"
    assert message["To"] == patient.email
    # and its link points at the web client and resets the password
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"{FRONTEND_URL}/reset-password?uid=" in body
    link = link_in(type("Sent", (), {"body": body}))
    reset = anon_client.post(
        PASSWORD_RESET, {"uid": link["uid"], "token": link["token"], "new_password": STRONG_PASSWORD}
    )
    assert reset.status_code == 204, reset.content


def test_a_server_whose_certificate_is_not_trusted_gets_nothing(
    smtp_server, settings, anon_client, patient, django_capture_on_commit_callbacks, caplog
):
    # given the SMTP backend pointed at a server presenting a certificate nobody vouches for
    mailbox, port = smtp_server
    _use_email_url(settings, _url("smtp+tls", port))
    caplog.set_level(logging.DEBUG)

    # when the patient asks for a reset link
    with django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(PASSWORD_FORGOT, {"email": patient.email})

    # then the answer is the usual one, the link and the password went nowhere, and the failure
    # is logged by type without the address
    assert response.status_code == 202
    assert mailbox.deliveries == []
    # (the server saw our side refuse its certificate during the handshake; it logs that from its
    # own thread, which may come after the client has given up)
    deadline = time.monotonic() + 5
    while "TLSV1_ALERT_UNKNOWN_CA" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "TLSV1_ALERT_UNKNOWN_CA" in caplog.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert patient.email not in logged
    assert SMTP_PASSWORD not in caplog.text

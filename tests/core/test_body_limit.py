"""The request body limit holds for bodies without Content-Length: counted as they arrive, at
the ASGI layer in front of Django, and refused with 413 PAYLOAD_TOO_LARGE before the rest is
read. Through the application (ASGI messages) and through a real uvicorn server (chunked)."""

import asyncio
import json
import time

import pytest

from config.asgi import application
from tests.realtime.conftest import served, served_url  # noqa: F401 - the fixture

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

LOGIN = "/api/v1/auth/login/"


def http_scope(path: str, headers: list[tuple[bytes, bytes]], content_type: bytes = b"application/json") -> dict:
    """The scope of a POST to ``path`` with ``headers`` besides the host and the content type."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", content_type), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(scope: dict, chunks: list[bytes]) -> tuple[list[dict], int]:
    """Run the application on ``chunks`` as http.request messages; the messages it sent and how
    many chunks it read."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        await asyncio.sleep(3600)  # no disconnect while the app answers
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await asyncio.wait_for(application(scope, receive, send), 30)
    return sent, read


def status_and_body(sent: list[dict]) -> tuple[int, dict]:
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], json.loads(body)


async def test_a_body_without_length_is_refused_once_past_the_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    chunks = [b"x" * 16 * 1024] * 1000  # 16 MB on offer

    sent, read = await call(http_scope(LOGIN, []), chunks)

    status, body = status_and_body(sent)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == {"limit": 64 * 1024}
    assert read == 5  # the chunk that crossed the limit is the last one read


async def test_a_declared_length_over_the_limit_is_refused_unread(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    sent, read = await call(http_scope(LOGIN, [(b"content-length", b"2048")]), [b"x" * 2048])

    status, body = status_and_body(sent)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert read == 0


async def test_the_refusal_carries_the_request_id(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    sent, _ = await call(http_scope(LOGIN, [(b"x-request-id", b"support-ticket-1234")]), [b"x" * 600] * 4)

    status, body = status_and_body(sent)
    headers = dict(next(message for message in sent if message["type"] == "http.response.start")["headers"])
    assert status == 413
    assert body["error"]["request_id"] == "support-ticket-1234"
    assert headers[b"x-request-id"] == b"support-ticket-1234"


async def test_a_chunked_body_within_the_limit_reaches_the_view(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    document = json.dumps({"email": "nobody@example.test", "password": "not-the-password"}).encode()
    chunks = [document[:10], document[10:30], document[30:]]

    sent, read = await call(http_scope(LOGIN, []), chunks)

    status, body = status_and_body(sent)
    assert status == 401, body
    assert body["error"]["code"] == "INVALID_CREDENTIALS"
    assert read == 3


async def test_a_request_declaring_no_body_goes_on_to_the_view(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    sent, _ = await call(http_scope(LOGIN, [(b"content-length", b"0")]), [b""])

    status, body = status_and_body(sent)
    assert status == 400, body  # the login's own answer to no credentials
    assert body["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.usefixtures("served")
async def test_a_200_mib_chunked_upload_to_a_served_app_is_refused_early():
    host, port = served_url().removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {LOGIN} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"x" * (64 * 1024)
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    offered = 200 * 1024 * 1024
    sent = 0
    started = time.monotonic()
    response = asyncio.ensure_future(reader.read(65536))
    try:
        while sent < offered and not response.done():
            writer.write(framed)
            sent += len(chunk)
            await asyncio.wait_for(writer.drain(), 10)
    except ConnectionError:
        pass  # the server closed the connection after answering
    head = await asyncio.wait_for(response, 10)
    elapsed = time.monotonic() - started
    # The status line and the body may arrive in separate reads.
    deadline = time.monotonic() + 10
    while b"PAYLOAD_TOO_LARGE" not in head and time.monotonic() < deadline:
        more = await asyncio.wait_for(reader.read(65536), 10)
        if not more:
            break
        head += more
    writer.close()

    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert b'"PAYLOAD_TOO_LARGE"' in head
    # Refused after about the limit, not after the 200 MiB (socket buffers hold a few MiB more).
    assert sent < 32 * 1024 * 1024, (sent, elapsed)

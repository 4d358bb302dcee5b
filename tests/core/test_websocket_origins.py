"""The socket's default allowed origins follow the host and port served (HOST, PORT), so
``make run PORT=8102`` accepts its own pages. The settings are read in a fresh process per case:
they are computed once, at import. The handshake itself is checked against a real server at a
free port in tests/realtime/test_embedded_layer.py."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

FRONTEND = "http://localhost:3000"


def _origins(**environment: str) -> list[str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HOST", "PORT", "WEBSOCKET_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGINS"}
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from config.settings import base; print(json.dumps(base.WEBSOCKET_ALLOWED_ORIGINS))",
        ],
        cwd=settings.BASE_DIR,
        env={**inherited, "CORS_ALLOWED_ORIGINS": FRONTEND, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, [FRONTEND, "http://localhost:8000", "http://127.0.0.1:8000"]),
        ({"PORT": "8102"}, [FRONTEND, "http://localhost:8102", "http://127.0.0.1:8102"]),
        ({"HOST": "localhost", "PORT": "8102"}, [FRONTEND, "http://localhost:8102", "http://127.0.0.1:8102"]),
        ({"HOST": "0.0.0.0", "PORT": "9000"}, [FRONTEND, "http://localhost:9000", "http://127.0.0.1:9000"]),
        (
            {"HOST": "clinic.lan", "PORT": "8102"},
            [FRONTEND, "http://localhost:8102", "http://127.0.0.1:8102", "http://clinic.lan:8102"],
        ),
        (
            {"HOST": "::1", "PORT": "8102"},
            [FRONTEND, "http://localhost:8102", "http://127.0.0.1:8102", "http://[::1]:8102"],
        ),
    ],
)
def test_the_default_allows_the_origin_at_the_host_and_port_served(environment, expected):
    assert _origins(**environment) == expected


def test_an_explicit_list_replaces_the_default():
    assert _origins(PORT="8102", WEBSOCKET_ALLOWED_ORIGINS="https://app.clinic.example") == [
        "https://app.clinic.example"
    ]


def test_the_server_command_hands_its_host_and_port_to_the_settings(monkeypatch):
    # given no HOST or PORT in the environment, and the server started with its own options
    from config import serve

    for name in ("HOST", "PORT"):
        monkeypatch.setenv(name, "")  # recorded, so what the command sets is undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.setattr(serve.uvicorn, "run", lambda app, **options: None)

    serve.main(["--host", "127.0.0.1", "--port", "8102"])

    # then the settings the application loads see what is served
    assert (os.environ["HOST"], os.environ["PORT"]) == ("127.0.0.1", "8102")
    assert _origins(HOST=os.environ["HOST"], PORT=os.environ["PORT"])[1:] == [
        "http://localhost:8102",
        "http://127.0.0.1:8102",
    ]

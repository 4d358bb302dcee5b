"""The reference client's page: served only when enabled, fenced in by its headers."""

import pytest
from django.test import override_settings

from demo.views import content_security_policy


def test_the_page_loads_its_modules_from_this_host(client):
    response = client.get("/demo/")

    assert response.status_code == 200
    assert b'<script type="module" src="/static/demo/app.js">' in response.content
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "camera=(self)" in response["Permissions-Policy"]


@override_settings(DEMO_CLIENT_ENABLED=False)
def test_disabled_it_is_not_found_in_the_error_shape(client):
    response = client.get("/demo/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@override_settings(WEBSOCKET_PUBLIC_URL="wss://rt.clinic.example/ws/")
def test_the_policy_lets_the_page_open_the_socket_it_is_told_to():
    assert "connect-src 'self' wss://rt.clinic.example" in content_security_policy()


@override_settings(WEBSOCKET_PUBLIC_URL="wss://rt.clinic.example/ws/")
def test_the_page_tells_its_scripts_where_the_socket_is(client):
    """socket.js opens this URL with the access token: no ticket answer carries it any more."""
    assert b'data-socket-url="wss://rt.clinic.example/ws/"' in client.get("/demo/").content


@pytest.mark.parametrize("module", ["app", "api", "socket", "call", "peer", "chat"])
def test_every_module_is_served(client, module):
    assert client.get(f"/static/demo/{module}.js").status_code == 200


def test_another_method_is_refused_in_the_error_shape(client):
    response = client.post("/demo/")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response["Allow"] == "GET, HEAD"

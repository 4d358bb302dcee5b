"""The guard around the direct path's use of uvicorn's and websockets' internals
(realtime/direct.py ``REQUIRED_INTERNALS``), and the setting that turns the direct path off
(config/serve.py, ``REALTIME_DIRECT_PATH``)."""

import asyncio
import logging
from importlib.metadata import version

import pytest
import pytest_asyncio
import uvicorn
import websockets.protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from config import serve
from config.asgi import application
from realtime import direct
from realtime.direct import DirectTextWebSocketProtocol
from tests.realtime import conftest
from tests.realtime.test_direct import _both_in_call, _offer, record_asgi_path
from tests.realtime.test_signaling import SDP, _ongoing_call

RE_VERIFY = (
    "{installed} is installed, and the direct WebSocket path (realtime/direct.py) was verified against {verified}. "
    "Read the new release's source before updating VERIFIED_VERSIONS there: each of REQUIRED_INTERNALS ("
    + ", ".join(direct.REQUIRED_INTERNALS + direct.REQUIRED_FROM_HANDSHAKE)
    + ") must still exist and mean what realtime/direct.py assumes (uvicorn's WebSocketsSansIOProtocol and "
    "websockets' ServerProtocol: who calls send_receive_event_to_app, when reading pauses, what the parser keeps in "
    "reader.buffer and current_size); the frame reader must still agree with websockets' parser "
    "(tests/realtime/test_frames.py) and order and back-pressure must still hold (tests/realtime/test_direct.py); "
    "then rerun make bench-signaling."
)


def _delete_after_init(monkeypatch, cls: type, attribute: str) -> None:
    """Instances of ``cls`` come out of __init__ without ``attribute``, as after a rename upstream."""
    original = cls.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        delattr(self, attribute)

    monkeypatch.setattr(cls, "__init__", init)


@pytest.mark.parametrize("package", sorted(direct.VERIFIED_VERSIONS))
def test_the_installed_release_is_the_one_the_direct_path_was_verified_against(package):
    verified, installed = direct.VERIFIED_VERSIONS[package], version(package)

    assert installed == verified, RE_VERIFY.format(verified=f"{package} {verified}", installed=f"{package} {installed}")


def test_the_installed_releases_have_everything_the_direct_path_needs(caplog):
    assert direct.missing_internals() == []
    assert serve.server_options(direct_path=True) == serve.SERVER_OPTIONS
    assert not [record for record in caplog.records if record.name == "realtime.direct"]


def test_a_method_gone_from_uvicorns_protocol_turns_the_direct_path_off(monkeypatch, caplog):
    monkeypatch.delattr(WebSocketsSansIOProtocol, "send_receive_event_to_app")

    options = serve.server_options(direct_path=True)

    assert options["ws"] == "websockets-sansio"
    assert direct.missing_internals() == ["send_receive_event_to_app()"]
    (warning,) = [record for record in caplog.records if record.name == "realtime.direct"]
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "lack send_receive_event_to_app()" in message
    assert f"uvicorn {version('uvicorn')}, websockets {version('websockets')}" in message
    verified = ", ".join(f"{package} {release}" for package, release in direct.VERIFIED_VERSIONS.items())
    assert f"verified against {verified}" in message


@pytest.mark.parametrize(
    ("cls", "attribute", "reported"),
    [
        (WebSocketsSansIOProtocol, "curr_msg_data_type", "curr_msg_data_type"),
        (WebSocketsSansIOProtocol, "writable", "writable.is_set()"),
        (WebSocketsSansIOProtocol, "queue", "queue.empty()"),
        (websockets.protocol.Protocol, "current_size", "conn.current_size"),
        (websockets.protocol.Protocol, "parser_exc", "conn.parser_exc"),
        (websockets.protocol.Protocol, "reader", "conn.reader.buffer"),
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_connection_state_gone_from_a_new_instance_turns_the_direct_path_off(
    monkeypatch, caplog, cls, attribute, reported
):
    _delete_after_init(monkeypatch, cls, attribute)

    options = serve.server_options(direct_path=True)

    assert options["ws"] == "websockets-sansio"
    assert direct.missing_internals() == [reported]
    assert any(reported in record.getMessage() for record in caplog.records if record.name == "realtime.direct")


def test_the_protocol_checks_uvicorns_methods_not_its_own_overrides_of_them(monkeypatch, caplog):
    """On its first connection the protocol checks itself; it overrides connection_lost, and
    must still notice that uvicorn's is gone."""
    monkeypatch.setattr(DirectTextWebSocketProtocol, "internals_missing", None)  # a new process
    monkeypatch.delattr(WebSocketsSansIOProtocol, "connection_lost")
    config = uvicorn.Config(application, ws=DirectTextWebSocketProtocol, http="h11", lifespan="off", log_config=None)
    config.load()
    loop = asyncio.new_event_loop()

    try:
        protocol = DirectTextWebSocketProtocol(config, ServerState(), {}, _loop=loop)
    finally:
        loop.close()

    assert DirectTextWebSocketProtocol.internals_missing == ["connection_lost()"]
    assert protocol.reads_frames is False
    assert any("lack connection_lost()" in record.getMessage() for record in caplog.records)


def test_a_method_that_is_no_longer_callable_counts_as_missing(monkeypatch):
    monkeypatch.setattr(websockets.protocol.Protocol, "data_to_send", None)

    assert direct.missing_internals() == ["conn.data_to_send()"]


def test_a_handshake_that_no_longer_sets_the_scope_turns_the_direct_path_off(monkeypatch):
    def handle_connect(self, event):
        self.request = event
        self.connection_scope = {"type": "websocket"}

    monkeypatch.setattr(WebSocketsSansIOProtocol, "handle_connect", handle_connect)

    assert direct.missing_internals() == ["scope (set by handle_connect)"]
    assert serve.server_options(direct_path=True)["ws"] == "websockets-sansio"


def test_a_protocol_uvicorn_can_no_longer_build_turns_the_direct_path_off(monkeypatch):
    def init(self, config, server_state, app_state, transport_factory, _loop=None):
        raise AssertionError("not reached")

    monkeypatch.setattr(WebSocketsSansIOProtocol, "__init__", init)

    (problem,) = direct.missing_internals()
    assert problem.startswith("WebSocketsSansIOProtocol() as uvicorn builds it (TypeError")
    assert serve.server_options(direct_path=True)["ws"] == "websockets-sansio"


def test_the_setting_off_serves_with_the_stock_protocol_and_nothing_else_changes():
    options = serve.server_options(direct_path=False)

    assert options["ws"] == "websockets-sansio"
    assert {name: value for name, value in options.items() if name != "ws"} == {
        name: value for name, value in serve.SERVER_OPTIONS.items() if name != "ws"
    }
    assert serve.SERVER_OPTIONS["ws"] == "realtime.direct:DirectTextWebSocketProtocol"


@pytest.mark.parametrize(
    ("environment", "argv", "protocol"),
    [
        (None, [], "realtime.direct:DirectTextWebSocketProtocol"),
        ("true", [], "realtime.direct:DirectTextWebSocketProtocol"),
        ("false", [], "websockets-sansio"),
        (" OFF ", [], "websockets-sansio"),
        ("0", [], "websockets-sansio"),
        ("false", ["--direct-path"], "realtime.direct:DirectTextWebSocketProtocol"),
        ("true", ["--no-direct-path"], "websockets-sansio"),
    ],
)
def test_the_server_command_picks_the_protocol_from_the_setting(monkeypatch, environment, argv, protocol):
    served_with: list[dict] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda app, **options: served_with.append(options))
    if environment is None:
        monkeypatch.delenv("REALTIME_DIRECT_PATH", raising=False)
    else:
        monkeypatch.setenv("REALTIME_DIRECT_PATH", environment)

    serve.main(argv)

    (options,) = served_with
    assert options["ws"] == protocol


def test_a_setting_that_is_not_a_yes_or_no_stops_the_server_command(monkeypatch, capsys):
    monkeypatch.setattr(serve.uvicorn, "run", lambda app, **options: pytest.fail("served"))
    monkeypatch.setenv("REALTIME_DIRECT_PATH", "sometimes")

    with pytest.raises(SystemExit) as exit_info:
        serve.main([])

    assert exit_info.value.code == 2
    assert "REALTIME_DIRECT_PATH: expected true or false, not 'sometimes'" in capsys.readouterr().err


# --- Served -------------------------------------------------------------------------------------


@pytest.fixture
def call(doctor, patient):
    return _ongoing_call(doctor, patient)


@pytest_asyncio.fixture
async def served_stock():
    """The application served as ``REALTIME_DIRECT_PATH=false`` serves it; ``open_socket``
    connects through it."""
    async with conftest.serving(serve.server_options(direct_path=False)) as server:
        yield server


def _websocket_protocols(server) -> list:
    return [
        connection for connection in server.server_state.connections if isinstance(connection, WebSocketsSansIOProtocol)
    ]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_served_with_the_setting_off_signals_take_the_ordinary_path(
    served_stock, monkeypatch, call, doctor, patient
):
    through_asgi = record_asgi_path(monkeypatch)
    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)

    await doctor_socket.send_json_to(_offer(call, patient, 1))
    relayed = await conftest.next_event(patient_socket)

    assert relayed["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == ["call.join", "call.join", "signal.offer", "signal.offer"]
    assert {type(connection) for connection in _websocket_protocols(served_stock)} == {WebSocketsSansIOProtocol}
    await doctor_socket.disconnect()
    await patient_socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_protocol_behaves_as_the_stock_one_when_it_finds_state_missing_on_its_first_connection(
    served, monkeypatch, caplog, call, doctor, patient
):
    """Served with ``--ws realtime.direct:...`` directly, past config/serve.py's check."""
    through_asgi = record_asgi_path(monkeypatch)
    monkeypatch.setattr(DirectTextWebSocketProtocol, "internals_missing", None)  # a new process
    _delete_after_init(monkeypatch, WebSocketsSansIOProtocol, "curr_msg_data_type")  # stock code sets it before use

    doctor_socket, patient_socket = await _both_in_call(call, doctor, patient)
    await doctor_socket.send_json_to(_offer(call, patient, 1, id="after"))
    ack = await conftest.next_event(doctor_socket)
    relayed = await conftest.next_event(patient_socket)

    assert ack == {"type": "ack", "id": "after", "data": {"type": "signal.offer"}}
    assert relayed["data"]["sdp"] == f"{SDP}1"
    assert through_asgi == ["call.join", "call.join", "signal.offer", "signal.offer"]
    connections = _websocket_protocols(served)
    assert [(connection.reads_frames, connection.direct) for connection in connections] == [(False, None)] * 2
    assert DirectTextWebSocketProtocol.internals_missing == ["curr_msg_data_type"]
    warnings = [record.getMessage() for record in caplog.records if record.name == "realtime.direct"]
    assert len(warnings) == 1  # once per process, not per connection
    assert "lack curr_msg_data_type" in warnings[0]
    await doctor_socket.disconnect()
    await patient_socket.disconnect()

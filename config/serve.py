"""Serve HTTP and the WebSocket the way production does: ``python -m config.serve``.

uvicorn with the WebSocket protocol of realtime/direct.py (signals relayed without the ASGI
queue hop), uvloop and httptools. On a 2-core machine this relays several times what daphne
does on the same application (docs/performance.md). Per-message compression is off: browsers
offer it, but for signaling it costs CPU and memory per connection to save bandwidth that is
small next to the media. Daphne still serves the same application (``daphne
config.asgi:application``, and ``manage.py runserver``); it just takes the ordinary path for
every message.

Several processes (``--workers``) share calls through the Redis channel layer; give each
machine about one per core.

``REALTIME_DIRECT_PATH=false`` (or ``--no-direct-path``) serves with uvicorn's stock
websockets-sansio protocol instead: every message then takes the ordinary ASGI path, as under
daphne. The same happens, with a warning, when the installed uvicorn or websockets lack a private
part the direct path relies on (``realtime.direct.REQUIRED_INTERNALS``).
"""

import argparse
import os

import uvicorn

from realtime.direct import fast_path_usable

# uvicorn's own protocol with the same parser and limits, without the direct path.
STOCK_WEBSOCKET_PROTOCOL = "websockets-sansio"

SERVER_OPTIONS = {
    "ws": "realtime.direct:DirectTextWebSocketProtocol",
    "loop": "uvloop",
    "http": "httptools",
    "ws_per_message_deflate": False,
    # websockets refuses larger frames (1009) before buffering them; the application's own,
    # smaller limit (REALTIME_MAX_FRAME_BYTES, also 1009) applies below this.
    "ws_max_size": 1 << 20,
    "lifespan": "off",
    "server_header": False,
}


def server_options(*, direct_path: bool) -> dict:
    """SERVER_OPTIONS with the WebSocket protocol to serve: the direct path's, unless it is turned
    off or the installed uvicorn and websockets lack what it needs (then the stock one)."""
    if direct_path and fast_path_usable():
        return dict(SERVER_OPTIONS)
    return {**SERVER_OPTIONS, "ws": STOCK_WEBSOCKET_PROTOCOL}


_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _flag(value: str) -> bool:
    try:
        return _FLAGS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, not {value!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the telehealth API and WebSocket.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    parser.add_argument("--log-level", default=os.environ.get("SERVER_LOG_LEVEL", "info"))
    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        help="Proxies trusted for X-Forwarded-For/-Proto (comma-separated, or *).",
    )
    parser.add_argument(
        "--direct-path",
        action=argparse.BooleanOptionalAction,
        help="Relay signals in the server's read callback (realtime/direct.py; default: REALTIME_DIRECT_PATH, "
        "else on); --no-direct-path serves with uvicorn's stock protocol.",
    )
    arguments = parser.parse_args(argv)
    # The settings derive the socket's default allowed origins from HOST and PORT; the options
    # given here are what is served, so the application (loaded below) reads them.
    os.environ["HOST"] = arguments.host
    os.environ["PORT"] = str(arguments.port)
    direct_path = arguments.direct_path
    if direct_path is None:
        try:
            direct_path = _flag(os.environ.get("REALTIME_DIRECT_PATH", "true"))
        except ValueError as error:
            parser.error(f"REALTIME_DIRECT_PATH: {error}")
    uvicorn.run(
        "config.asgi:application",
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        log_level=arguments.log_level,
        forwarded_allow_ips=arguments.forwarded_allow_ips,
        backlog=4096,
        **server_options(direct_path=direct_path),
    )


if __name__ == "__main__":
    main()

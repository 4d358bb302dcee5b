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
"""

import argparse
import os

import uvicorn

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
    arguments = parser.parse_args(argv)
    uvicorn.run(
        "config.asgi:application",
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        log_level=arguments.log_level,
        forwarded_allow_ips=arguments.forwarded_allow_ips,
        backlog=4096,
        **SERVER_OPTIONS,
    )


if __name__ == "__main__":
    main()

"""The raw reference relay for ``make bench-signaling``: Python ``websockets``, nothing else.

It is the ceiling a Python signaling server can reach on this machine: no authentication, no
database, no channel layer. A client connects with ``?user=<id>``; every text frame it sends is
a JSON object ``{"to": "<id>", ...}`` and is forwarded, unchanged, to the connection of that
user. Frames for a user who is not connected are dropped (and counted in the log at exit).

Run: ``python bench/signaling/raw_relay.py --port 8765`` (binds 127.0.0.1 only).
"""

import argparse
import asyncio
import json
import signal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve

clients: dict[str, ServerConnection] = {}
dropped = 0


async def handler(connection: ServerConnection) -> None:
    global dropped
    query = parse_qs(urlsplit(connection.request.path).query)
    user = (query.get("user") or [""])[0]
    if not user:
        await connection.close(code=4400, reason="user required")
        return
    clients[user] = connection
    try:
        async for message in connection:
            try:
                to = json.loads(message)["to"]
            except (ValueError, KeyError, TypeError):
                dropped += 1
                continue
            peer = clients.get(to)
            if peer is None:
                dropped += 1
                continue
            await peer.send(message)
    finally:
        if clients.get(user) is connection:
            del clients[user]


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # No compression (browsers offer it, but the load generator does not), no keepalive pings:
    # the same frames on the wire as for every other target.
    async with serve(
        handler, host, port, compression=None, ping_interval=None, max_size=1 << 20, backlog=4096
    ) as server:
        print(f"raw relay listening on {host}:{port}", flush=True)
        await stop
        server.close()
    print(f"raw relay stopped; {dropped} frames dropped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.host, arguments.port))

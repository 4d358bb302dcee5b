"""WebSocket frames on the production protocol (realtime/direct.py), which reads the common
frame (whole, masked, text) itself and leaves every other frame to websockets. A raw client
writes frames byte for byte and reads every frame the server sends, pongs and close frames
included, with websockets' sans-I/O client."""

import asyncio
import json
import random
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

from config.serve import SERVER_OPTIONS
from realtime.direct import DirectTextWebSocketProtocol
from realtime.tickets import ticket_issue
from tests.realtime.conftest import ORIGIN, served_url

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("served")]


class RawClient:
    """A connection to the served application that writes whatever bytes a test gives it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol) -> None:
        self.reader, self.writer, self.protocol = reader, writer, protocol
        self.pending: list[Frame] = []

    @classmethod
    async def open(cls, user) -> "RawClient":
        ticket = await database_sync_to_async(ticket_issue)(user=user)
        url = f"{served_url()}/ws/?ticket={ticket}"
        address = urlsplit(url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        protocol = ClientProtocol(parse_uri(url), origin=Origin(ORIGIN[1].decode()))
        protocol.send_request(protocol.connect())
        client = cls(reader, writer, protocol)
        client.flush()
        while protocol.state is not State.OPEN:
            await client._read()
        ready = await client.next_text()
        assert json.loads(ready)["type"] == "connection.ready"
        return client

    def flush(self) -> None:
        self.writer.write(b"".join(self.protocol.data_to_send()))

    async def _read(self) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), 5)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.pending.extend(event for event in self.protocol.events_received() if isinstance(event, Frame))
        assert data or self.pending or self.protocol.state is State.CLOSED, "the server closed without a frame"

    async def next_frame(self) -> Frame:
        while not self.pending:
            await self._read()
        return self.pending.pop(0)

    async def next_text(self) -> str:
        """The next text frame, skipping presence updates."""
        while True:
            frame = await self.next_frame()
            if frame.opcode is Opcode.TEXT and not frame.data.startswith(b'{"type":"presence.updated"'):
                return frame.data.decode()

    async def close_code(self) -> int:
        """The code of the close frame the server sends next (text frames before it are skipped)."""
        while True:
            frame = await self.next_frame()
            if frame.opcode is Opcode.CLOSE:
                return self.protocol.close_rcvd.code

    async def write(self, data: bytes, *, chunk: int | None = None) -> None:
        """Write raw bytes, in pieces of ``chunk`` bytes that each reach the server on its own."""
        if chunk is None:
            self.writer.write(data)
            await self.writer.drain()
            return
        for start in range(0, len(data), chunk):
            self.writer.write(data[start : start + chunk])
            await self.writer.drain()
            await asyncio.sleep(0.002)

    def close(self) -> None:
        self.writer.close()


def masked(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True)


def heartbeat(request_id: str, pad: int = 0) -> bytes:
    message = {"type": "presence.heartbeat", "id": request_id, "data": {"pad": "x" * pad} if pad else {}}
    return json.dumps(message).encode()


def ack_id(text: str) -> str:
    message = json.loads(text)
    assert message["type"] == "ack", message
    return message["id"]


@pytest.mark.parametrize(("pad", "chunk"), [(0, 1), (1000, 7), (70_000, 4096)], ids=["7-bit", "16-bit", "64-bit"])
async def test_a_frame_arriving_in_pieces_is_read_whole(patient, pad, chunk, settings):
    """Each length encoding of RFC 6455, with the header itself split where the chunk falls."""
    settings.REALTIME_MAX_FRAME_BYTES = 128 * 1024
    client = await RawClient.open(patient)

    await client.write(masked(Opcode.TEXT, heartbeat("split", pad)), chunk=chunk)

    assert ack_id(await client.next_text()) == "split"
    client.close()


async def test_frames_written_together_are_each_handled_in_order(patient, served):
    client = await RawClient.open(patient)
    sockets = [
        connection
        for connection in served.server_state.connections
        if isinstance(connection, DirectTextWebSocketProtocol)
    ]

    await client.write(b"".join(masked(Opcode.TEXT, heartbeat(str(n))) for n in range(5)) + masked(Opcode.TEXT, b"{"))

    assert [ack_id(await client.next_text()) for _ in range(5)] == ["0", "1", "2", "3", "4"]
    assert json.loads(await client.next_text())["data"]["code"] == "MALFORMED_MESSAGE"
    assert [socket.reads_frames for socket in sockets] == [True]  # not websockets' parser
    client.close()


async def test_a_ping_between_text_frames_is_answered_and_both_texts_are_handled(patient):
    client = await RawClient.open(patient)

    await client.write(
        masked(Opcode.TEXT, heartbeat("before"))
        + masked(Opcode.PING, b"are you there")
        + masked(Opcode.TEXT, heartbeat("after"))
    )
    frames = [await client.next_frame() for _ in range(3)]

    pongs = [frame.data for frame in frames if frame.opcode is Opcode.PONG]
    acks = [ack_id(frame.data.decode()) for frame in frames if frame.opcode is Opcode.TEXT]
    assert pongs == [b"are you there"]
    assert acks == ["before", "after"]
    client.close()


async def test_a_fragmented_message_is_reassembled_and_plain_frames_follow(patient):
    message = heartbeat("fragmented")
    client = await RawClient.open(patient)

    await client.write(
        masked(Opcode.TEXT, message[:10], fin=False)
        + masked(Opcode.PING, b"mid-message")
        + masked(Opcode.CONT, message[10:20], fin=False)
        + masked(Opcode.CONT, message[20:])
        + masked(Opcode.TEXT, heartbeat("next"))
    )

    assert ack_id(await client.next_text()) == "fragmented"
    assert ack_id(await client.next_text()) == "next"
    client.close()


async def test_a_text_frame_inside_a_fragmented_message_closes_with_1002(patient):
    client = await RawClient.open(patient)

    await client.write(masked(Opcode.TEXT, b'{"type":', fin=False) + masked(Opcode.TEXT, heartbeat("x")))

    assert await client.close_code() == 1002
    client.close()


async def test_an_unmasked_frame_closes_with_1002(patient):
    client = await RawClient.open(patient)

    await client.write(Frame(Opcode.TEXT, heartbeat("bare")).serialize(mask=False))

    assert await client.close_code() == 1002
    client.close()


async def test_text_that_is_not_utf8_closes_with_1007(patient):
    client = await RawClient.open(patient)

    await client.write(masked(Opcode.TEXT, b'{"type": "\xff"}'))

    assert await client.close_code() == 1007
    client.close()


async def test_a_frame_over_the_server_limit_closes_with_1009_before_its_payload_arrives(patient):
    client = await RawClient.open(patient)
    size = SERVER_OPTIONS["ws_max_size"] + 1

    await client.write(bytes((0x81, 0x80 | 127)) + size.to_bytes(8) + b"mask")  # the header alone

    assert await client.close_code() == 1009
    client.close()


async def test_a_frame_over_the_application_limit_closes_with_1009(patient, settings):
    client = await RawClient.open(patient)

    await client.write(masked(Opcode.TEXT, heartbeat("big", settings.REALTIME_MAX_FRAME_BYTES)))

    assert await client.close_code() == 1009
    client.close()


async def test_a_close_from_the_client_is_echoed_and_later_frames_are_ignored(patient):
    client = await RawClient.open(patient)

    await client.write(masked(Opcode.CLOSE, (1000).to_bytes(2) + b"bye") + masked(Opcode.TEXT, heartbeat("late")))

    assert await client.close_code() == 1000
    assert not [frame for frame in client.pending if frame.opcode is Opcode.TEXT]
    client.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_mixed_stream_cut_at_random_points_is_read_as_sent(patient, seed):
    """Whole and fragmented texts with pings in between, written in random pieces: every text
    is answered in order and every ping once, however the bytes arrive."""
    rng = random.Random(seed)
    stream, pings = b"", []
    for number in range(25):
        message = heartbeat(str(number), pad=rng.choice([0, 200, 3000]))
        if rng.random() < 0.3:
            cut = rng.randrange(1, len(message))
            stream += masked(Opcode.TEXT, message[:cut], fin=False) + masked(Opcode.CONT, message[cut:])
        else:
            stream += masked(Opcode.TEXT, message)
        if rng.random() < 0.3:
            pings.append(f"ping {number}".encode())
            stream += masked(Opcode.PING, pings[-1])
    client = await RawClient.open(patient)

    offset = 0
    while offset < len(stream):
        size = rng.randint(1, 400)
        await client.write(stream[offset : offset + size])
        offset += size
    frames = [await client.next_frame() for _ in range(25 + len(pings))]

    acks = [ack_id(frame.data.decode()) for frame in frames if frame.opcode is Opcode.TEXT]
    assert acks == [str(number) for number in range(25)]
    assert [frame.data for frame in frames if frame.opcode is Opcode.PONG] == pings
    client.close()

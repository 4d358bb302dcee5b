"""Frames the production protocol writes itself (realtime/direct.py) are the ones websockets
would write."""

import pytest
from websockets.frames import Frame, Opcode

from realtime.direct import text_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_text_frames_use_the_length_encoding_websockets_does(size):
    payload = b"x" * size

    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)

"""The frozen booth socket's client frames (RFC 6455 5.2/5.3), decoded back by hand, for every length encoding."""

from __future__ import annotations

import struct

import pytest

from harness.clients.frozen_ws import masked_text_frame


def decode_client_frame(frame: bytes) -> str:
    assert frame[0] == 0x81  # FIN + text
    assert frame[1] & 0x80  # RFC 6455 5.3: every client frame is masked
    n, offset = frame[1] & 0x7F, 2
    if n == 126:
        n, offset = struct.unpack("!H", frame[2:4])[0], 4
    elif n == 127:
        n, offset = struct.unpack("!Q", frame[2:10])[0], 10
    key, payload = frame[offset:offset + 4], frame[offset + 4:]
    assert len(payload) == n
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload)).decode()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_masked_text_frame_round_trips(size):
    text = "x" * size
    assert decode_client_frame(masked_text_frame(text)) == text


def test_masks_differ_between_frames():
    assert masked_text_frame("same")[2:6] != masked_text_frame("same")[2:6]

"""FrameReader, the buffer-filling framer: same frames as the bytes, however chunked."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import FrameTooLarge, InvalidFrame
from protocol.framing import FrameReader


def stream(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


def deliver(reader: FrameReader, data: bytes, chunk: int) -> list[bytes]:
    """Play the transport: fill whatever buffer the reader offers, `chunk` at most."""
    out: list[bytes] = []
    at = 0
    while at < len(data):
        buf = reader.get_buffer()
        assert len(buf) > 0
        n = min(len(buf), chunk, len(data) - at)
        buf[:n] = data[at : at + n]
        reader.buffer_updated(n)
        at += n
        while (frame := reader.next_frame()) is not None:
            out.append(bytes(frame))
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=300),
            # Large payloads by size (generating 70 KB of random bytes is slow).
            st.integers(min_value=30_000, max_value=70_000).map(lambda n: bytes([n % 251]) * n),
        ),
        max_size=8,
    ),
    st.integers(min_value=64, max_value=300_000),
)
def test_frames_come_out_whole_and_in_order(payloads: list[bytes], chunk: int) -> None:
    reader = FrameReader(1 << 20)
    assert deliver(reader, stream(payloads), chunk) == payloads
    assert reader.buffered_bytes == 0


def test_one_byte_at_a_time() -> None:
    payloads = [b"", b"a", b"xyz" * 20_000, b"tail"]
    assert deliver(FrameReader(1 << 20), stream(payloads), 1) == payloads


def test_large_frame_is_filled_in_place_not_copied() -> None:
    reader = FrameReader(1 << 20)
    payload = bytes(range(256)) * 400  # 100 KiB
    data = stream([payload])
    first = reader.get_buffer()
    first[:10] = data[:10]
    reader.buffer_updated(10)
    assert reader.next_frame() is None
    direct = reader.get_buffer()
    assert len(direct) == len(payload) - 6  # exactly the rest of this frame
    direct[:] = data[10:]
    reader.buffer_updated(len(direct))
    frame = reader.next_frame()
    assert frame is not None and bytes(frame) == payload
    assert isinstance(frame, bytearray)


def test_trailing_partial_frame_stays_buffered() -> None:
    reader = FrameReader(1 << 20)
    data = stream([b"one", b"two"])[:-1]
    assert deliver(reader, data, 4096) == [b"one"]
    assert reader.buffered_bytes == 6


@pytest.mark.parametrize(
    ("prefix", "error"),
    [(struct.pack(">i", -1), InvalidFrame), (struct.pack(">i", 2_000), FrameTooLarge)],
)
def test_bad_size_prefix_raises(prefix: bytes, error: type[Exception]) -> None:
    reader = FrameReader(1_000)
    with pytest.raises(error):
        deliver(reader, prefix + b"x" * 10, 100)

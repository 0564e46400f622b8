"""FrameReader, the buffer-filling framer: same frames as the bytes, however chunked."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog.protocol.errors import FrameTooLarge, InvalidFrame
from tidelog.protocol.framing import FrameReader


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


def test_a_large_frame_that_has_arrived_is_received_in_place_not_copied() -> None:
    payload = bytes(range(256)) * 400  # 100 KiB
    data = stream([payload])
    waiting = [len(data) - 10]  # what the kernel holds after the first read
    reader = FrameReader(1 << 20, queued_bytes=lambda: waiting[0])
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


def test_a_size_prefix_alone_costs_its_four_bytes() -> None:
    reader = FrameReader(200 << 20)
    deliver(reader, struct.pack(">i", 100 << 20), 4)
    assert reader.next_frame() is None
    assert reader.allocated_bytes <= 4


@pytest.mark.parametrize("chunk", [1, 7, 1000, 70_000])
def test_a_partial_frame_holds_at_most_twice_what_arrived(chunk: int) -> None:
    reader = FrameReader(200 << 20)
    data = struct.pack(">i", 100 << 20) + bytes(300_000)
    at, worst = 0, 0.0
    while at < len(data):
        buf = reader.get_buffer()
        n = min(len(buf), chunk, len(data) - at)
        buf[:n] = data[at : at + n]
        reader.buffer_updated(n)
        at += n
        assert reader.next_frame() is None
        worst = max(worst, reader.allocated_bytes / (2 * at + 4096))
    assert worst <= 1.0
    assert reader.buffered_bytes == len(data)


def test_a_trickled_frame_is_regrown_a_logarithmic_number_of_times() -> None:
    grown: list[int] = []

    def queued() -> int:
        grown.append(1)
        return 0

    reader = FrameReader(1 << 20, queued_bytes=queued)
    payload = bytes(200_000)
    assert deliver(reader, stream([payload]), 1) == [payload]
    assert len(grown) <= 20  # 4 KiB doubling to 200 KB is 6 steps; one a byte would be 200k


def test_readers_sharing_one_scratch_keep_their_own_frames() -> None:
    scratch = bytearray(4096)
    a, b = FrameReader(1 << 20, scratch), FrameReader(1 << 20, scratch)
    one = stream([b"a1", b"a2" * 3000, b"a3"])
    two = stream([b"b1" * 50_000, b"b2"])
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    at = {"a": 0, "b": 0}
    while at["a"] < len(one) or at["b"] < len(two):
        for name, reader, data in (("a", a, one), ("b", b, two)):
            if at[name] < len(data):
                buf = reader.get_buffer()
                n = min(len(buf), 999, len(data) - at[name])
                buf[:n] = data[at[name] : at[name] + n]
                reader.buffer_updated(n)
                at[name] += n
                while (frame := reader.next_frame()) is not None:
                    got[name].append(bytes(frame))
    assert got == {"a": [b"a1", b"a2" * 3000, b"a3"], "b": [b"b1" * 50_000, b"b2"]}


def test_frames_before_a_bad_prefix_come_out_then_the_error() -> None:
    reader = FrameReader(1_000)
    buf = reader.get_buffer()
    data = stream([b"ok"]) + struct.pack(">i", -7)
    buf[: len(data)] = data
    reader.buffer_updated(len(data))
    assert reader.next_frame() == bytearray(b"ok")
    with pytest.raises(InvalidFrame):
        reader.next_frame()


def test_a_tls_client_hello_is_named_in_the_error() -> None:
    reader = FrameReader(100 << 20)
    hello = bytes.fromhex("160301016d010001690303")  # a TLS 1.0 record, ClientHello
    with pytest.raises(FrameTooLarge, match=r"size=369295617 .*looks_like=tls_client_hello"):
        deliver(reader, hello, 100)


def test_an_http_request_is_named_in_the_error() -> None:
    with pytest.raises(FrameTooLarge, match="looks_like=http_request"):
        deliver(FrameReader(100 << 20), b"GET /metrics HTTP/1.1\r\n\r\n", 100)


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

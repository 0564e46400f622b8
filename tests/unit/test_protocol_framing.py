"""FrameDecoder and frame(): whole buffers, byte at a time, many per chunk, bad sizes."""

from __future__ import annotations

import struct

import pytest

from tidelog.protocol.errors import FrameTooLarge, InvalidFrame, ProtocolError
from tidelog.protocol.framing import FrameDecoder, frame

PAYLOADS = [b"", b"a", b"hello kafka", bytes(range(256)) * 3]


def wire(*payloads: bytes) -> bytes:
    return b"".join(b"".join(frame([payload])) for payload in payloads)


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (payload := decoder.next_frame()) is not None:
        frames.append(payload)
    return frames


def test_frame_prefixes_total_size_of_parts() -> None:
    assert frame([b"ab", b"cde"]) == [b"\x00\x00\x00\x05", b"ab", b"cde"]
    assert frame([]) == [b"\x00\x00\x00\x00"]


def test_whole_buffer_yields_every_frame_in_order() -> None:
    decoder = FrameDecoder(max_frame_bytes=4096)
    decoder.feed(wire(*PAYLOADS))
    assert drain(decoder) == PAYLOADS
    assert decoder.buffered_bytes == 0


def test_byte_at_a_time_yields_each_frame_exactly_when_complete() -> None:
    decoder = FrameDecoder(max_frame_bytes=4096)
    data = wire(*PAYLOADS)
    frames: list[bytes] = []
    for index in range(len(data)):
        decoder.feed(data[index : index + 1])
        frames.extend(drain(decoder))
    assert frames == PAYLOADS


def test_partial_frame_is_held_until_the_rest_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=4096)
    data = wire(b"first", b"second")
    decoder.feed(data[:-3])
    assert drain(decoder) == [b"first"]
    assert decoder.buffered_bytes == 4 + len(b"second") - 3
    decoder.feed(data[-3:])
    assert drain(decoder) == [b"second"]


def test_trailing_partial_prefix_is_not_a_frame() -> None:
    decoder = FrameDecoder(max_frame_bytes=4096)
    decoder.feed(wire(b"x") + b"\x00\x00")
    assert drain(decoder) == [b"x"]
    assert decoder.buffered_bytes == 2


def test_many_small_frames_in_one_chunk_beyond_compaction_threshold() -> None:
    payloads = [i.to_bytes(4, "big") * 8 for i in range(20_000)]
    decoder = FrameDecoder(max_frame_bytes=64)
    data = wire(*payloads)
    # A trailing partial frame keeps the buffer from being cleared outright,
    # so the compaction branch has to do the work.
    decoder.feed(data + b"\x00\x00\x00\x10abc")
    assert drain(decoder) == payloads
    assert decoder.buffered_bytes == 7
    decoder.feed(b"d" * 13)
    assert drain(decoder) == [b"abc" + b"d" * 13]


def test_one_big_frame_in_many_chunks() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    decoder = FrameDecoder(max_frame_bytes=len(payload))
    data = wire(payload)
    for start in range(0, len(data), 1000):
        assert decoder.next_frame() is None
        decoder.feed(data[start : start + 1000])
    assert drain(decoder) == [payload]


def test_frame_of_exactly_max_size_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_bytes=3)
    decoder.feed(wire(b"abc"))
    assert drain(decoder) == [b"abc"]


def test_oversize_frame_is_rejected_from_its_prefix_alone() -> None:
    decoder = FrameDecoder(max_frame_bytes=3)
    decoder.feed(struct.pack(">i", 4))
    with pytest.raises(FrameTooLarge, match="size=4 max_frame_bytes=3"):
        decoder.next_frame()


def test_negative_size_is_invalid_frame() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(wire(b"ok") + struct.pack(">i", -1))
    assert decoder.next_frame() == b"ok"
    with pytest.raises(InvalidFrame, match="size=-1"):
        decoder.next_frame()


def test_framing_errors_are_protocol_errors() -> None:
    assert issubclass(FrameTooLarge, ProtocolError)
    assert issubclass(InvalidFrame, ProtocolError)


def test_payload_is_independent_of_the_decoder_buffer() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(wire(b"abc") + b"\x00")
    payload = decoder.next_frame()
    decoder.feed(b"\x00\x00\x01z")
    assert payload == b"abc"
    assert isinstance(payload, bytes)
    assert decoder.next_frame() == b"z"


def test_negative_maximum_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes=-1"):
        FrameDecoder(max_frame_bytes=-1)

"""Seeded, deterministic mutations of valid request frames.

Owns: turning (seed, index) into one hostile frame on the wire (size prefix included).
Frame `index` mutates corpus frame `index % len(corpus)`, so every (API, version) in
the corpus gets its share, and its own `random.Random` is seeded from (seed, index), so
any single frame can be rebuilt from those two numbers alone.

The mutations: bit flips, byte inserts and deletes, truncation, garbage at the end,
and structure-aware ones aimed at the sites `frame_map` finds: lengths and counts set
huge, negative, null, zero, off by one or just past the bytes left; varints overlong
or unterminated; tagged-field counts and sizes huge; integers set to edge values; the
header's API version swapped; the size prefix set to anything but the truth. And some
that keep the frame well-formed, so that the values reach the handlers: a string
replaced by a hostile one (empty, too long for a name, an internal topic's name, odd
characters), an array element repeated or dropped with its count kept right.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crc32c import crc32c

from tests.fuzz.corpus import CorpusFrame
from tests.fuzz.frame_map import FrameMap, Kind, Site, map_request

MAX_GARBAGE = 256
# Well-formed but hostile strings: empty, too long for a topic name, internal topic
# names, the dots Kafka refuses, characters outside a name's alphabet.
HOSTILE_STRINGS = (
    "",
    ".",
    "..",
    "a" * 249,
    "a" * 250,
    "x" * 1000,
    "__consumer_offsets",
    "__transaction_state",
    "a b",
    "a/b",
    "\u00e9t\u00e9",
    "\u540d\u524d",
    "\x00",
    "-",
    "_",
)


@dataclass(frozen=True, slots=True)
class Mutant:
    index: int
    source: str  # the corpus frame it came from
    label: str  # what was done to it
    wire: bytes  # the size prefix and the payload, as sent

    @property
    def complete(self) -> bool:
        """The size prefix announces exactly the bytes that follow it."""
        (declared,) = struct.unpack_from(">i", self.wire, 0)
        return bool(declared == len(self.wire) - 4)


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"uvarint must not be negative value={value}")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def overlong_uvarint(value: int, width: int) -> bytes:
    """`value` in `width` bytes: zero groups with the continuation bit set, then 0."""
    plain = bytearray(encode_uvarint(value))
    if len(plain) >= width:
        return bytes(plain)
    plain[-1] |= 0x80
    return bytes(plain + b"\x80" * (width - len(plain) - 1) + b"\x00")


def decode_uvarint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """(value, bytes read); any length, for checking what the mutator wrote."""
    value, shift, pos = 0, 0, offset
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos - offset


_INT_FORMATS = {1: ">b", 2: ">h", 4: ">i", 8: ">q"}


def _wrap_signed(value: int, width: int) -> int:
    bits = 8 * width
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def encode_at(site: Site, value: int) -> bytes:
    """`value` in the site's own encoding (fixed widths wrap, as a C cast would)."""
    if site.kind.is_varint:
        return encode_uvarint(value & 0xFFFFFFFF)
    return struct.pack(_INT_FORMATS[site.width], _wrap_signed(value, site.width))


def _edge_ints(width: int) -> list[int]:
    bits = 8 * width
    top = (1 << (bits - 1)) - 1
    return [0, 1, -1, -2, top, top - 1, -top - 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x10000, 1 << 30]


class Mutator:
    def __init__(
        self,
        corpus: Sequence[CorpusFrame],
        seed: int,
        versions: dict[int, tuple[int, int]],
    ) -> None:
        """`versions`: api_key -> (lowest, highest) advertised, for version swaps."""
        if not corpus:
            raise ValueError("the corpus is empty")
        self.corpus = list(corpus)
        self.seed = seed
        self.versions = versions
        self.maps: list[FrameMap] = [map_request(f.payload) for f in self.corpus]
        self._strategies: list[tuple[int, Callable[[random.Random, bytes, FrameMap], Edit]]] = [
            (30, self._length),
            (10, self._null),
            (8, self._varint),
            (6, self._tagged),
            (12, self._integer),
            (4, self._version),
            (8, self._string),
            (6, self._elements),
            (6, self._batch),
            (8, self._bit_flips),
            (4, self._insert),
            (4, self._delete),
            (5, self._truncate),
            (4, self._extend),
            (5, self._size_prefix),
        ]

    def mutant(self, index: int) -> Mutant:
        rng = random.Random(f"{self.seed}/{index}")
        frame = self.corpus[index % len(self.corpus)]
        fmap = self.maps[index % len(self.corpus)]
        weights = [w for w, _ in self._strategies]
        strategy = rng.choices([s for _, s in self._strategies], weights)[0]
        edit = strategy(rng, frame.payload, fmap)
        payload, label, declared = edit.payload, edit.label, edit.declared
        if declared is None and rng.random() < 0.2:  # stack a bit flip on most kinds
            payload, extra = _flip_bits(rng, payload, 1)
            label += f"; {extra}"
        size = len(payload) if declared is None else declared
        return Mutant(index, frame.name, label, struct.pack(">i", size) + payload)

    # -- structure-aware ---------------------------------------------------------------

    def _length(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        sites = [s for s in fmap.sites if s.kind not in (Kind.INT, Kind.NULL_MARKER)]
        if not sites:
            return self._bit_flips(rng, payload, fmap)
        site = rng.choice(sites)
        left = len(payload) - site.offset - site.width
        if site.kind.is_varint:
            # A compact value is N+1: these are huge, just past what is left, off by one.
            choices = [0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 1 << 28, 1 << 21, left + 2, left + 1]
        elif site.kind is Kind.INT16_LENGTH:
            choices = [0x7FFF, -2, -0x8000, left + 1, left]
        else:
            choices = [0x7FFFFFFF, 0x7FFFFFFE, 1 << 30, 1 << 20, -2, -0x80000000, left + 1, left]
        choices += [site.value + 1, site.value - 1, 0]
        value = rng.choice(choices)
        return _replace(payload, site, encode_at(site, value), f"{_where(site)} set to {value}")

    def _null(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        kinds = (Kind.INT16_LENGTH, Kind.INT32_LENGTH, Kind.INT32_COUNT)
        sites = [s for s in fmap.sites if s.kind in kinds or s.kind is Kind.COMPACT_LENGTH]
        sites += [s for s in fmap.sites if s.kind in (Kind.COMPACT_COUNT, Kind.NULL_MARKER)]
        # Mostly where the schema forbids null: that is where handlers get surprised.
        strict = [s for s in sites if not s.nullable]
        pool = strict if strict and rng.random() < 0.8 else sites
        if not pool:
            return self._bit_flips(rng, payload, fmap)
        site = rng.choice(pool)
        null = 0 if site.kind.is_varint else -1
        return _replace(payload, site, encode_at(site, null), f"{_where(site)} set to null")

    def _varint(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        sites = [s for s in fmap.sites if s.kind.is_varint]
        if not sites:
            return self._length(rng, payload, fmap)
        site = rng.choice(sites)
        how = rng.randrange(4)
        if how == 0:
            new, what = overlong_uvarint(site.value, rng.choice([5, 6, 10])), "overlong"
        elif how == 1:
            new, what = b"\xff\xff\xff\xff\x0f", "2^32-1 in 5 bytes"
        elif how == 2:
            new, what = b"\xff" * rng.choice([5, 6, 9, 16]) + b"\x01", "6+ bytes"
        else:
            end = len(payload)
            return Edit(
                payload[: site.offset] + b"\xff" * (end - site.offset),
                f"{_where(site)} unterminated",
            )
        return _replace(payload, site, new, f"{_where(site)} {what}")

    def _tagged(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        sites = [s for s in fmap.sites if s.kind in (Kind.TAG_COUNT, Kind.TAG_SIZE)]
        if not sites:
            return self._length(rng, payload, fmap)
        site = rng.choice(sites)
        tag = rng.choice([0, 1, 2, 7, 0x7FFF, 0xFFFFFFF])
        if site.kind is Kind.TAG_COUNT and rng.random() < 0.3:
            # One more field, with an unknown or known tag, whose size is huge or past the end.
            left = len(payload) - site.offset - site.width
            size = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, left + 1, left])
            new = encode_uvarint(site.value + 1) + encode_uvarint(tag) + encode_uvarint(size)
            return _replace(payload, site, new, f"{_where(site)} + tag {tag} of size {size}")
        if site.kind is Kind.TAG_COUNT and rng.random() < 0.5:
            # A well-framed field of garbage: a known tag's reader gets bytes it cannot parse.
            junk = rng.randbytes(rng.choice([0, 1, 3, 8]))
            field = encode_uvarint(tag) + encode_uvarint(len(junk)) + junk
            new = encode_uvarint(site.value + 1) + field
            return _replace(payload, site, new, f"{_where(site)} + tag {tag} of {len(junk)} bytes")
        value = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1 << 20, site.value + 1, 0x80])
        return _replace(payload, site, encode_at(site, value), f"{_where(site)} set to {value}")

    def _integer(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        sites = [s for s in fmap.sites if s.kind in (Kind.INT, Kind.NULL_MARKER)]
        if not sites:
            return self._bit_flips(rng, payload, fmap)
        site = rng.choice(sites)
        value = rng.choice([*_edge_ints(site.width), site.value + 1, site.value - 1, -site.value])
        return _replace(payload, site, encode_at(site, value), f"{_where(site)} set to {value}")

    def _version(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        low, high = self.versions.get(fmap.api_key, (0, 0))
        version = rng.choice([*range(low, high + 1), low - 1, high + 1, -1, 0x7FFF])
        edited = payload[:2] + struct.pack(">h", version) + payload[4:]
        return Edit(edited, f"api_version {fmap.api_version} -> {version}")

    def _string(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        kinds = (Kind.INT16_LENGTH, Kind.INT32_LENGTH, Kind.COMPACT_LENGTH)
        sites = [s for s in fmap.sites if s.kind in kinds and _content_length(s) >= 0]
        if not sites:
            return self._integer(rng, payload, fmap)
        site = rng.choice(sites)
        if site.content == "string":
            content = rng.choice(HOSTILE_STRINGS).encode()
        else:
            content = rng.randbytes(rng.choice([0, 1, 7, 64]))
        length = len(content) + 1 if site.kind.is_varint else len(content)
        end = site.offset + site.width + _content_length(site)
        edited = payload[: site.offset] + encode_at(site, length) + content + payload[end:]
        text = site.content == "string"
        shown = content[:12].decode("utf-8", "replace") if text else content[:12].hex()
        return Edit(edited, f"{_where(site)} content {len(content)} bytes {shown!r}")

    def _elements(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        sites = [s for s in fmap.sites if s.spans]
        if not sites:
            return self._length(rng, payload, fmap)
        site = rng.choice(sites)
        start, end = rng.choice(site.spans)
        element = payload[start:end]
        count = len(site.spans)
        if rng.random() < 0.7:
            copies = rng.choice([1, 1, 2, 10])
            middle, count, what = element * (copies + 1), count + copies, f"{copies} copies of"
        else:
            middle, count, what = b"", count - 1, "dropped"
        new = encode_at(site, count + 1 if site.kind.is_varint else count)
        edited = (
            payload[: site.offset]
            + new
            + payload[site.offset + site.width : start]
            + middle
            + payload[end:]
        )
        return Edit(edited, f"{_where(site)} {what} element {start}-{end}")

    def _batch(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        """A record batch header field (or a record byte) changed, its CRC made right
        again, so the batch gets past the CRC check to what the broker does with it."""
        sites = [s for s in fmap.sites if s.content == "records" and _content_length(s) >= 61]
        if not sites:
            return self._integer(rng, payload, fmap)
        site = rng.choice(sites)
        start = site.offset + site.width
        edited = bytearray(payload)
        (batch_length,) = struct.unpack_from(">i", payload, start + 8)
        end = min(start + 12 + batch_length, start + _content_length(site))
        if rng.random() < 0.15:
            at = rng.randrange(start + 61, end) if end > start + 61 else end - 1
            edited[at] = rng.randrange(256)
            what = f"record byte {at - start} set to {edited[at]}"
        else:
            name, at, fmt = rng.choice(_BATCH_FIELDS)
            value = rng.choice([*_edge_ints(struct.calcsize(fmt)), *_BATCH_VALUES.get(name, ())])
            width = struct.calcsize(fmt)
            struct.pack_into(fmt, edited, start + at, _wrap_signed(value, width))
            if name == "records_count" and rng.random() < 0.5:  # and a delta that agrees
                delta = _wrap_signed(value - 1, 4)
                struct.pack_into(">i", edited, start + 23, delta)
                name += " and last_offset_delta"
            what = f"batch {name} set to {value}"
        struct.pack_into(">I", edited, start + 17, crc32c(bytes(edited[start + 21 : end])))
        return Edit(bytes(edited), f"{_where(site)} {what}, crc made right")

    # -- blind -------------------------------------------------------------------------

    def _bit_flips(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        edited, label = _flip_bits(rng, payload, rng.choice([1, 1, 2, 4, 8]))
        return Edit(edited, label)

    def _insert(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        at = rng.randrange(len(payload) + 1)
        junk = rng.randbytes(rng.choice([1, 1, 2, 4, 16]))
        return Edit(payload[:at] + junk + payload[at:], f"inserted {junk.hex()} at {at}")

    def _delete(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        at = rng.randrange(len(payload))
        n = rng.choice([1, 1, 2, 4, 16])
        return Edit(payload[:at] + payload[at + n :], f"deleted {n} bytes at {at}")

    def _truncate(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        at = rng.randrange(len(payload))
        if rng.random() < 0.25:  # keep the old size: the peer waits for bytes never sent
            return Edit(payload[:at], f"truncated to {at}, size prefix kept", len(payload))
        return Edit(payload[:at], f"truncated to {at}")

    def _extend(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        junk = rng.randbytes(rng.randrange(1, MAX_GARBAGE + 1))
        return Edit(payload + junk, f"{len(junk)} garbage bytes appended")

    def _size_prefix(self, rng: random.Random, payload: bytes, fmap: FrameMap) -> Edit:
        n = len(payload)
        size = rng.choice([n + 1, n - 1, n + 1000, 0, 3, -1, -0x80000000, 0x7FFFFFFF, 100 << 20])
        return Edit(payload, f"size prefix {size} for {n} bytes", size)


@dataclass(frozen=True, slots=True)
class Edit:
    payload: bytes
    label: str
    declared: int | None = None  # a size prefix other than the payload's length


def _replace(payload: bytes, site: Site, new: bytes, label: str) -> Edit:
    return Edit(payload[: site.offset] + new + payload[site.offset + site.width :], label)


# Record batch v2 header fields after the CRC (so a change to them can be made valid),
# and batch_length, partition_leader_epoch and base_offset, which the CRC does not cover.
_BATCH_FIELDS = (
    ("attributes", 21, ">h"),
    ("last_offset_delta", 23, ">i"),
    ("base_timestamp", 27, ">q"),
    ("max_timestamp", 35, ">q"),
    ("producer_id", 43, ">q"),
    ("producer_epoch", 51, ">h"),
    ("base_sequence", 53, ">i"),
    ("records_count", 57, ">i"),
    ("batch_length", 8, ">i"),
    ("partition_leader_epoch", 12, ">i"),
    ("base_offset", 0, ">q"),
)
# Beyond the edge values of each width: every codec and flag, and the epoch's limits.
_BATCH_VALUES = {
    "attributes": (1, 2, 3, 4, 5, 6, 7, 0x08, 0x10, 0x20, 0x30, 0x40),
    "producer_epoch": (32767, 32766),
    "base_sequence": (2**31 - 2, 2**31 - 1),
    "records_count": (2, 3, 4),
    "last_offset_delta": (1, 2, 3),
}


def _content_length(site: Site) -> int:
    """Bytes after a length site (-1: null)."""
    return site.value - 1 if site.kind.is_varint else site.value


def _where(site: Site) -> str:
    return f"{site.kind.value} {site.name}@{site.offset}"


def _flip_bits(rng: random.Random, payload: bytes, count: int) -> tuple[bytes, str]:
    if not payload:
        return payload, "no bits to flip"
    edited = bytearray(payload)
    bits = sorted(rng.randrange(8 * len(payload)) for _ in range(count))
    for bit in bits:
        edited[bit // 8] ^= 1 << (bit % 8)
    return bytes(edited), f"flipped bits {bits}"

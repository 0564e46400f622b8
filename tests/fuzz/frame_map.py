"""Where the lengths, counts and values of a valid request frame are.

Owns: a walk of one request payload (no size prefix) along kio's schema classes for
its (API, version), reading the wire format the way Kafka defines it, that lists every
*site* a structure-aware mutation can aim at: int16/int32/compact string and bytes
lengths, int32/compact array counts, tagged-field counts and sizes, nullable-struct
markers and plain integer fields, with where each array element lies and which
lengths belong to strings. Pure: bytes in, sites out; it trusts the frame (the
corpus is valid), and the unit tests check that the walk ends exactly where kio's own
reader does.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import types
import typing
from dataclasses import dataclass
from typing import Any

from tidelog.protocol.codec import request_schema
from tidelog.protocol.errors import UnsupportedRequest
from tidelog.protocol.headers import is_flexible_request


class Kind(enum.Enum):
    INT16_LENGTH = "int16 length"  # legacy string (-1: null)
    INT32_LENGTH = "int32 length"  # legacy bytes/records (-1: null)
    INT32_COUNT = "int32 count"  # legacy array (-1: null)
    COMPACT_LENGTH = "compact length"  # uvarint N+1 (0: null)
    COMPACT_COUNT = "compact count"  # uvarint N+1 (0: null)
    TAG_COUNT = "tagged field count"  # uvarint
    TAG_SIZE = "tagged field size"  # uvarint
    NULL_MARKER = "nullable struct marker"  # int8: -1 null, 1 present
    INT = "integer"  # a plain int8/16/32/64 value

    @property
    def is_varint(self) -> bool:
        return self in (Kind.COMPACT_LENGTH, Kind.COMPACT_COUNT, Kind.TAG_COUNT, Kind.TAG_SIZE)


@dataclass(frozen=True, slots=True)
class Site:
    offset: int  # where the field's bytes start in the payload
    width: int  # how many bytes it takes now
    kind: Kind
    value: int  # as written: a compact length is N+1 here
    nullable: bool = False
    name: str = ""  # the schema field, for messages
    content: str = ""  # a length site: what it measures ("string", "bytes", "records")
    spans: tuple[tuple[int, int], ...] = ()  # a count site: where each element lies


@dataclass(frozen=True, slots=True)
class FrameMap:
    api_key: int
    api_version: int
    flexible: bool
    body_offset: int
    end: int  # where the body ends (bytes after it are ignored, as Kafka does)
    sites: tuple[Site, ...]


_FIXED = {
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "uint16": 2,
    "float64": 8,
    "bool": 1,
    "uuid": 16,
    "error_code": 2,
    "timedelta_i32": 4,
    "timedelta_i64": 8,
    "datetime_i64": 8,
}
_SIGNED_INTS = {"int8": ">b", "int16": ">h", "int32": ">i", "int64": ">q"}
_SIGNED_INTS |= {"timedelta_i32": ">i", "timedelta_i64": ">q", "datetime_i64": ">q"}


class _Walk:
    def __init__(self, payload: bytes) -> None:
        self.data = payload
        self.pos = 0
        self.sites: list[Site] = []

    def fixed(
        self, fmt: str, kind: Kind, name: str, nullable: bool = False, content: str = ""
    ) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        width = struct.calcsize(fmt)
        self.sites.append(Site(self.pos, width, kind, value, nullable, name, content))
        self.pos += width
        return int(value)

    def uvarint(
        self, kind: Kind | None, name: str, nullable: bool = False, content: str = ""
    ) -> int:
        start, value, shift = self.pos, 0, 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if kind is not None:
            self.sites.append(Site(start, self.pos - start, kind, value, nullable, name, content))
        return value

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"frame is not valid: {n} bytes at {self.pos} of {len(self.data)}")
        self.pos += n

    # -- Kafka's types -----------------------------------------------------------------

    def length_prefixed(self, kafka_type: str, flexible: bool, nullable: bool, name: str) -> None:
        if flexible:
            n = self.uvarint(Kind.COMPACT_LENGTH, name, nullable, kafka_type) - 1
        elif kafka_type == "string":
            n = self.fixed(">h", Kind.INT16_LENGTH, name, nullable, kafka_type)
        else:
            n = self.fixed(">i", Kind.INT32_LENGTH, name, nullable, kafka_type)
        if n >= 0:
            self.skip(n)

    def primitive(self, kafka_type: str, flexible: bool, nullable: bool, name: str) -> None:
        if kafka_type in ("string", "bytes", "records"):
            self.length_prefixed(kafka_type, flexible, nullable, name)
        elif kafka_type in _SIGNED_INTS:
            self.fixed(_SIGNED_INTS[kafka_type], Kind.INT, name)
        else:
            self.skip(_FIXED[kafka_type])

    def count(self, flexible: bool, nullable: bool, name: str) -> int:
        if flexible:
            return self.uvarint(Kind.COMPACT_COUNT, name, nullable) - 1
        return self.fixed(">i", Kind.INT32_COUNT, name, nullable)

    def tagged_fields(self, name: str) -> None:
        for _ in range(self.uvarint(Kind.TAG_COUNT, name)):
            self.uvarint(None, f"{name}.tag")
            self.skip(self.uvarint(Kind.TAG_SIZE, name))

    def entity(self, cls: type[Any], prefix: str = "") -> None:
        flexible = bool(cls.__flexible__)
        for field in dataclasses.fields(cls):
            if "tag" in field.metadata:
                continue  # sent in the tagged-field section at the end
            self.field(field, flexible, f"{prefix}{field.name}")
        if flexible:
            self.tagged_fields(f"{prefix}_tagged_fields")

    def field(self, field: dataclasses.Field[Any], flexible: bool, name: str) -> None:
        inner, nullable = _unwrap_optional(field.type)
        if typing.get_origin(inner) is tuple:
            element = typing.get_args(inner)[0]
            at = len(self.sites)
            spans = []
            for _ in range(self.count(flexible, nullable, name)):
                start = self.pos
                if isinstance(element, type) and dataclasses.is_dataclass(element):
                    self.entity(element, f"{name}.")
                else:
                    self.primitive(field.metadata["kafka_type"], flexible, False, name)
                spans.append((start, self.pos))
            self.sites[at] = dataclasses.replace(self.sites[at], spans=tuple(spans))
        elif dataclasses.is_dataclass(inner):
            if not nullable or self.fixed(">b", Kind.NULL_MARKER, name, True) >= 0:
                self.entity(inner, f"{name}.")  # type: ignore[arg-type]
        else:
            self.primitive(field.metadata["kafka_type"], flexible, nullable, name)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def map_request(payload: bytes) -> FrameMap:
    """The sites of a valid request payload; only its header's if kio has no schema."""
    walk = _Walk(payload)
    api_key, api_version = struct.unpack_from(">hh", payload, 0)
    walk.skip(8)  # api key, version and correlation id: the mutator has its own for these
    flexible = is_flexible_request(api_key, api_version)
    walk.length_prefixed("string", False, True, "client_id")  # legacy even when flexible
    if flexible:
        walk.tagged_fields("header._tagged_fields")
    body_offset = walk.pos
    try:
        schema = request_schema(api_key, api_version)
    except UnsupportedRequest:
        return FrameMap(
            api_key, api_version, flexible, body_offset, len(payload), tuple(walk.sites)
        )
    walk.entity(schema)
    return FrameMap(api_key, api_version, flexible, body_offset, walk.pos, tuple(walk.sites))

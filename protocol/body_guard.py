"""Pre-decode guard: every length, count and null in a body checked against the frame.

Owns the check that runs on a request (or response) body before kio reads it.
kio's native reader trusts what the peer announces: it reserves memory for an
array's announced count before it reads one element (a 21-byte Metadata v12
request announcing 2**32-2 topics makes it ask for 32 GiB, and the failed
allocation aborts the process), and it returns ``None`` for an array sent as
null even where the schema forbids null. This module walks the body exactly as
kio's schema classes describe it -- field order, compact or legacy encodings,
tagged-field sections, KIP-893 nullable structs -- without building a value.

Guarantees:

* ``BodyGuard(schema)(frame, offset)`` returns the offset just past the body,
  or raises ``DecodeError`` (lowercase, ``key=value`` context) when:
  an array's count times its elements' minimum encoded size exceeds the bytes
  left; a string or bytes length runs past the end; a length or count is
  negative other than the null marker -1; a varint is longer than 5 bytes or
  above 2**32-1; a tagged field's size runs past the end, or a known tag's
  content does not exactly fill its declared size; the body ends early; a null
  is sent where the schema forbids it (array, string, bytes), or a nullable
  struct's marker is neither -1 nor 1.
* A body it accepts holds every element kio will read, inside the frame: the
  memory kio then sizes by a count is bounded by the frame's own length.
* It never reads past ``len(frame)``, allocates nothing by an announced count,
  and its work is linear in the body's length (every array element and tagged
  field it visits consumes at least one byte).
* Bytes after the body are not looked at: librdkafka sends three stray bytes
  after an all-topics Metadata v9+ request, and Kafka ignores them too.
* Unknown tags are skipped by their size (kio itself refuses them), and a
  tagged primitive is read as non-nullable, as kio reads it.
* A guard is compiled once per schema class; ``body_guard`` caches them.

What it does not check: values (UTF-8, booleans, error codes, timestamps) --
kio raises catchable errors for those, and they cost no memory.
"""

from __future__ import annotations

import dataclasses
import struct
import types
from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias, Union, get_args, get_origin

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)
from kio.static.constants import EntityType

from tidelog.protocol._types import BytesLike
from tidelog.protocol.errors import DecodeError

__all__ = ["BodyGuard", "body_guard"]

_Check: TypeAlias = Callable[[BytesLike, int, int], int]
"""``check(buffer, position, end) -> position after the value``; raises ``_Refusal``."""

_MAX_UVARINT_BYTES = 5
_MAX_UVARINT = 0xFFFFFFFF
_INT8 = struct.Struct(">b")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_NULL_STRUCT, _PRESENT_STRUCT = -1, 1

# Encoded size of each fixed-width kafka_type kio knows.
_FIXED_SIZES: dict[str, int] = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
}
_BYTES_TYPES = frozenset({"bytes", "records"})


class _Refusal(Exception):
    """Why a body was refused; ``BodyGuard`` turns it into a ``DecodeError``."""

    def __init__(self, what: str, field: str, position: int, **context: int) -> None:
        super().__init__(what)
        self.what = what
        self.field = field
        self.position = position
        self.context = context


class _Node(NamedTuple):
    """A compiled value: its check, its minimum encoded size, its size if constant."""

    check: _Check
    min_size: int
    fixed_size: int | None


def _read_uvarint(buffer: BytesLike, position: int, end: int, field: str) -> tuple[int, int]:
    value = shift = 0
    for index in range(position, min(end, position + _MAX_UVARINT_BYTES)):
        byte = buffer[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > _MAX_UVARINT:
                raise _Refusal("varint above 32 bits", field, position, value=value)
            return value, index + 1
        shift += 7
    if position + _MAX_UVARINT_BYTES > end:
        raise _Refusal("varint cut off by the end", field, position, remaining=end - position)
    raise _Refusal("varint longer than 5 bytes", field, position)


def _truncated(field: str, position: int, needed: int, end: int) -> _Refusal:
    return _Refusal(
        "value cut off by the end", field, position, needed=needed, remaining=end - position
    )


def _fixed_check(size: int, field: str) -> _Check:
    def check(buffer: BytesLike, position: int, end: int) -> int:
        following = position + size
        if following > end:
            raise _truncated(field, position, size, end)
        return following

    return check


def _compact_length_check(nullable: bool, field: str) -> _Check:
    """A compact string or bytes: uvarint length + 1 (0 is null), then the bytes."""

    def check(buffer: BytesLike, position: int, end: int) -> int:
        if position < end and (raw := buffer[position]) < 0x80:
            position += 1
        else:
            raw, position = _read_uvarint(buffer, position, end, field)
        if raw == 0:
            if nullable:
                return position
            raise _Refusal("null where the schema forbids null", field, position - 1)
        following = position + raw - 1
        if following > end:
            raise _Refusal(
                "length past the end", field, position, size=raw - 1, remaining=end - position
            )
        return following

    return check


def _legacy_length_check(width: struct.Struct, nullable: bool, field: str) -> _Check:
    """A legacy string (int16 length) or bytes (int32 length); -1 is null."""
    unpack_from, size = width.unpack_from, width.size

    def check(buffer: BytesLike, position: int, end: int) -> int:
        if position + size > end:
            raise _truncated(field, position, size, end)
        length: int = unpack_from(buffer, position)[0]
        position += size
        if length < 0:
            if length == -1:
                if nullable:
                    return position
                raise _Refusal("null where the schema forbids null", field, position - size)
            raise _Refusal("negative length", field, position - size, size=length)
        following = position + length
        if following > end:
            raise _Refusal(
                "length past the end", field, position, size=length, remaining=end - position
            )
        return following

    return check


def _primitive(kafka_type: str, flexible: bool, nullable: bool, field: str) -> _Node:
    size = _FIXED_SIZES.get(kafka_type)
    if size is not None:
        return _Node(_fixed_check(size, field), size, size)
    if kafka_type == "string" or kafka_type in _BYTES_TYPES:
        if flexible:
            return _Node(_compact_length_check(nullable, field), 1, None)
        width = _INT16 if kafka_type == "string" else _INT32
        return _Node(_legacy_length_check(width, nullable, field), width.size, None)
    raise TypeError(f"kafka type has no wire rule kafka_type={kafka_type} field={field}")


def _array(element: _Node, flexible: bool, nullable: bool, field: str) -> _Node:
    # An element that could take no bytes would let any count through; none exists
    # in Kafka's schemas, and one byte each keeps a refused count honest anyway.
    min_size = max(element.min_size, 1)
    fixed_size = element.fixed_size
    element_check = element.check

    def check(buffer: BytesLike, position: int, end: int) -> int:
        start = position
        if flexible:
            if position < end and (raw := buffer[position]) < 0x80:
                position += 1
            else:
                raw, position = _read_uvarint(buffer, position, end, field)
            count = raw - 1
        else:
            if position + 4 > end:
                raise _truncated(field, position, 4, end)
            (count,) = _INT32.unpack_from(buffer, position)
            position += 4
            if count < -1:
                raise _Refusal("negative array count", field, start, count=count)
        if count == -1:
            if nullable:
                return position
            raise _Refusal("null where the schema forbids null", field, start)
        if count * min_size > end - position:
            raise _Refusal(
                "array count the bytes left cannot hold",
                field,
                start,
                count=count,
                min_element_size=min_size,
                remaining=end - position,
            )
        if fixed_size is not None:
            return position + count * fixed_size
        for _ in range(count):
            position = element_check(buffer, position, end)
        return position

    prefix = 1 if flexible else 4
    return _Node(check, prefix, None)


def _tagged_section(tagged: dict[int, _Check], path: str) -> _Check:
    """A tagged-field section: count, then (tag, size, content) triples."""
    field = f"{path}._tagged_fields" if path else "_tagged_fields"

    def check(buffer: BytesLike, position: int, end: int) -> int:
        count, position = _read_uvarint(buffer, position, end, field)
        if count * 2 > end - position:  # a tag and a size: at least a byte each
            raise _Refusal(
                "tagged field count the bytes left cannot hold",
                field,
                position,
                count=count,
                remaining=end - position,
            )
        for _ in range(count):
            tag_at = position
            tag, position = _read_uvarint(buffer, position, end, field)
            size, position = _read_uvarint(buffer, position, end, field)
            following = position + size
            if following > end:
                raise _Refusal(
                    "tagged field size past the end",
                    field,
                    tag_at,
                    tag=tag,
                    size=size,
                    remaining=end - position,
                )
            content = tagged.get(tag)
            # kio reads a known tag's value and ignores its declared size, so a value
            # that does not fill the size exactly would put kio and Kafka out of step.
            if content is not None and content(buffer, position, following) != following:
                raise _Refusal(
                    "tagged field value that does not fill its declared size",
                    field,
                    tag_at,
                    tag=tag,
                )
            position = following
        return position

    return check


def _is_nullable_array(annotation: Any) -> bool:
    # kio's is_optional also says yes for tuple[X | None, ...] (nullable elements),
    # so nullability of the array itself is read from the outer union.
    if get_origin(annotation) in (types.UnionType, Union):
        return type(None) in get_args(annotation)
    return False


def _field_node(field: dataclasses.Field[Any], flexible: bool, tagged: bool, path: str) -> _Node:
    kind = classify_field(field)
    match kind:
        case PrimitiveField():
            # kio reads every tagged primitive as non-nullable (its default stands for null).
            nullable = is_optional(field) and not tagged
            return _primitive(get_schema_field_type(field), flexible, nullable, path)
        case PrimitiveTupleField():
            element = _primitive(get_schema_field_type(field), flexible, False, path)
            return _array(element, flexible, _is_nullable_array(field.type), path)
        case EntityField(entity_type):
            return _entity(entity_type, is_optional(field), path)
        case EntityTupleField(entity_type):
            element = _entity(entity_type, False, path)
            return _array(element, flexible, _is_nullable_array(field.type), path)
    raise TypeError(f"field has no wire rule field={path}")


def _entity(entity_type: type[Any], nullable: bool, path: str) -> _Node:
    flexible: bool = entity_type.__flexible__
    nodes: list[_Node] = []
    tagged: dict[int, _Check] = {}
    for field in dataclasses.fields(entity_type):
        tag = get_field_tag(field)
        name = f"{path}.{field.name}" if path else field.name
        node = _field_node(field, flexible, tag is not None, name)
        if tag is None:
            nodes.append(node)
        else:
            tagged[int(tag)] = node.check
    node = _sequence(_merge_fixed(nodes, path), flexible, tagged, path)
    return _nullable_struct(node, path) if nullable else node


def _merge_fixed(nodes: list[_Node], path: str) -> list[_Node]:
    """Adjacent fixed-size fields become one check: fewer calls per element."""
    merged: list[_Node] = []
    for node in nodes:
        if node.fixed_size is not None and merged and merged[-1].fixed_size is not None:
            size = merged[-1].min_size + node.min_size
            merged[-1] = _Node(_fixed_check(size, path or "body"), size, size)
        else:
            merged.append(node)
    return merged


def _sequence(nodes: list[_Node], flexible: bool, tagged: dict[int, _Check], path: str) -> _Node:
    min_size = sum(node.min_size for node in nodes) + (1 if flexible else 0)
    checks = tuple(node.check for node in nodes)
    if not flexible:
        if all(node.fixed_size is not None for node in nodes):
            return _Node(_fixed_check(min_size, path or "body"), min_size, min_size)
        if len(checks) == 1:
            return nodes[0]

        def check_fields(buffer: BytesLike, position: int, end: int) -> int:
            for check in checks:
                position = check(buffer, position, end)
            return position

        return _Node(check_fields, min_size, None)

    tags = _tagged_section(tagged, path)
    if all(node.fixed_size is not None for node in nodes):
        # Fixed fields and a tagged-field section: one bound, one byte for "no tags".
        fixed = min_size - 1
        field = path or "body"

        def check_fixed_flexible(buffer: BytesLike, position: int, end: int) -> int:
            position += fixed
            if position < end and buffer[position] == 0:
                return position + 1
            if position > end:
                raise _truncated(field, position - fixed, fixed, end)
            return tags(buffer, position, end)

        return _Node(check_fixed_flexible, min_size, None)

    def check_flexible(buffer: BytesLike, position: int, end: int) -> int:
        for check in checks:
            position = check(buffer, position, end)
        if position < end and buffer[position] == 0:  # the usual case: no tagged fields
            return position + 1
        return tags(buffer, position, end)

    return _Node(check_flexible, min_size, None)


def _nullable_struct(node: _Node, path: str) -> _Node:
    """KIP-893: an int8 marker, -1 for null or 1 for a struct that follows."""
    inner = node.check
    field = path or "body"

    def check(buffer: BytesLike, position: int, end: int) -> int:
        if position >= end:
            raise _truncated(field, position, 1, end)
        (marker,) = _INT8.unpack_from(buffer, position)
        if marker == _NULL_STRUCT:
            return position + 1
        if marker != _PRESENT_STRUCT:
            raise _Refusal("nullable struct marker other than -1 or 1", field, position)
        return inner(buffer, position + 1, end)

    return _Node(check, 1, None)


class BodyGuard:
    """The compiled check of one schema class's body (a request or a response)."""

    __slots__ = ("_check", "_context", "side")

    def __init__(self, schema: type[Any]) -> None:
        self.side = "response" if schema.__type__ is EntityType.response else "request"
        self._context = f" api_key={schema.__api_key__} api_version={schema.__version__}"
        self._check = _entity(schema, False, "").check

    def __call__(self, frame: BytesLike, body_offset: int) -> int:
        """Offset just past the body at ``body_offset``; ``DecodeError`` if refused."""
        buffer: BytesLike = frame
        if isinstance(frame, memoryview) and frame.format != "B":
            buffer = frame.cast("B")
        end = len(buffer)
        try:
            if not 0 <= body_offset <= end:
                raise _Refusal("body offset outside the frame", "body", body_offset)
            return self._check(buffer, body_offset, end)
        except _Refusal as refusal:
            context = "".join(f" {key}={value}" for key, value in refusal.context.items())
            raise DecodeError(
                f"{self.side} body refused before decoding: {refusal.what}"
                f" field={refusal.field}{context} position={refusal.position}"
                f" length={end}{self._context}"
            ) from None


_guards: dict[type[Any], BodyGuard] = {}


def body_guard(schema: type[Any]) -> BodyGuard:
    """The guard for ``schema`` (a kio request or response class), compiled once."""
    guard = _guards.get(schema)
    if guard is None:
        guard = _guards[schema] = BodyGuard(schema)
    return guard

"""Request bodies written straight from kio's schema classes, with one field replaced.

The tests' own writer, independent of ``protocol.body_guard``: it knows the wire
rules (compact vs legacy lengths, tagged-field sections, KIP-893 markers) and
reads field order and types from kio's dataclasses. ``body`` writes a whole
body; every value is minimal (zeros, empty strings and arrays, null structs)
unless ``choose`` picks another, and the field at ``path`` is written as the
caller's raw bytes instead. Arrays on the way to ``path`` hold one element,
which is where the path continues.

``paths`` lists every field a test may replace: arrays, strings and bytes,
at any depth, with whether the schema allows null there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import types
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Union, get_args, get_origin

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
)

from tidelog.protocol._varint import write_uvarint
from tidelog.protocol.headers import is_flexible_request

FIXED_SIZES = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "error_code": 2}
FIXED_SIZES |= {"int32": 4, "uint32": 4, "timedelta_i32": 4, "uuid": 16}
FIXED_SIZES |= {"int64": 8, "uint64": 8, "float64": 8, "timedelta_i64": 8, "datetime_i64": 8}
HUGE_COMPACT = b"\xff\xff\xff\xff\x0f"  # uvarint 2**32-1: a count of 2**32-2
HUGE_LEGACY = struct.pack(">i", 2**31 - 1)


class Choice(NamedTuple):
    """What ``choose`` decides for one value: a count (arrays) or the value's bytes."""

    elements: int = 0
    data: bytes = b""
    null: bool = False


Chooser = Callable[[str, str], Choice]
"""``choose(kind, path)`` for kind in fixed:<size>, string, bytes, array, struct."""


class FieldPath(NamedTuple):
    path: tuple[str, ...]
    kind: str  # "array", "string" or "bytes"
    nullable: bool
    flexible: bool


def minimal(kind: str, path: str) -> Choice:
    if kind.startswith("fixed:"):
        return Choice(data=bytes(int(kind.removeprefix("fixed:"))))
    return Choice(null=kind == "struct")


def _nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (types.UnionType, Union) and type(None) in get_args(annotation)


def request_frame(api_key: int, api_version: int, body: bytes, correlation_id: int = 1) -> bytes:
    """Request header (v1, or v2 when flexible) with a null client id, then ``body``."""
    header = struct.pack(">hhih", api_key, api_version, correlation_id, -1)
    if is_flexible_request(api_key, api_version):
        header += b"\x00"
    return header + body


def compact_length(length: int | None) -> bytes:
    out = bytearray()
    write_uvarint(out, 0 if length is None else length + 1)
    return bytes(out)


def length_prefix(kind: str, flexible: bool, length: int | None) -> bytes:
    """The length or count of a value of ``kind`` (None for null)."""
    if flexible:
        return compact_length(length)
    value = -1 if length is None else length
    return struct.pack(">h" if kind == "string" else ">i", value)


class _Stop(Exception):
    """Raised right after the replacement when the body is to end there."""


def body(
    schema: type[Any],
    path: tuple[str, ...] = (),
    replacement: bytes = b"",
    choose: Chooser = minimal,
    *,
    end_after_replacement: bool = False,
) -> bytes:
    """The body of ``schema``; the field at ``path`` (if any) is ``replacement``.

    With ``end_after_replacement`` the body stops right after it: nothing of the
    fields that would follow is written.
    """
    out = bytearray()
    with contextlib.suppress(_Stop):
        _write_entity(out, schema, path, replacement, choose, "", end_after_replacement)
    return bytes(out)


def _write_entity(
    out: bytearray,
    schema: type[Any],
    path: tuple[str, ...],
    replacement: bytes,
    choose: Chooser,
    where: str,
    stop: bool = False,
) -> None:
    flexible: bool = schema.__flexible__
    for field in dataclasses.fields(schema):
        if get_field_tag(field) is not None:
            continue
        name = f"{where}.{field.name}" if where else field.name
        if path and path[0] == field.name:
            if len(path) == 1:
                out += replacement
                if stop:
                    raise _Stop
            else:
                _write_on_path(out, field, flexible, path[1:], replacement, choose, name, stop)
            continue
        _write_field(out, field, flexible, choose, name)
    if flexible:
        out.append(0)  # no tagged fields


def _write_on_path(
    out: bytearray,
    field: dataclasses.Field[Any],
    flexible: bool,
    rest: tuple[str, ...],
    replacement: bytes,
    choose: Chooser,
    name: str,
    stop: bool,
) -> None:
    kind = classify_field(field)
    if isinstance(kind, EntityTupleField):
        out += length_prefix("array", flexible, 1)
    elif isinstance(kind, EntityField):
        if _nullable(field.type):
            out.append(1)
    else:
        raise ValueError(f"path goes through a primitive field={name}")
    _write_entity(out, kind.type_, rest, replacement, choose, name, stop)


def _write_field(
    out: bytearray, field: dataclasses.Field[Any], flexible: bool, choose: Chooser, name: str
) -> None:
    kind = classify_field(field)
    nullable = _nullable(field.type)
    if isinstance(kind, PrimitiveField):
        _write_primitive(out, get_schema_field_type(field), flexible, nullable, choose, name)
    elif isinstance(kind, EntityField):
        if nullable:
            if choose("struct", name).null:
                out.append(0xFF)
                return
            out.append(1)
        _write_entity(out, kind.type_, (), b"", choose, name)
    else:
        choice = choose("array", name)
        if choice.null and nullable:
            out += length_prefix("array", flexible, None)
            return
        out += length_prefix("array", flexible, choice.elements)
        for _ in range(choice.elements):
            if isinstance(kind, PrimitiveTupleField):
                _write_primitive(out, get_schema_field_type(field), flexible, False, choose, name)
            else:
                assert isinstance(kind, EntityTupleField)
                _write_entity(out, kind.type_, (), b"", choose, name)


def _write_primitive(
    out: bytearray, kafka_type: str, flexible: bool, nullable: bool, choose: Chooser, name: str
) -> None:
    size = FIXED_SIZES.get(kafka_type)
    if size is not None:
        data = choose(f"fixed:{size}", name).data
        assert len(data) == size
        out += data
        return
    kind = "string" if kafka_type == "string" else "bytes"
    choice = choose(kind, name)
    if choice.null and nullable:
        out += length_prefix(kind, flexible, None)
        return
    out += length_prefix(kind, flexible, len(choice.data))
    out += choice.data


def paths(schema: type[Any]) -> list[FieldPath]:
    """Every non-tagged array, string and bytes field of ``schema``, at any depth."""
    return list(_paths(schema, ()))


def _paths(schema: type[Any], prefix: tuple[str, ...]) -> Iterator[FieldPath]:
    flexible: bool = schema.__flexible__
    for field in dataclasses.fields(schema):
        if get_field_tag(field) is not None:
            continue
        here = (*prefix, field.name)
        kind = classify_field(field)
        nullable = _nullable(field.type)
        if isinstance(kind, PrimitiveField):
            kafka_type = get_schema_field_type(field)
            if kafka_type not in FIXED_SIZES:
                wire = "string" if kafka_type == "string" else "bytes"
                yield FieldPath(here, wire, nullable, flexible)
        elif isinstance(kind, EntityField):
            yield from _paths(kind.type_, here)
        else:
            yield FieldPath(here, "array", nullable, flexible)
            if isinstance(kind, EntityTupleField):
                yield from _paths(kind.type_, here)


def element_min_size(schema: type[Any], path: tuple[str, ...]) -> int:
    """Encoded size of the smallest element of the array at ``path``."""
    field = _field_at(schema, path)
    kind = classify_field(field)
    flexible: bool = _owner_at(schema, path).__flexible__
    out = bytearray()
    if isinstance(kind, EntityTupleField):
        _write_entity(out, kind.type_, (), b"", minimal, "")
    else:
        _write_primitive(out, get_schema_field_type(field), flexible, False, minimal, "")
    return len(out)


def _owner_at(schema: type[Any], path: tuple[str, ...]) -> type[Any]:
    owner = schema
    for name in path[:-1]:
        owner = classify_field(_field_named(owner, name)).type_
    return owner


def _field_at(schema: type[Any], path: tuple[str, ...]) -> dataclasses.Field[Any]:
    return _field_named(_owner_at(schema, path), path[-1])


def _field_named(schema: type[Any], name: str) -> dataclasses.Field[Any]:
    return next(field for field in dataclasses.fields(schema) if field.name == name)

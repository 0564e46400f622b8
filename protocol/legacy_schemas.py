"""Schemas for the few versions the broker serves that kio does not ship.

Owns: `legacy_schema(api_key, version, kind)` and `legacy_module(...)`, the request or
response class (or the module-like namespace of every class) of such a version, or
None for every other one. kio is generated from Kafka 4's message schemas, and Kafka 4
removed versions (KIP-896) some clients still send.

Today one API: OffsetForLeaderEpoch (23) v0-1. Both are v2 less the fields v2 added:
the request lacks `current_leader_epoch` (v2 added it for fencing); the response lacks
`throttle_time` (v2), and v0's also lacks each partition's `leader_epoch` (v1 added
it). Field order, types and (non-)flexibility are otherwise v2's, so each class is
v2's kio class rebuilt without those fields and with its own version number: kio's
reader and writer, the request guard (protocol/body_guard.py) and `messages.build`
then treat it like any kio class.

Guarantees: a derived class has kio's class names, metadata and class variables;
only `__version__` and the dropped fields differ. Built once per (api_key, version).
"""

from __future__ import annotations

import dataclasses
import types
from functools import cache
from typing import Any, Literal, get_args, get_origin, get_type_hints

from kio.schema.offset_for_leader_epoch.v2 import request as ofle_v2_request
from kio.schema.offset_for_leader_epoch.v2 import response as ofle_v2_response
from kio.static.constants import EntityType
from kio.static.primitive import i16

__all__ = ["legacy_module", "legacy_schema"]

Kind = Literal[EntityType.request, EntityType.response]

_CLASS_VARS = ("__type__", "__flexible__", "__api_key__", "__header_schema__")

# (api_key, version, kind) -> (kio module to derive from, fields to drop, top class).
_LEGACY: dict[tuple[int, int, Kind], tuple[types.ModuleType, frozenset[str], str]] = {
    (23, 0, EntityType.request): (
        ofle_v2_request,
        frozenset({"current_leader_epoch"}),
        "OffsetForLeaderEpochRequest",
    ),
    (23, 1, EntityType.request): (
        ofle_v2_request,
        frozenset({"current_leader_epoch"}),
        "OffsetForLeaderEpochRequest",
    ),
    (23, 0, EntityType.response): (
        ofle_v2_response,
        frozenset({"throttle_time", "leader_epoch"}),
        "OffsetForLeaderEpochResponse",
    ),
    (23, 1, EntityType.response): (
        ofle_v2_response,
        frozenset({"throttle_time"}),
        "OffsetForLeaderEpochResponse",
    ),
}


def legacy_schema(api_key: int, version: int, kind: Kind) -> type[Any] | None:
    """The top-level class (request or response) of a version kio lacks, or None."""
    module = legacy_module(api_key, version, kind)
    if module is None:
        return None
    top: type[Any] = getattr(module, _LEGACY[(api_key, version, kind)][2])
    return top


@cache
def legacy_module(api_key: int, version: int, kind: Kind) -> types.ModuleType | None:
    """Every entity class of that version by name, as kio's module has them, or None."""
    entry = _LEGACY.get((api_key, version, kind))
    if entry is None:
        return None
    source, drop, top = entry
    module = types.ModuleType(f"tidelog.protocol.legacy_schemas.v{api_key}_{version}_{kind.name}")
    _derive(getattr(source, top), version, drop, module)
    return module


def _derive(
    cls: type[Any], version: int, drop: frozenset[str], module: types.ModuleType
) -> type[Any]:
    """`cls` as `version`: without the `drop` fields, nested entities derived the same way."""
    done: type[Any] | None = getattr(module, cls.__name__, None)
    if done is not None:
        return done
    hints = get_type_hints(cls)
    fields: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(cls):
        if f.name in drop:
            continue
        hint = hints[f.name]
        item = _entity_item(hint)
        if item is not None:
            hint = tuple[_derive(item, version, drop, module), ...]  # type: ignore[misc]
        fields.append((f.name, hint, _copy(f)))
    namespace = {k: getattr(cls, k) for k in _CLASS_VARS}
    namespace["__version__"] = i16(version)
    namespace["__module__"] = module.__name__
    derived = dataclasses.make_dataclass(
        cls.__name__, fields, frozen=True, slots=True, kw_only=True, namespace=namespace
    )
    setattr(module, cls.__name__, derived)
    return derived


def _entity_item(hint: Any) -> type[Any] | None:
    """The entity class of a `tuple[Entity, ...]` field, else None."""
    if get_origin(hint) is not tuple:
        return None
    args = get_args(hint)
    if args and dataclasses.is_dataclass(args[0]) and isinstance(args[0], type):
        return args[0]
    return None


def _copy(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return dataclasses.field(metadata=f.metadata, default=f.default)
    return dataclasses.field(metadata=f.metadata)

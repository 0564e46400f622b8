"""kio's generated message classes, by (api_key, version), and building them by name.

Owns: finding the module that holds one version's request or response entities
(`request_module`, `response_module`, cached) and `build`, which constructs one of its
classes from keyword arguments, dropping the fields that version lacks, so one caller
serves every version in its range. Outside protocol/, nothing imports kio: handlers and
tools name messages through these three.

Versions kio lacks but the broker serves come from protocol/legacy_schemas.py.

Guarantees: a version neither kio nor legacy_schemas has raises `UnsupportedRequest`; `build`
raises AttributeError for a class name the version does not have.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from types import ModuleType
from typing import Any, Literal

from kio.index import KioIndexError, load_payload_module
from kio.static.constants import EntityType

from tidelog.protocol.errors import UnsupportedRequest
from tidelog.protocol.legacy_schemas import legacy_module

__all__ = ["build", "request_module", "response_module"]


@cache
def request_module(api_key: int, version: int) -> ModuleType:
    """The module of kio's request entities for one API version."""
    return _payload_module(api_key, version, EntityType.request)


@cache
def response_module(api_key: int, version: int) -> ModuleType:
    """The module of kio's response entities for one API version."""
    return _payload_module(api_key, version, EntityType.response)


def _payload_module(
    api_key: int, version: int, kind: Literal[EntityType.request, EntityType.response]
) -> ModuleType:
    try:
        return load_payload_module(api_key, version, kind)
    except KioIndexError:
        legacy = legacy_module(api_key, version, kind)
        if legacy is not None:
            return legacy
        raise UnsupportedRequest(
            f"no {kind.name} schema api_key={api_key} api_version={version}"
        ) from None


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def build(module: ModuleType, class_name: str, **fields: Any) -> Any:
    """An instance of `module.class_name`, keeping only the fields that version has."""
    cls = getattr(module, class_name)
    names = _field_names(cls)
    return cls(**{k: v for k, v in fields.items() if k in names})

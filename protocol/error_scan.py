"""The first Kafka error code in a response entity: what a request is counted under.

Owns: `first_error`, a walk over a kio response (top-level `error_code`, then every
nested entity in field order: topics, partitions, ...), and `api_name`, Kafka's name
of an API key ("Produce", "Fetch") as kio's schema spells it.

Guarantees: pure, no I/O. The walk reads only fields kio declares as error codes and
fields holding entities; which fields those are is worked out once per class, so a
scan costs a few attribute reads per nested entity. A response without any error
code field scans as 0 (NONE).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from tidelog.protocol.errors import UnsupportedRequest
from tidelog.protocol.messages import request_module

__all__ = ["api_name", "first_error"]


@cache
def _fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(error-code fields, fields that may hold nested entities) of a kio entity class."""
    errors: list[str] = []
    nested: list[str] = []
    for f in dataclasses.fields(cls):
        kind = f.metadata.get("kafka_type")
        if kind == "error_code":
            errors.append(f.name)
        elif kind is None:  # kio gives every primitive a kafka_type; entities have none
            nested.append(f.name)
    return tuple(errors), tuple(nested)


def first_error(entity: Any) -> int:
    """The first non-zero error code in `entity` (0 when there is none)."""
    if not dataclasses.is_dataclass(entity) or isinstance(entity, type):
        return 0
    errors, nested = _fields(type(entity))
    for name in errors:
        code = int(getattr(entity, name))
        if code:
            return code
    for name in nested:
        value = getattr(entity, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            code = first_error(item)
            if code:
                return code
    return 0


@cache
def api_name(api_key: int, version: int) -> str:
    """Kafka's name of the API ("Produce"), from kio's request class; "Api<key>" if
    kio has no schema for it."""
    try:
        module = request_module(api_key, version)
    except UnsupportedRequest:
        return f"Api{api_key}"
    names = [n for n in vars(module) if n.endswith("Request") and n != "Request"]
    return names[0].removesuffix("Request") if names else f"Api{api_key}"

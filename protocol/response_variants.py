"""Response schemas kio cannot read as Kafka writes them, rebuilt so that it can.

Owns: `response_variant(api_key, api_version)`, the schema `codec.decode_response` reads
instead of kio's for the few responses listed here (None for every other one). Encoding
is never affected: brokers still write kio's own classes.

Today one: DescribeTransactions v0 sends `transaction_start_time` -1 when no
transaction is open (Kafka's "none"); kio types it as a datetime and its reader refuses
a negative one. The variant is kio's class with that field read as int64 milliseconds
(the wire format is the same), so a client sees -1 or the start time in ms.

Guarantees: a variant has the same wire layout, class names, flexibility and tags as
kio's class; only the Python type of the listed fields differs.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, get_args, get_type_hints

from kio.schema.describe_transactions.v0 import response as describe_transactions_v0
from kio.static.primitive import i64

__all__ = ["response_variant"]

_CLASS_VARS = ("__type__", "__version__", "__flexible__", "__api_key__", "__header_schema__")


def _as_int64(cls: type[Any], name: str) -> type[Any]:
    """`cls` with field `name` (a datetime_i64) read as a plain int64."""
    fields: list[tuple[str, Any, Any]] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == name:
            metadata = {**f.metadata, "kafka_type": "int64"}
            fields.append((f.name, i64, dataclasses.field(metadata=metadata)))
        else:
            fields.append((f.name, hints[f.name], _copy(f)))
    return _make(cls, fields)


def _with_items(cls: type[Any], name: str, item: type[Any]) -> type[Any]:
    """`cls` with its array field `name` holding `item`s."""
    hints = get_type_hints(cls)
    fields = [
        (f.name, tuple[item, ...] if f.name == name else hints[f.name], _copy(f))  # type: ignore[valid-type]
        for f in dataclasses.fields(cls)
    ]
    assert get_args(hints[name])[0].__name__ == item.__name__
    return _make(cls, fields)


def _copy(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return dataclasses.field(metadata=f.metadata, default=f.default)
    return dataclasses.field(metadata=f.metadata)


def _make(cls: type[Any], fields: list[tuple[str, Any, Any]]) -> type[Any]:
    namespace = {k: getattr(cls, k) for k in _CLASS_VARS}
    return dataclasses.make_dataclass(
        cls.__name__, fields, frozen=True, slots=True, kw_only=True, namespace=namespace
    )


@cache
def response_variant(api_key: int, api_version: int) -> type[Any] | None:
    if (api_key, api_version) == (65, 0):
        m = describe_transactions_v0
        state = _as_int64(m.TransactionState, "transaction_start_time")
        return _with_items(m.DescribeTransactionsResponse, "transaction_states", state)
    return None

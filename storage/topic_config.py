"""Topic configs: every name tidelog knows, with Kafka's type, default and valid values.

Owns: the one table of topic-level configs (Kafka 4's names and defaults), checking a
CreateTopics config set as Kafka's broker checks it, and reading back what is stored.
Pure: no I/O.

Guarantees:
- `validate_topic_configs` accepts what Kafka accepts and refuses the rest with
  INVALID_CONFIG and a message naming the key: unknown names, null values, values of
  the wrong type, out of range or not among the allowed ones, and min/max compaction
  lags that contradict each other;
- `valid_overrides` never returns a value that does not validate: a bad value in the
  bucket (stored before these checks existed) is left out, so its default applies and
  nothing that reads a config can fail on it;
- `apply_incremental` computes IncrementalAlterConfigs' new override set from the
  current one as Kafka's controller does (SET, DELETE, APPEND, SUBTRACT), refusing
  what Kafka refuses; the result still goes through `validate_topic_configs`.

Only `max.message.bytes` changes what the broker does today; the others are stored and
reported as given (docs/topics.md).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_THROTTLED = re.compile(r"[0-9]+:[0-9]+")


class ConfigType(IntEnum):
    """Kafka's ConfigType, as DescribeConfigs v3+ reports it."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    LONG = 5
    DOUBLE = 6
    LIST = 7


Check = Callable[[str], str | None]  # the value -> why it is invalid, or None


@dataclass(frozen=True, slots=True)
class TopicConfigKey:
    name: str
    type: ConfigType
    default: str
    check: Check


def _integer(low: int, high: int, kind: str) -> Check:
    def check(value: str) -> str | None:
        text = value.strip()
        if not _INTEGER.fullmatch(text):
            return f"expected {kind}"
        if not low <= int(text) <= high:
            return f"expected {kind} in {low}..{high}"
        return None

    return check


def _int(low: int, high: int = INT_MAX) -> Check:
    return _integer(low, high, "an integer")


def _long(low: int = LONG_MIN, high: int = LONG_MAX) -> Check:
    return _integer(low, high, "a long integer")


def _int_in(*allowed: int, low: int, high: int) -> Check:
    """An int in low..high, or one of `allowed` (gzip's -1: the codec's default)."""
    in_range = _int(low, high)

    def check(value: str) -> str | None:
        text = value.strip()
        if _INTEGER.fullmatch(text) and int(text) in allowed:
            return None
        reason = in_range(value)
        return f"{reason} or one of {', '.join(map(str, allowed))}" if reason else None

    return check


def _double(low: float, high: float) -> Check:
    def check(value: str) -> str | None:
        text = value.strip()
        if not _DECIMAL.fullmatch(text) or not math.isfinite(float(text)):
            return "expected a number"
        if not low <= float(text) <= high:
            return f"expected a number in {low}..{high}"
        return None

    return check


def _boolean(value: str) -> str | None:
    return None if value.strip().lower() in ("true", "false") else "expected true or false"


def _one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value.strip() in allowed else f"expected one of {', '.join(allowed)}"

    return check


def _items(value: str) -> list[str]:
    text = value.strip()
    return [item.strip() for item in text.split(",")] if text else []


def _list_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        items = _items(value)
        if not items or any(item not in allowed for item in items):
            return f"expected a comma-separated list of {', '.join(allowed)}"
        return None

    return check


def _throttled_replicas(value: str) -> str | None:
    items = _items(value)
    if items == ["*"] or all(_THROTTLED.fullmatch(item) for item in items):
        return None
    return "expected * or a comma-separated list of partition:broker"


def _false_only(value: str) -> str | None:
    reason = _boolean(value)
    if reason is None and value.strip().lower() == "true":
        # What a Kafka broker without tiered storage answers: here every byte is
        # in the bucket already, there is no second tier to enable.
        return "tiered storage is not enabled on this broker; everything is in the bucket"
    return reason


# Kafka reads the first three dot-separated parts of a 0.x version and the first two of
# a later one, and ignores the rest: `0.10.0.0` is `0.10.0`, `3.0.1` is `3.0`.
_FORMAT_VERSION = re.compile(r"(0\.[0-9]+\.[0-9]+|[1-9][0-9]*\.[0-9]+)(\.[0-9]+)*(-IV[0-9]+)?")


def _format_version(value: str) -> str | None:
    """A Kafka version as `message.format.version` takes it (`0.10.0.0`, `2.8`,
    `3.0-IV1`)."""
    if _FORMAT_VERSION.fullmatch(value.strip()):
        return None
    return "expected a Kafka version such as 3.0-IV1"


_COMPRESSION = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

TOPIC_CONFIGS: dict[str, TopicConfigKey] = {
    k.name: k
    for k in (
        TopicConfigKey("cleanup.policy", ConfigType.LIST, "delete", _list_of("compact", "delete")),
        TopicConfigKey("compression.gzip.level", ConfigType.INT, "-1", _int_in(-1, low=1, high=9)),
        TopicConfigKey("compression.lz4.level", ConfigType.INT, "9", _int(1, 17)),
        TopicConfigKey("compression.type", ConfigType.STRING, "producer", _one_of(*_COMPRESSION)),
        TopicConfigKey("compression.zstd.level", ConfigType.INT, "3", _int(-131072, 22)),
        TopicConfigKey("delete.retention.ms", ConfigType.LONG, "86400000", _long(0)),
        TopicConfigKey("file.delete.delay.ms", ConfigType.LONG, "60000", _long(0)),
        TopicConfigKey("flush.messages", ConfigType.LONG, str(LONG_MAX), _long(1)),
        TopicConfigKey("flush.ms", ConfigType.LONG, str(LONG_MAX), _long(0)),
        TopicConfigKey(
            "follower.replication.throttled.replicas",
            ConfigType.LIST,
            "",
            _throttled_replicas,
        ),
        TopicConfigKey("index.interval.bytes", ConfigType.INT, "4096", _int(0)),
        TopicConfigKey(
            "leader.replication.throttled.replicas", ConfigType.LIST, "", _throttled_replicas
        ),
        TopicConfigKey("local.retention.bytes", ConfigType.LONG, "-2", _long(-2)),
        TopicConfigKey("local.retention.ms", ConfigType.LONG, "-2", _long(-2)),
        TopicConfigKey("max.compaction.lag.ms", ConfigType.LONG, str(LONG_MAX), _long(1)),
        TopicConfigKey("max.message.bytes", ConfigType.INT, "1048588", _int(0)),
        TopicConfigKey("message.timestamp.after.max.ms", ConfigType.LONG, "3600000", _long(0)),
        TopicConfigKey("message.timestamp.before.max.ms", ConfigType.LONG, str(LONG_MAX), _long(0)),
        TopicConfigKey(
            "message.timestamp.type",
            ConfigType.STRING,
            "CreateTime",
            _one_of("CreateTime", "LogAppendTime"),
        ),
        # Kafka 3.9's, gone in Kafka 4: accepted, do nothing (docs/topic-configs.md).
        TopicConfigKey("message.downconversion.enable", ConfigType.BOOLEAN, "true", _boolean),
        TopicConfigKey("message.format.version", ConfigType.STRING, "3.0-IV1", _format_version),
        TopicConfigKey(
            "message.timestamp.difference.max.ms", ConfigType.LONG, str(LONG_MAX), _long(0)
        ),
        TopicConfigKey("min.cleanable.dirty.ratio", ConfigType.DOUBLE, "0.5", _double(0, 1)),
        TopicConfigKey("min.compaction.lag.ms", ConfigType.LONG, "0", _long(0)),
        TopicConfigKey("min.insync.replicas", ConfigType.INT, "1", _int(1)),
        TopicConfigKey("preallocate", ConfigType.BOOLEAN, "false", _boolean),
        TopicConfigKey("remote.log.copy.disable", ConfigType.BOOLEAN, "false", _boolean),
        TopicConfigKey("remote.log.delete.on.disable", ConfigType.BOOLEAN, "false", _boolean),
        TopicConfigKey("remote.storage.enable", ConfigType.BOOLEAN, "false", _false_only),
        TopicConfigKey("retention.bytes", ConfigType.LONG, "-1", _long()),
        TopicConfigKey("retention.ms", ConfigType.LONG, "604800000", _long(-1)),
        # Kafka 4 raised the minimum from 14 bytes to 1 MiB (KIP-1030).
        TopicConfigKey("segment.bytes", ConfigType.INT, "1073741824", _int(1 << 20)),
        TopicConfigKey("segment.index.bytes", ConfigType.INT, "10485760", _int(4)),
        TopicConfigKey("segment.jitter.ms", ConfigType.LONG, "0", _long(0)),
        TopicConfigKey("segment.ms", ConfigType.LONG, "604800000", _long(1)),
        TopicConfigKey("unclean.leader.election.enable", ConfigType.BOOLEAN, "false", _boolean),
    )
}

DEFAULT_TOPIC_CONFIGS: dict[str, str] = {k.name: k.default for k in TOPIC_CONFIGS.values()}


def _invalid(message: str) -> StoreError:
    return StoreError(ErrorCode.invalid_config, message)


def problem(name: str, value: object) -> str | None:
    """Why `value` is not a valid value of topic config `name`, or None if it is."""
    key = TOPIC_CONFIGS.get(name)
    if key is None:
        return "unknown topic config"
    if value is None:
        return "null value not supported for topic configs"
    if not isinstance(value, str):
        return "expected a string"
    return _problem_of_string(name, value)


@functools.lru_cache(maxsize=4096)
def _problem_of_string(name: str, value: str) -> str | None:
    # Memoized: the produce path asks for a topic's configs on every append, and a
    # topic's overrides are a handful of strings (a check is pure).
    reason = TOPIC_CONFIGS[name].check(value)
    return f"invalid topic config value, {reason}" if reason else None


def validate_topic_configs(
    configs: Mapping[str, str | None], defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The configs of a new topic as given, or StoreError(INVALID_CONFIG) naming a key.
    What a config set is checked against across keys (the compaction lags) is the value
    in force: the set's, else the cluster default in `defaults`, else the table's, as
    Kafka checks a topic's configs merged with the broker's."""
    checked: dict[str, str] = {}
    for name, value in configs.items():
        reason = problem(name, value)
        if reason is not None or value is None:
            raise _invalid(f"{reason} config={name} value={value!r}")
        checked[name] = value
    min_lag = int(effective(checked, "min.compaction.lag.ms", defaults))
    max_lag = int(effective(checked, "max.compaction.lag.ms", defaults))
    if min_lag > max_lag:
        raise _invalid(
            "min.compaction.lag.ms is above max.compaction.lag.ms "
            f"config=min.compaction.lag.ms value={min_lag} max_compaction_lag_ms={max_lag}"
        )
    return checked


def valid_overrides(stored: Mapping[str, object]) -> dict[str, str]:
    """The stored overrides that validate; the others are as if never set."""
    return {k: v for k, v in stored.items() if isinstance(v, str) and problem(k, v) is None}


def effective(
    stored: Mapping[str, object], name: str, defaults: Mapping[str, str] | None = None
) -> str:
    """The value of `name` for a topic with `stored` overrides: a valid override, else
    the cluster's default in `defaults` (valid values, storage/cluster_defaults.py),
    else the table's. Always a valid value of `name`."""
    value = stored.get(name)
    if isinstance(value, str) and problem(name, value) is None:
        return value
    if defaults is not None and name in defaults:
        return defaults[name]
    return TOPIC_CONFIGS[name].default


# -- changing a topic's overrides (AlterConfigs, IncrementalAlterConfigs) ---------------


class ConfigOp(IntEnum):
    """IncrementalAlterConfigs' config_operation."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class ConfigChange:
    name: str
    op: int  # a ConfigOp, or whatever the client sent (refused)
    value: str | None


# The current overrides (those in force) -> the complete new override set, unvalidated.
ConfigBuild = Callable[[Mapping[str, str]], Mapping[str, str | None]]


def _invalid_request(message: str) -> StoreError:
    return StoreError(ErrorCode.invalid_request, message)


def check_unique_keys(names: Sequence[str]) -> None:
    """A key given twice in one resource is INVALID_REQUEST, as in Kafka."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _invalid_request(f"duplicate config key in one resource config={name}")
        seen.add(name)


def check_change_shape(changes: Sequence[ConfigChange]) -> None:
    """What Kafka refuses before looking at the resource, INVALID_REQUEST: a key given
    twice, an operation that is not one of the four, a null value other than DELETE's."""
    check_unique_keys([c.name for c in changes])
    for change in changes:
        name, op, value = change.name, change.op, change.value
        if op not in tuple(ConfigOp):
            raise _invalid_request(f"unknown config operation config={name} operation={op}")
        if value is None and op != ConfigOp.DELETE:
            raise _invalid_request(f"null value not supported config={name}")


def apply_incremental(
    current: Mapping[str, str], changes: Sequence[ConfigChange]
) -> dict[str, str]:
    """The override set after `changes`, in order, on `current`. APPEND and SUBTRACT
    start from the override, else the default (Kafka's controller does the same), and
    are refused with INVALID_CONFIG for configs that are not lists."""
    check_change_shape(changes)
    result = dict(current)
    for change in changes:
        name, op = change.name, change.op
        key = TOPIC_CONFIGS.get(name)
        if key is None:
            raise _invalid(f"unknown topic config config={name}")
        if op == ConfigOp.DELETE:
            result.pop(name, None)
            continue
        value = change.value or ""  # not None: check_change_shape
        if op == ConfigOp.SET:
            result[name] = value
            continue
        if key.type != ConfigType.LIST:
            verb = "append to" if op == ConfigOp.APPEND else "subtract from"
            raise _invalid(f"cannot {verb} a config that is not a list config={name}")
        items = _items(result.get(name, key.default))
        given = _items(value)
        if op == ConfigOp.APPEND:
            items += [item for item in dict.fromkeys(given) if item not in items]
        else:
            items = [item for item in items if item not in given]
        result[name] = ",".join(items)
    return result

"""The cluster's dynamic defaults of topic configs: Kafka's `--entity-default` broker configs.

Owns: which broker config names may be set cluster-wide at run time (`DYNAMIC_DEFAULTS`,
broker name -> the topic config it is the default of), checking a new set of them, and
reading back the set in force. Pure: no I/O. What the set means (docs/topics.md,
"Cluster-wide defaults"): a topic's value in force is its override, else the cluster
default, else the table default of storage/topic_config.py.

The names are Kafka's DynamicLogConfig reconfigurable set: for each topic config, its
broker synonym of highest priority (storage/config_synonyms.py), less
`log.message.format.version` (Kafka keeps it static too) and
`log.segment.delete.delay.ms`, which is tidelog's `--log-segment-delete-delay-ms` (the
janitor's delay, a `tidelog serve` option) and so stays fixed while a broker runs.

Guarantees:
- `check_cluster_defaults` accepts a set only if every name is one of these and every
  value passes the topic config's own check; it refuses the rest with StoreError
  naming the keys: INVALID_REQUEST as Kafka answers both (an unknown or static name is
  "Cannot update these configs dynamically"; a bad value is INVALID_REQUEST on BROKER
  resources, KAFKA-13609);
- `defaults_in_force` never returns a value that does not validate, keyed by topic
  config name, so a resolution that reads it cannot fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.config_synonyms import BROKER_SYNONYMS
from tidelog.storage.errors import StoreError
from tidelog.storage.topic_config import (
    ConfigChange,
    apply_incremental,
    check_change_shape,
    problem,
    validate_topic_configs,
)

_STATIC = frozenset({"message.format.version", "file.delete.delay.ms"})
DYNAMIC_DEFAULTS: dict[str, str] = {
    broker: topic for topic, broker in sorted(BROKER_SYNONYMS.items()) if topic not in _STATIC
}
TOPIC_TO_BROKER: dict[str, str] = {topic: broker for broker, topic in DYNAMIC_DEFAULTS.items()}
_CONFIG_KEY = re.compile(r"config=(\S+)")


def _refused(message: str) -> StoreError:
    return StoreError(ErrorCode.invalid_request, message)


def check_names(names: Sequence[str]) -> None:
    """Kafka's "Cannot update these configs dynamically": every name not in the set."""
    static = sorted({n for n in names if n not in DYNAMIC_DEFAULTS})
    if static:
        raise _refused(
            "cannot update these configs dynamically; only cluster-wide defaults of topic "
            f"configs can change (docs/topics.md) configs={','.join(static)}"
        )


def check_cluster_defaults(configs: Mapping[str, str | None]) -> dict[str, str]:
    """The new set (broker names) as given, checked; StoreError(INVALID_REQUEST) naming
    the keys otherwise."""
    check_names(list(configs))
    checked: dict[str, str] = {}
    for name, value in configs.items():
        reason = problem(DYNAMIC_DEFAULTS[name], value)
        if reason is not None or value is None:
            raise _refused(f"{reason} config={name} value={value!r}")
        checked[name] = value
    try:  # the checks across configs (min.compaction.lag.ms <= max.compaction.lag.ms)
        validate_topic_configs(as_topic_configs(checked))
    except StoreError as exc:
        raise _refused(_broker_names(str(exc))) from None
    return checked


def as_topic_configs(defaults: Mapping[str, str]) -> dict[str, str]:
    return {DYNAMIC_DEFAULTS[k]: v for k, v in defaults.items() if k in DYNAMIC_DEFAULTS}


def _broker_names(message: str) -> str:
    """A topic config check's message, naming the broker configs the request named."""
    return _CONFIG_KEY.sub(lambda m: "config=" + TOPIC_TO_BROKER.get(m[1], m[1]), message)


def defaults_in_force(stored: Mapping[str, object]) -> dict[str, str]:
    """The stored defaults that validate, keyed by topic config name."""
    out: dict[str, str] = {}
    for name, value in stored.items():
        topic = DYNAMIC_DEFAULTS.get(name)
        if topic is not None and isinstance(value, str) and problem(topic, value) is None:
            out[topic] = value
    return out


def valid_stored(stored: Mapping[str, object]) -> dict[str, str]:
    """The stored defaults that validate, keyed by broker config name."""
    return {TOPIC_TO_BROKER[k]: v for k, v in defaults_in_force(stored).items()}


def apply_incremental_defaults(
    current: Mapping[str, str], changes: Sequence[ConfigChange]
) -> dict[str, str]:
    """IncrementalAlterConfigs on the cluster default: the topic configs' SET, DELETE,
    APPEND and SUBTRACT (APPEND to `log.cleanup.policy` unset starts from `delete`),
    on broker names."""
    check_change_shape(changes)
    check_names([c.name for c in changes])
    topic_changes = [ConfigChange(DYNAMIC_DEFAULTS[c.name], c.op, c.value) for c in changes]
    try:
        result = apply_incremental(as_topic_configs(current), topic_changes)
    except StoreError as exc:
        raise StoreError(exc.code, _broker_names(str(exc))) from None
    return {TOPIC_TO_BROKER[k]: v for k, v in result.items()}

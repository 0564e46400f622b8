"""Kafka's per-broker dynamic configs that do nothing in tidelog, set on BROKER "<id>".

Owns: which names a broker's own config resource accepts (`PER_BROKER`, name -> its
Kafka type and check), checking a new set of them, SET/DELETE on them, and reading back
the set in force. Pure: no I/O. Kafka lets these change at run time on one broker
(DynamicListenerConfig's SASL/Kerberos configs, DynamicThreadPool's and the log
cleaner's thread counts); tidelog has no Kerberos login and no such thread pools (one
asyncio loop per broker), so a value is stored in the metadata log and reported back by
DescribeConfigs, and changes nothing else (docs/topics.md, "Per-broker configs"), as
tidelog's topic configs without an effect.

Guarantees:
- `check_broker_configs` accepts a set only if every name is one of these and every
  value parses as the config's type within Kafka's range; it refuses the rest with
  StoreError(INVALID_REQUEST) naming the keys, as Kafka answers on broker resources;
- `broker_configs_in_force` never returns a value that does not validate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.topic_config import ConfigChange, ConfigOp, ConfigType, check_change_shape

_INT_MAX, _LONG_MAX = 2**31 - 1, 2**63 - 1


def _integer(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            n = int(value.strip())
        except ValueError:
            return "not an integer"
        return None if low <= n <= high else f"out of range [{low}, {high}]"

    return check


def _double(value: str) -> str | None:
    try:
        float(value.strip())
    except ValueError:
        return "not a number"
    return None


def _string(_value: str) -> str | None:
    return None


_THREADS = (ConfigType.INT, _integer(1, _INT_MAX))
PER_BROKER: dict[str, tuple[ConfigType, Callable[[str], str | None]]] = {
    # DynamicListenerConfig: SASL GSSAPI login, which tidelog does not offer.
    "sasl.kerberos.kinit.cmd": (ConfigType.STRING, _string),
    "sasl.kerberos.min.time.before.relogin": (ConfigType.LONG, _integer(0, _LONG_MAX)),
    "sasl.kerberos.service.name": (ConfigType.STRING, _string),
    "sasl.kerberos.ticket.renew.jitter": (ConfigType.DOUBLE, _double),
    "sasl.kerberos.ticket.renew.window.factor": (ConfigType.DOUBLE, _double),
    # DynamicThreadPool and LogCleaner: thread counts; tidelog runs one asyncio loop.
    "background.threads": _THREADS,
    "log.cleaner.threads": (ConfigType.INT, _integer(0, _INT_MAX)),
    "num.io.threads": _THREADS,
    "num.network.threads": _THREADS,
    "num.recovery.threads.per.data.dir": _THREADS,
    "num.replica.fetchers": _THREADS,
}


def _refused(message: str) -> StoreError:
    return StoreError(ErrorCode.invalid_request, message)


def check_names(names: Sequence[str]) -> None:
    """Kafka's "Cannot update these configs dynamically": every name not in the set."""
    static = sorted({n for n in names if n not in PER_BROKER})
    if static:
        raise _refused(
            "per-broker configs cannot be changed while the broker runs: brokers are "
            "interchangeable, so set cluster-wide defaults on the broker resource named '' "
            "and the rest are tidelog serve options; only the per-broker configs of "
            f"docs/topics.md can change configs={','.join(static)}"
        )


def check_broker_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """The new set as given, checked; StoreError(INVALID_REQUEST) naming the keys."""
    check_names(list(configs))
    checked: dict[str, str] = {}
    for name, value in configs.items():
        reason = "null value not supported" if value is None else PER_BROKER[name][1](value)
        if reason is not None or value is None:
            raise _refused(f"invalid value, {reason} config={name} value={value!r}")
        checked[name] = value
    return checked


def broker_configs_in_force(stored: Mapping[str, object]) -> dict[str, str]:
    """The stored values that validate (an older or newer broker's may not)."""
    return {
        k: v
        for k, v in stored.items()
        if k in PER_BROKER and isinstance(v, str) and PER_BROKER[k][1](v) is None
    }


def apply_incremental_broker(
    current: Mapping[str, str], changes: Sequence[ConfigChange]
) -> dict[str, str]:
    """IncrementalAlterConfigs on a broker's own id: SET and DELETE; none of these is a
    list, so APPEND and SUBTRACT are INVALID_CONFIG, as Kafka's."""
    check_change_shape(changes)
    check_names([c.name for c in changes])
    result = dict(current)
    for change in changes:
        if change.op == ConfigOp.DELETE:
            result.pop(change.name, None)
        elif change.op == ConfigOp.SET:
            result[change.name] = change.value or ""
        else:
            raise StoreError(
                ErrorCode.invalid_config,
                f"cannot append to or subtract from a config that is not a list "
                f"config={change.name}",
            )
    return result


def config_type(name: str) -> ConfigType | None:
    entry = PER_BROKER.get(name)
    return entry[0] if entry is not None else None

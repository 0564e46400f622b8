"""The topic catalog: which topics exist, their partition counts and configs.

Owns: topic names (valid, and not Kafka's internal ones), the checks a topic creation
or partition growth must pass before anything is allocated (docs/topics.md), the ops
that create, grow, alter and delete topics in the metadata log, and the configs in
force: a topic's override, else the cluster's dynamic default (storage/cluster_defaults.py),
else the table default.

Guarantees:
- every check runs again against the metadata log as it is when the op is appended,
  so two brokers growing the cluster at once cannot pass `--max-partitions` together,
  and two config changes at once both apply (each is rebuilt on the other's result);
- a config change names the topic id it was checked against: it never alters a
  topic deleted and created again meanwhile;
- a topic config or cluster default in the bucket that does not validate is never used
  (the next value in that order applies) and is logged once;
- a cluster default change is rebuilt and checked again on the log as it is when
  appended, like a topic's.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.broker_configs import broker_configs_in_force, check_broker_configs
from tidelog.storage.cluster_defaults import (
    TOPIC_TO_BROKER,
    check_cluster_defaults,
    defaults_in_force,
    valid_stored,
)
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.errors import StoreError
from tidelog.storage.meta_state import GROUP_TOPIC, MetaState, TopicState
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.topic_config import (
    DEFAULT_TOPIC_CONFIGS,
    ConfigBuild,
    problem,
    valid_overrides,
    validate_topic_configs,
)

log = logging.getLogger(__name__)

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
# Kafka's internal topics, never user topics: group slots are keyed under the first one
# (a user topic of that name had no partition anyone could serve), transactions will
# need the second.
INTERNAL_TOPICS = frozenset({GROUP_TOPIC, "__transaction_state"})

MetaOps = Sequence[dict[str, Any]] | Callable[[MetaState], Sequence[dict[str, Any]]]


def validate_topic_name(name: str) -> None:
    if name in (".", "..") or not TOPIC_NAME.match(name):
        raise StoreError(
            ErrorCode.invalid_topic_exception,
            f"invalid topic name (1-249 of [a-zA-Z0-9._-], not '.' or '..') topic={name!r}",
        )


def validate_user_topic_name(name: str) -> None:
    """A name clients may create and produce to: valid, and not Kafka's internal ones."""
    validate_topic_name(name)
    if name in INTERNAL_TOPICS:
        raise StoreError(
            ErrorCode.invalid_topic_exception,
            f"kafka's internal topic names are not user topics topic={name}",
        )


class TopicPlacement(Protocol):
    """Where new partitions go, and taking up those placed here (the membership)."""

    def assign_new(self, state: MetaState, keys: list[PartitionKey]) -> dict[str, Any]: ...

    async def adopt_assigned(self) -> None: ...


class TopicCatalog:
    def __init__(
        self,
        meta: CommitLog[MetaState],
        meta_ops: Callable[[MetaOps], Awaitable[int]],
        placement: TopicPlacement,
        *,
        max_partitions_per_topic: int,
        max_partitions: int,
    ) -> None:
        self._meta = meta
        self._meta_ops = meta_ops
        self._placement = placement
        self._max_per_topic = max_partitions_per_topic
        self._max_partitions = max_partitions
        self._bad_configs_reported: set[tuple[str, str]] = set()  # (topic id, name)

    def topic(self, name: str) -> TopicState | None:
        return self._meta.state.topics.get(name)

    def topics(self) -> dict[str, TopicState]:
        return self._meta.state.topics

    def partition_exists(self, key: PartitionKey) -> bool:
        topic = self.topic(key[0])
        return topic is not None and 0 <= key[1] < topic.partitions

    def check_new_topic(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str | None] | None = None,
        *,
        planned: int = 0,
    ) -> dict[str, str]:
        validate_user_topic_name(name)
        if self.topic(name) is not None:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        self._check_partition_count(name, partitions)
        checked = validate_topic_configs(configs or {}, self.cluster_defaults())
        self._check_cluster_total(self._meta.state, name, partitions + planned)
        return checked

    def check_new_partitions(self, name: str, count: int, *, planned: int = 0) -> TopicState:
        validate_user_topic_name(name)  # one a broker before this check let in stays as is
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        if count <= topic.partitions:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"partition count can only grow topic={name} current={topic.partitions} "
                f"requested={count}",
            )
        self._check_partition_count(name, count)
        self._check_cluster_total(self._meta.state, name, count - topic.partitions + planned)
        return topic

    def _check_partition_count(self, name: str, partitions: int) -> None:
        cap = self._max_per_topic
        if partitions <= 0:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"partition count must be positive topic={name} partitions={partitions}",
            )
        if partitions > cap:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"more partitions than one topic may have (--max-partitions-per-topic) "
                f"topic={name} partitions={partitions} max_partitions_per_topic={cap}",
            )

    def _check_cluster_total(self, state: MetaState, name: str, adding: int) -> None:
        cap = self._max_partitions
        total = sum(t.partitions for t in state.topics.values())
        if total + adding > cap:
            raise StoreError(
                ErrorCode.policy_violation,
                f"the cluster would have more partitions than --max-partitions allows "
                f"topic={name} adding={adding} partitions_now={total} max_partitions={cap}",
            )

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None] | None = None
    ) -> TopicState:
        checked = self.check_new_topic(name, partitions, configs)
        topic_id = str(uuid.uuid4())
        op = {"op": "create_topic", "name": name, "id": topic_id, "partitions": partitions}
        keys = [(name, p) for p in range(partitions)]

        def ops(state: MetaState) -> list[dict[str, Any]]:
            # Again against the log as it is now: another broker may have just grown it.
            self._check_cluster_total(state, name, partitions)
            return [{**op, "configs": checked}, self._placement.assign_new(state, keys)]

        await self._meta_ops(ops)
        created = self.topic(name)
        if created is None or created.topic_id != topic_id:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        log.info("topic created topic=%s partitions=%d id=%s", name, partitions, topic_id)
        await self._placement.adopt_assigned()
        return created

    async def delete_topic(self, name: str) -> None:
        if name == GROUP_TOPIC:
            # Only a broker before the name check made one. Its delete would drop the
            # group slots' owners too, and a slot claimed anew starts with no offsets.
            raise StoreError(
                ErrorCode.invalid_topic_exception,
                f"a topic named like the group slots cannot be deleted topic={name}",
            )
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        await self._meta_ops([{"op": "delete_topic", "name": name, "id": topic.topic_id}])
        log.info("topic deleted topic=%s id=%s", name, topic.topic_id)

    async def create_partitions(self, name: str, count: int) -> None:
        topic = self.check_new_partitions(name, count)
        op = {"op": "create_partitions", "name": name, "id": topic.topic_id, "count": count}
        keys = [(name, p) for p in range(topic.partitions, count)]

        def ops(state: MetaState) -> list[dict[str, Any]]:
            self._check_cluster_total(state, name, len(keys))
            return [op, self._placement.assign_new(state, keys)]

        await self._meta_ops(ops)
        await self._placement.adopt_assigned()

    # -- configs -----------------------------------------------------------------------

    def check_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        """The topic's new override set, checked, changing nothing; StoreError with
        Kafka's code otherwise (UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG, ...)."""
        return self._new_configs(self._meta.state, name, build)[1]

    async def alter_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        """Replace the topic's override set with `build(overrides in force)`, checked,
        through the metadata log; returns the set now in force."""
        topic_id, _ = self._new_configs(self._meta.state, name, build)

        def ops(state: MetaState) -> list[dict[str, Any]]:
            # Built again on the log as it is now: another change may just have landed.
            now_id, configs = self._new_configs(state, name, build)
            if now_id != topic_id:  # deleted and created again since the check
                raise StoreError(
                    ErrorCode.unknown_topic_or_partition,
                    f"topic was deleted and created again topic={name}",
                )
            return [{"op": "alter_configs", "name": name, "id": topic_id, "configs": configs}]

        await self._meta_ops(ops)
        topic = self.topic(name)
        configs = topic.configs if topic is not None else {}
        log.info("topic configs altered topic=%s id=%s configs=%s", name, topic_id, configs)
        return dict(configs)

    def _new_configs(
        self, state: MetaState, name: str, build: ConfigBuild
    ) -> tuple[str, dict[str, str]]:
        validate_user_topic_name(name)
        topic = state.topics.get(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        # A value an older broker stored that does not validate is not in force: the
        # change starts from what is, and drops it.
        overrides = build(valid_overrides(topic.configs))
        defaults = defaults_in_force(state.cluster_configs)
        return topic.topic_id, validate_topic_configs(overrides, defaults)

    def topic_config(self, topic: str, name: str) -> str:
        state = self.topic(topic)
        stored = state.configs.get(name) if state is not None else None
        if state is not None and stored is not None:
            if problem(name, stored) is None:
                return stored
            self._report_bad_config(state, name, stored)
        return self._cluster_default(name)

    def _cluster_default(self, name: str) -> str:
        broker = TOPIC_TO_BROKER.get(name)
        stored = self._meta.state.cluster_configs.get(broker) if broker is not None else None
        if stored is not None and broker is not None:
            if problem(name, stored) is None:
                return stored
            self._report_bad_default(broker, stored)
        return DEFAULT_TOPIC_CONFIGS[name]

    def cluster_defaults(self) -> dict[str, str]:
        """The cluster's dynamic defaults in force, by topic config name."""
        return defaults_in_force(self._meta.state.cluster_configs)

    def check_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        """The cluster's new set of defaults (broker names), checked, changing nothing;
        StoreError(INVALID_REQUEST, ...) naming the keys otherwise."""
        return check_cluster_defaults(build(valid_stored(self._meta.state.cluster_configs)))

    async def alter_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        """Replace the cluster's defaults with `build(defaults in force)`, checked,
        through the metadata log; returns the set now in force."""
        self.check_cluster_configs(build)

        def ops(state: MetaState) -> list[dict[str, Any]]:
            # Built again on the log as it is now: another change may just have landed.
            configs = check_cluster_defaults(build(valid_stored(state.cluster_configs)))
            return [{"op": "cluster_configs", "configs": configs}]

        await self._meta_ops(ops)
        configs = dict(self._meta.state.cluster_configs)
        log.info("cluster config defaults altered configs=%s", configs)
        return configs

    def broker_configs(self, node: int) -> dict[str, str]:
        """Broker `node`'s per-broker dynamic configs in force."""
        return broker_configs_in_force(self._meta.state.broker_configs.get(node, {}))

    def check_broker_configs(self, node: int, build: ConfigBuild) -> dict[str, str]:
        """Broker `node`'s new set, checked, changing nothing; StoreError otherwise."""
        return check_broker_configs(build(self.broker_configs(node)))

    async def alter_broker_configs(self, node: int, build: ConfigBuild) -> dict[str, str]:
        """Replace broker `node`'s per-broker configs with `build(set in force)`, checked,
        through the metadata log; returns the set now in force."""
        self.check_broker_configs(node, build)

        def ops(state: MetaState) -> list[dict[str, Any]]:
            stored = broker_configs_in_force(state.broker_configs.get(node, {}))
            configs = check_broker_configs(build(stored))
            return [{"op": "broker_configs", "node": node, "configs": configs}]

        await self._meta_ops(ops)
        configs = self.broker_configs(node)
        log.info("per-broker configs altered node=%s configs=%s", node, configs)
        return configs

    def report_bad_configs(self) -> None:
        for state in self.topics().values():
            for name, stored in state.configs.items():
                if problem(name, stored) is not None:
                    self._report_bad_config(state, name, stored)

    def _report_bad_default(self, name: str, stored: str) -> None:
        if ("", name) in self._bad_configs_reported:
            return
        self._bad_configs_reported.add(("", name))
        log.warning(
            "cluster config default in the bucket does not validate; ignored config=%s value=%r",
            name,
            stored,
        )

    def _report_bad_config(self, state: TopicState, name: str, stored: object) -> None:
        if (state.topic_id, name) in self._bad_configs_reported:
            return
        self._bad_configs_reported.add((state.topic_id, name))
        log.warning(
            "topic config in the bucket does not validate; ignored, its default applies "
            "topic=%s config=%s value=%r reason=%s default=%s",
            state.name,
            name,
            stored,
            problem(name, stored),
            DEFAULT_TOPIC_CONFIGS.get(name, "-"),
        )

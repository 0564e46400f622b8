"""The admin client's topic requests: what `tidelog topics` asks and changes.

Owns: `TopicAdminClient`, the admin client (broker/admin/client.py) grown by the topic
requests, each returning plain frozen dataclasses:

    Metadata v12 (topics, topic ids, partitions and their leaders; never auto-creates),
    CreateTopics v7, DeleteTopics v6, CreatePartitions v3, DescribeConfigs v4,
    IncrementalAlterConfigs v1 (and the base client's ListOffsets v7)

Guarantees: as the admin client's: an unreachable broker or a broken conversation
raises `AdminConnectionError`; a Kafka error code raises `AdminError`, whose message
names the request, the topic, the code by Kafka's name (e.g. TOPIC_ALREADY_EXISTS) and
the broker's error message when it sent one. The changes (create, delete, partitions,
configs) go to the broker this client is connected to: any tidelog broker commits them
to the metadata log every broker reads. `validate_only` runs the broker's checks and
changes nothing.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidelog.broker.admin.client import AdminClient, AdminError
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, request_module

__all__ = [
    "ConfigEntry",
    "PartitionInfo",
    "TopicAdminClient",
    "TopicInfo",
    "config_source_name",
    "error_name",
]

METADATA, CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS = 3, 19, 20, 32, 37
INCREMENTAL_ALTER_CONFIGS = 44
_VERSIONS = {METADATA: 12, CREATE_TOPICS: 7, DELETE_TOPICS: 6, DESCRIBE_CONFIGS: 4,
             CREATE_PARTITIONS: 3, INCREMENTAL_ALTER_CONFIGS: 1}  # fmt: skip
TOPIC_RESOURCE = 2  # ConfigResource type
SET, DELETE = 0, 1  # IncrementalAlterConfigs operations
_TIMEOUT = datetime.timedelta(seconds=30)
# Kafka's ConfigSource names, by the number DescribeConfigs answers with.
_SOURCES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG",
    8: "GROUP_CONFIG",
}


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int  # -1: between owners (LEADER_NOT_AVAILABLE)
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: str  # Kafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG
    is_default: bool
    read_only: bool
    sensitive: bool


def error_name(code: int) -> str:
    """Kafka's name of an error code, as its docs spell it: TOPIC_ALREADY_EXISTS."""
    if code in ErrorCode._value2member_map_:
        return ErrorCode(code).name.upper()
    return "UNKNOWN_SERVER_ERROR" if code == -1 else "UNKNOWN"


def config_source_name(source: int) -> str:
    return _SOURCES.get(source, "UNKNOWN")


def _check(code: int, message: str | None, what: str) -> None:
    if code != ErrorCode.none:
        text = f"{what} failed error={error_name(code)} code={code}"
        raise AdminError(f"{text} message={message!r}" if message else text, code)


def _module(api_key: int) -> Any:
    return request_module(api_key, _VERSIONS[api_key])


class TopicAdminClient(AdminClient):
    """One blocking connection to one broker; use as a context manager."""

    def __enter__(self) -> TopicAdminClient:
        return self

    def metadata(
        self, names: Sequence[str] | None = None
    ) -> tuple[dict[int, str], list[TopicInfo]]:
        """The brokers ({node id: HOST:PORT}) and the topics named (None: every topic),
        in the order asked or by name. A topic that does not exist raises AdminError
        (UNKNOWN_TOPIC_OR_PARTITION): Metadata here never creates one."""
        mod = _module(METADATA)
        wanted = None if names is None else tuple(
            build(mod, "MetadataRequestTopic", topic_id=None, name=n) for n in names
        )  # fmt: skip
        request = build(
            mod,
            "MetadataRequest",
            topics=wanted,
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        response = self.call(request)
        brokers = {
            int(b.node_id): f"[{b.host}]:{b.port}" if ":" in b.host else f"{b.host}:{b.port}"
            for b in response.brokers
        }
        topics = []
        for t in response.topics:
            _check(t.error_code, None, f"metadata topic={t.name}")
            partitions = tuple(
                sorted(
                    (
                        PartitionInfo(
                            int(p.partition_index),
                            int(p.leader_id),
                            int(p.leader_epoch),
                            tuple(int(n) for n in p.replica_nodes),
                            tuple(int(n) for n in p.isr_nodes),
                        )
                        for p in t.partitions
                    ),
                    key=lambda p: p.partition,
                )
            )
            topic_id = str(t.topic_id) if t.topic_id is not None else str(uuid.UUID(int=0))
            topics.append(TopicInfo(str(t.name), topic_id, bool(t.is_internal), partitions))
        if names is None:
            topics.sort(key=lambda t: t.name)
        return brokers, topics

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> tuple[str, int]:
        """Create one topic; its topic id and partition count as the broker answers."""
        mod = _module(CREATE_TOPICS)
        topic = build(
            mod,
            "CreatableTopic",
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            assignments=(),
            configs=tuple(
                build(mod, "CreatableTopicConfig", name=k, value=v) for k, v in configs.items()
            ),
        )
        request = build(
            mod,
            "CreateTopicsRequest",
            topics=(topic,),
            timeout=_TIMEOUT,
            validate_only=validate_only,
        )
        (result,) = self.call(request).topics
        _check(result.error_code, result.error_message, f"create topic={name}")
        return str(result.topic_id), int(result.num_partitions)

    def delete_topic(self, name: str) -> str:
        """Delete one topic by name; its topic id."""
        mod = _module(DELETE_TOPICS)
        wanted = build(mod, "DeleteTopicState", name=name, topic_id=None)
        request = build(mod, "DeleteTopicsRequest", topics=(wanted,), timeout=_TIMEOUT)
        (result,) = self.call(request).responses
        _check(result.error_code, result.error_message, f"delete topic={name}")
        return str(result.topic_id)

    def create_partitions(self, name: str, count: int, validate_only: bool = False) -> None:
        """Grow the topic to `count` partitions in all."""
        mod = _module(CREATE_PARTITIONS)
        topic = build(mod, "CreatePartitionsTopic", name=name, count=count, assignments=None)
        request = build(
            mod,
            "CreatePartitionsRequest",
            topics=(topic,),
            timeout=_TIMEOUT,
            validate_only=validate_only,
        )
        (result,) = self.call(request).results
        _check(result.error_code, result.error_message, f"create partitions topic={name}")

    def describe_configs(self, name: str) -> list[ConfigEntry]:
        """Every config of the topic with its value and source, by name."""
        mod = _module(DESCRIBE_CONFIGS)
        resource = build(
            mod,
            "DescribeConfigsResource",
            resource_type=TOPIC_RESOURCE,
            resource_name=name,
            configuration_keys=None,
        )
        request = build(
            mod,
            "DescribeConfigsRequest",
            resources=(resource,),
            include_synonyms=False,
            include_documentation=False,
        )
        (result,) = self.call(request).results
        _check(result.error_code, result.error_message, f"describe configs topic={name}")
        return sorted(
            (
                ConfigEntry(
                    c.name,
                    c.value,
                    config_source_name(int(c.config_source)),
                    int(c.config_source) == 5,  # DEFAULT_CONFIG (v4 has no is_default)
                    bool(c.read_only),
                    bool(c.is_sensitive),
                )
                for c in result.configs
            ),
            key=lambda c: c.name,
        )

    def alter_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete: Sequence[str],
        validate_only: bool = False,
    ) -> None:
        """SET each of `set_configs` and DELETE (back to the default) each of `delete`."""
        mod = _module(INCREMENTAL_ALTER_CONFIGS)
        ops = [
            *(build(mod, "AlterableConfig", name=k, config_operation=SET, value=v)
              for k, v in set_configs.items()),
            *(build(mod, "AlterableConfig", name=k, config_operation=DELETE, value=None)
              for k in delete),
        ]  # fmt: skip
        resource = build(
            mod,
            "AlterConfigsResource",
            resource_type=TOPIC_RESOURCE,
            resource_name=name,
            configs=tuple(ops),
        )
        request = build(
            mod,
            "IncrementalAlterConfigsRequest",
            resources=(resource,),
            validate_only=validate_only,
        )
        (result,) = self.call(request).responses
        _check(result.error_code, result.error_message, f"alter configs topic={name}")

"""CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs and Metadata on a real
node: what clients are told, and that the catalog changed (or did not) accordingly."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, request, run_node
from tidelog.protocol.errors import ErrorCode

METADATA, CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS = 3, 19, 20, 32, 37
TOPIC, BROKER = 2, 4
MINUTE = datetime.timedelta(minutes=1)


def _create_topics(
    *topics: tuple[str, int, int],
    validate_only: bool = False,
    configs: dict[str, str] | None = None,
) -> Any:
    return request(
        CREATE_TOPICS,
        7,
        "CreateTopicsRequest",
        topics=tuple(
            request(
                CREATE_TOPICS,
                7,
                "CreatableTopic",
                name=name,
                num_partitions=partitions,
                replication_factor=rf,
                assignments=(),
                configs=tuple(
                    request(CREATE_TOPICS, 7, "CreatableTopicConfig", name=k, value=v)
                    for k, v in (configs or {}).items()
                ),
            )
            for name, partitions, rf in topics
        ),
        timeout=MINUTE,
        validate_only=validate_only,
    )


def test_create_topics_creates_each_topic_with_its_configs(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(_create_topics(("orders", 3, 3), configs={"retention.ms": "1000"}))
        (result,) = response.topics
        assert (result.name, result.error_code) == ("orders", ErrorCode.none)
        assert (result.num_partitions, result.replication_factor) == (3, 3)
        assert uuid.UUID(h.node.topic("orders").topic_id) == result.topic_id  # type: ignore[union-attr]
        configs = {c.name: (c.value, c.config_source) for c in result.configs}
        assert configs["retention.ms"] == ("1000", 1)  # dynamic topic config
        assert configs["cleanup.policy"] == ("delete", 5)  # default

    run_node(tmp_path, body)


def test_create_topics_refuses_an_existing_topic_and_a_zero_replication_factor(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("orders", 2)
        response = await h.call(_create_topics(("orders", 4, 1), ("other", 1, 0)))
        codes = {t.name: (t.error_code, t.num_partitions) for t in response.topics}
        assert codes == {
            "orders": (ErrorCode.topic_already_exists, -1),
            "other": (ErrorCode.invalid_replication_factor, -1),
        }
        assert h.node.topic("orders").partitions == 2  # type: ignore[union-attr]
        assert h.node.topic("other") is None

    run_node(tmp_path, body)


def test_create_topics_validate_only_checks_the_caps_and_creates_nothing(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(_create_topics(("a", 3, 1), ("b", 3, 1), validate_only=True))
        codes = {t.name: t.error_code for t in response.topics}
        # The second would take the cluster past 5 partitions with the first one.
        assert codes == {"a": ErrorCode.none, "b": ErrorCode.policy_violation}
        assert h.node.topics() == {}

    run_node(tmp_path, body, max_partitions=5)


def _delete_by_name(*names: str) -> Any:
    return request(DELETE_TOPICS, 5, "DeleteTopicsRequest", topic_names=names, timeout=MINUTE)


def _delete_by_id(topic_id: uuid.UUID) -> Any:
    state = request(DELETE_TOPICS, 6, "DeleteTopicState", name=None, topic_id=topic_id)
    return request(DELETE_TOPICS, 6, "DeleteTopicsRequest", topics=(state,), timeout=MINUTE)


def test_delete_topics_by_name_and_by_id(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("a")
        await h.create_topic("b")
        (deleted,) = (await h.call(_delete_by_name("a"))).responses
        assert (deleted.name, deleted.error_code) == ("a", ErrorCode.none)
        b_id = uuid.UUID(h.node.topic("b").topic_id)  # type: ignore[union-attr]
        (by_id,) = (await h.call(_delete_by_id(b_id))).responses
        assert (by_id.name, by_id.topic_id, by_id.error_code) == ("b", b_id, ErrorCode.none)
        assert h.node.topics() == {}

    run_node(tmp_path, body)


def test_delete_topics_of_unknown_names_and_ids_says_which_is_unknown(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        (by_name,) = (await h.call(_delete_by_name("nope"))).responses
        assert by_name.error_code == ErrorCode.unknown_topic_or_partition
        (by_id,) = (await h.call(_delete_by_id(uuid.uuid4()))).responses
        assert (by_id.name, by_id.error_code) == (None, ErrorCode.unknown_topic_id)

    run_node(tmp_path, body)


def _create_partitions(*topics: tuple[str, int], validate_only: bool = False) -> Any:
    return request(
        CREATE_PARTITIONS,
        3,
        "CreatePartitionsRequest",
        topics=tuple(
            request(
                CREATE_PARTITIONS, 3, "CreatePartitionsTopic", name=n, count=c, assignments=None
            )
            for n, c in topics
        ),
        timeout=MINUTE,
        validate_only=validate_only,
    )


def test_create_partitions_grows_a_topic_and_validate_only_does_not(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        (checked,) = (await h.call(_create_partitions(("t", 4), validate_only=True))).results
        assert checked.error_code == ErrorCode.none
        assert h.node.topic("t").partitions == 1  # type: ignore[union-attr]
        (grown,) = (await h.call(_create_partitions(("t", 4)))).results
        assert grown.error_code == ErrorCode.none
        assert h.node.topic("t").partitions == 4  # type: ignore[union-attr]
        assert h.node.partition_log("t", 3) is not None  # led here at once

    run_node(tmp_path, body)


def test_create_partitions_refuses_shrinking_and_unknown_topics(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 3)
        response = await h.call(_create_partitions(("t", 2), ("nope", 2)))
        codes = {r.name: r.error_code for r in response.results}
        assert codes == {
            "t": ErrorCode.invalid_partitions,
            "nope": ErrorCode.unknown_topic_or_partition,
        }
        assert h.node.topic("t").partitions == 3  # type: ignore[union-attr]

    run_node(tmp_path, body)


def _describe_configs(*resources: tuple[int, str]) -> Any:
    return request(
        DESCRIBE_CONFIGS,
        4,
        "DescribeConfigsRequest",
        resources=tuple(
            request(
                DESCRIBE_CONFIGS,
                4,
                "DescribeConfigsResource",
                resource_type=kind,
                resource_name=name,
                configuration_keys=None,
            )
            for kind, name in resources
        ),
        include_synonyms=False,
        include_documentation=False,
    )


def test_describe_configs_shows_topic_overrides_and_the_brokers_settings(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.node.create_topic("t", 1, {"retention.ms": "5000"})
        topic, broker = (await h.call(_describe_configs((TOPIC, "t"), (BROKER, "3")))).results
        assert (topic.error_code, broker.error_code) == (ErrorCode.none, ErrorCode.none)
        topic_configs = {c.name: (c.value, c.config_source) for c in topic.configs}
        assert topic_configs["retention.ms"] == ("5000", 1)  # DYNAMIC_TOPIC_CONFIG
        assert topic_configs["cleanup.policy"] == ("delete", 5)  # DEFAULT_CONFIG
        broker_configs = {c.name: c.value for c in broker.configs}
        assert broker_configs["broker.id"] == "3"
        assert broker_configs["num.partitions"] == "2"

    run_node(tmp_path, body, node_id=3, default_partitions=2)


def test_describe_configs_of_an_unknown_topic_or_another_broker_is_an_error(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        results = (
            await h.call(_describe_configs((TOPIC, "nope"), (BROKER, "9"), (7, "x")))
        ).results
        assert [(r.error_code, r.configs) for r in results] == [
            (ErrorCode.unknown_topic_or_partition, ()),
            (ErrorCode.invalid_request, ()),
            (ErrorCode.invalid_request, ()),
        ]

    run_node(tmp_path, body)


def _metadata(
    *names: str | None, topic_ids: tuple[uuid.UUID, ...] = (), create: bool = True
) -> Any:
    topics = tuple(
        request(METADATA, 12, "MetadataRequestTopic", name=n, topic_id=None) for n in names
    ) + tuple(
        request(METADATA, 12, "MetadataRequestTopic", name=None, topic_id=i) for i in topic_ids
    )
    return request(
        METADATA,
        12,
        "MetadataRequest",
        topics=topics,
        allow_auto_topic_creation=create,
        include_topic_authorized_operations=False,
    )


def test_metadata_auto_creates_a_topic_led_by_this_broker(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(_metadata("fresh"))
        assert [(b.node_id, b.host, b.port) for b in response.brokers] == [(1, "127.0.0.1", 9092)]
        assert (response.cluster_id, response.controller_id) == (h.node.cluster_id, 1)
        (topic,) = response.topics
        assert (topic.name, topic.error_code, topic.is_internal) == ("fresh", ErrorCode.none, False)
        assert [(p.partition_index, p.error_code, p.leader_id) for p in topic.partitions] == [
            (0, ErrorCode.none, 1),
            (1, ErrorCode.none, 1),
        ]
        assert all(p.leader_epoch >= 0 and p.replica_nodes == (1,) for p in topic.partitions)
        (by_id,) = (await h.call(_metadata(topic_ids=(topic.topic_id,)))).topics
        assert (by_id.name, len(by_id.partitions)) == ("fresh", 2)

    run_node(tmp_path, body, default_partitions=2)


def test_metadata_refuses_bad_and_internal_names_and_unknown_topics_without_create(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(_metadata("bad name!", "__consumer_offsets", "nope", create=False))
        assert [(t.name, t.error_code, t.partitions) for t in response.topics] == [
            ("bad name!", ErrorCode.invalid_topic_exception, ()),
            ("__consumer_offsets", ErrorCode.invalid_topic_exception, ()),
            ("nope", ErrorCode.unknown_topic_or_partition, ()),
        ]
        assert h.node.topics() == {}

    run_node(tmp_path, body)


def test_metadata_auto_create_off_by_config_leaves_the_topic_unknown(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        (topic,) = (await h.call(_metadata("fresh"))).topics
        assert topic.error_code == ErrorCode.unknown_topic_or_partition
        assert h.node.topic("fresh") is None

    run_node(tmp_path, body, auto_create_topics=False)

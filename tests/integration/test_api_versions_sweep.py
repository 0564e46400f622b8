"""Every advertised version of every API, spoken to the real broker.

For each (API, version) in the broker's own ApiVersions answer, a request of exactly
that version is sent over TCP and its response decoded with that version's schema;
the test checks the answer means what it should (no error, the right data). A
response field a version lacks or a schema mix-up shows up here, not in a client.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kio.index import load_payload_module
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.static.constants import EntityType

from tests.integration import acl_sweep, log_dirs_sweep, sasl_sweep, scram_sweep, txn_sweep
from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.raw_client import RawClient, topic_id
from tests.integration.test_clients import create_topic
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, request_module
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration

TOPIC = "sweep"
NOW = 1_700_000_000_000
ZERO = datetime.timedelta(0)
TEN_S = datetime.timedelta(seconds=10)


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def advertised(broker: BrokerProcess) -> dict[int, tuple[int, int]]:
    with RawClient(broker.bootstrap) as c:
        resp = c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    return {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    port = free_port()
    proc = BrokerProcess(
        tmp_path_factory.mktemp("sweep") / "data", port=port, args=sasl_sweep.broker_args(port)
    )
    sasl_sweep.prepare(proc)
    with proc as b:
        create_topic(b, TOPIC, partitions=2)
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(10):
            producer.produce(TOPIC, value=b"v%d" % i, partition=0, timestamp=NOW + i)
        assert producer.flush(30) == 0
        yield b


def _produce(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(0, v)
    batch = build_batch([Record(0, NOW + 100, b"k", b"sweep")])
    part = build(m, "PartitionProduceData", index=0, records=batch)
    topic = build(m, "TopicProduceData", name=TOPIC, partition_data=(part,))
    request = build(
        m, "ProduceRequest", transactional_id=None, acks=-1, timeout=TEN_S, topic_data=(topic,)
    )

    def check(r: Any) -> None:
        p = r.responses[0].partition_responses[0]
        assert (p.error_code, p.base_offset >= 10) == (0, True)

    return request, check


def _fetch(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    m = req(1, v)
    # From v13 a topic is named by its id (KIP-516), in the request and the answer.
    named = {"topic_id": topic_id(broker.bootstrap, TOPIC)} if v >= 13 else {"topic": TOPIC}
    part = build(
        m,
        "FetchPartition",
        partition=0,
        current_leader_epoch=-1,
        fetch_offset=0,
        last_fetched_epoch=-1,
        log_start_offset=-1,
        partition_max_bytes=1 << 20,
    )
    topic = build(m, "FetchTopic", **named, partitions=(part,))
    request = build(
        m,
        "FetchRequest",
        replica_id=-1,
        max_wait=ZERO,
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=(topic,),
        forgotten_topics_data=(),
        rack_id="",
    )

    def check(r: Any) -> None:
        (t,) = r.responses
        assert {k: getattr(t, k) for k in named} == named
        p = t.partitions[0]
        assert p.error_code == 0 and p.high_watermark >= 10 and len(p.records or b"") > 0

    return request, check


def _list_offsets(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(2, v)
    parts: tuple[Any, ...] = (
        build(
            m, "ListOffsetsPartition", partition_index=0, current_leader_epoch=-1, timestamp=NOW + 3
        ),
    )
    # v8 adds -4 EARLIEST_LOCAL (the log start: one tier), v9 -5 LATEST_TIERED (none: -1).
    special = {8: -4, 9: -5}.get(v, -1)
    if v >= 8:
        parts += (
            build(
                m,
                "ListOffsetsPartition",
                partition_index=1,
                current_leader_epoch=-1,
                timestamp=special,
            ),
        )
    request = build(
        m,
        "ListOffsetsRequest",
        replica_id=-1,
        isolation_level=0,
        topics=(build(m, "ListOffsetsTopic", name=TOPIC, partitions=parts),),
    )

    def check(r: Any) -> None:
        p = r.topics[0].partitions[0]
        assert (p.error_code, p.offset) == (0, 3)
        if v >= 8:
            q = r.topics[0].partitions[1]
            assert (q.error_code, q.offset) == (0, 0 if special == -4 else -1)

    return request, check


def _offset_for_leader_epoch(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = request_module(23, v)  # v0-1: protocol/legacy_schemas.py, kio has none
    # Epoch 0 is older than any tenure (a tenure is a metadata seq, and seq 0 is the
    # first broker's join): it ends where the partition's first epoch starts, offset 0.
    part = build(
        m, "OffsetForLeaderPartition", partition=0, current_leader_epoch=-1, leader_epoch=0
    )
    request = build(
        m,
        "OffsetForLeaderEpochRequest",
        replica_id=-1,
        topics=(build(m, "OffsetForLeaderTopic", topic=TOPIC, partitions=(part,)),),
    )

    def check(r: Any) -> None:
        p = r.topics[0].partitions[0]
        assert (p.error_code, getattr(p, "leader_epoch", 0), p.end_offset) == (0, 0, 0)
        assert hasattr(p, "leader_epoch") == (v >= 1)

    return request, check


def _metadata(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(3, v)
    topics = (build(m, "MetadataRequestTopic", name=TOPIC, topic_id=None),)
    request = build(
        m,
        "MetadataRequest",
        topics=topics,
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )

    def check(r: Any) -> None:
        assert len(r.brokers) == 1
        (t,) = r.topics
        assert (t.error_code, t.name, len(t.partitions)) == (0, TOPIC, 2)

    return request, check


def _find_coordinator(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(10, v)
    request = build(m, "FindCoordinatorRequest", key="g", key_type=0, coordinator_keys=("g", "h"))

    def check(r: Any) -> None:
        if v >= 4:
            assert [c.error_code for c in r.coordinators] == [0, 0]
        else:
            assert r.error_code == 0 and r.node_id == 1

    return request, check


def _api_versions(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(18, v)
    request = build(m, "ApiVersionsRequest", client_software_name="t", client_software_version="1")

    def check(r: Any) -> None:
        assert r.error_code == 0 and {k.api_key for k in r.api_keys} >= {0, 1, 3, 18}

    return request, check


def _create_topics(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(19, v)
    name = f"sweep-create-{v}-{uuid.uuid4().hex[:6]}"
    cfg = (build(m, "CreatableTopicConfig", name="retention.ms", value="1000"),)
    topic = build(
        m,
        "CreatableTopic",
        name=name,
        num_partitions=3,
        replication_factor=3,
        assignments=(),
        configs=cfg,
    )
    request = build(m, "CreateTopicsRequest", topics=(topic,), timeout=TEN_S, validate_only=False)

    def check(r: Any) -> None:
        (t,) = r.topics
        assert (t.name, t.error_code) == (name, 0)

    return request, check


def _delete_topics(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    name = f"sweep-delete-{v}-{uuid.uuid4().hex[:6]}"
    create_topic(broker, name)
    m = req(20, v)
    if v >= 6:
        topics = (build(m, "DeleteTopicState", name=name, topic_id=uuid.UUID(int=0)),)
        request = build(m, "DeleteTopicsRequest", topics=topics, timeout=TEN_S)
    else:
        request = build(m, "DeleteTopicsRequest", topic_names=(name,), timeout=TEN_S)

    def check(r: Any) -> None:
        (t,) = r.responses
        assert (t.name, t.error_code) == (name, 0)

    return request, check


def _create_partitions(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    name = f"sweep-grow-{v}-{uuid.uuid4().hex[:6]}"
    create_topic(broker, name)
    m = req(37, v)
    topic = build(m, "CreatePartitionsTopic", name=name, count=3, assignments=None)
    request = build(
        m, "CreatePartitionsRequest", topics=(topic,), timeout=TEN_S, validate_only=False
    )

    def check(r: Any) -> None:
        (t,) = r.results
        assert (t.name, t.error_code) == (name, 0)

    return request, check


def _describe_configs(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(32, v)
    res = build(
        m, "DescribeConfigsResource", resource_type=2, resource_name=TOPIC, configuration_keys=None
    )
    request = build(
        m,
        "DescribeConfigsRequest",
        resources=(res,),
        include_synonyms=False,
        include_documentation=False,
    )

    def check(r: Any) -> None:
        (res,) = r.results
        values = {c.name: c.value for c in res.configs}
        assert res.error_code == 0 and values["cleanup.policy"] == "delete"

    return request, check


def _describe_cluster(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(60, v)
    request = build(
        m, "DescribeClusterRequest", include_cluster_authorized_operations=False, endpoint_type=1
    )

    def check(r: Any) -> None:
        assert r.error_code == 0 and [b.broker_id for b in r.brokers] == [1]

    return request, check


def _init_producer_id(v: int) -> tuple[Any, Callable[[Any], None]]:
    m = req(22, v)
    request = build(
        m,
        "InitProducerIdRequest",
        transactional_id=None,
        transaction_timeout=datetime.timedelta(seconds=60),
        producer_id=-1,
        producer_epoch=-1,
    )

    def check(r: Any) -> None:
        assert r.error_code == 0 and r.producer_id >= 0 and r.producer_epoch == 0

    return request, check


# -- consumer group membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup ----------

GROUP_PROTOCOLS = (("range", b"range-meta"), ("roundrobin", b"rr-meta"))


def _group_id(api: str, v: int) -> str:
    return f"sweep-{api}-v{v}-{uuid.uuid4().hex[:6]}"


def _join_request(v: int, group: str, member_id: str) -> Any:
    m = req(11, v)
    protocols = tuple(
        build(m, "JoinGroupRequestProtocol", name=n, metadata=d) for n, d in GROUP_PROTOCOLS
    )
    return build(
        m,
        "JoinGroupRequest",
        group_id=group,
        session_timeout=TEN_S,
        rebalance_timeout=TEN_S,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=protocols,
        reason=None,
    )


def _member_id_for(broker: BrokerProcess, v: int, group: str) -> str:
    """v4+ (KIP-394): a join without an id is refused with a new id to rejoin with."""
    if v < 4:
        return ""
    with RawClient(broker.bootstrap) as c:
        first = c.request(_join_request(v, group, ""))
    assert first.error_code == ErrorCode.member_id_required and first.member_id
    assert first.generation_id == -1
    member_id: str = first.member_id
    return member_id


def _joined(broker: BrokerProcess, group: str, *, synced: bool = False) -> tuple[str, int]:
    """A one-member group (joined with JoinGroup v5, optionally synced): member, generation."""
    with RawClient(broker.bootstrap) as c:
        r = c.request(_join_request(5, group, _member_id_for(broker, 5, group)))
        assert r.error_code == 0, r
        if synced:
            m = req(14, 5)
            assignment = (
                build(m, "SyncGroupRequestAssignment", member_id=r.member_id, assignment=b"a"),
            )
            s = c.request(
                build(
                    m,
                    "SyncGroupRequest",
                    group_id=group,
                    generation_id=r.generation_id,
                    member_id=r.member_id,
                    group_instance_id=None,
                    protocol_type="consumer",
                    protocol_name=r.protocol_name,
                    assignments=assignment,
                )
            )
            assert (s.error_code, s.assignment) == (0, b"a")
    return r.member_id, r.generation_id


def _join_group(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group_id("join", v)
    member_id = _member_id_for(broker, v, group)
    request = _join_request(v, group, member_id)

    def check(r: Any) -> None:
        assert (r.error_code, r.generation_id, r.protocol_name) == (0, 1, "range")
        assert r.member_id and r.leader == r.member_id
        assert member_id in ("", r.member_id)
        assert [(x.member_id, x.metadata) for x in r.members] == [(r.member_id, b"range-meta")]
        if v >= 7:
            assert r.protocol_type == "consumer"

    return request, check


def _sync_group(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group_id("sync", v)
    member_id, generation = _joined(broker, group)
    m = req(14, v)
    assignment = (build(m, "SyncGroupRequestAssignment", member_id=member_id, assignment=b"p0"),)
    request = build(
        m,
        "SyncGroupRequest",
        group_id=group,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=assignment,
    )

    def check(r: Any) -> None:
        assert (r.error_code, r.assignment) == (0, b"p0")
        if v >= 5:
            assert (r.protocol_type, r.protocol_name) == ("consumer", "range")

    return request, check


def _heartbeat(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group_id("heartbeat", v)
    member_id, generation = _joined(broker, group, synced=True)
    request = build(
        req(12, v),
        "HeartbeatRequest",
        group_id=group,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
    )

    def check(r: Any) -> None:
        assert r.error_code == 0

    return request, check


def _leave_group(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group_id("leave", v)
    member_id, _ = _joined(broker, group, synced=True)
    m = req(13, v)
    if v >= 3:
        identity = build(m, "MemberIdentity", member_id=member_id, group_instance_id=None)
        request = build(m, "LeaveGroupRequest", group_id=group, members=(identity,))
    else:
        request = build(m, "LeaveGroupRequest", group_id=group, member_id=member_id)

    def check(r: Any) -> None:
        assert r.error_code == 0
        if v >= 3:
            assert [(x.member_id, x.error_code) for x in r.members] == [(member_id, 0)]
        with RawClient(broker.bootstrap) as c:  # gone: its heartbeat is refused
            hb = build(
                req(12, 0), "HeartbeatRequest", group_id=group, generation_id=1, member_id=member_id
            )
            assert c.request(hb).error_code == ErrorCode.unknown_member_id

    return request, check


def _commit_request(v: int, group: str, offsets: dict[int, int]) -> Any:
    """A "simple" commit (generation -1, no member id) of TOPIC's partitions."""
    m = req(8, v)
    parts = tuple(
        build(
            m,
            "OffsetCommitRequestPartition",
            partition_index=p,
            committed_offset=o,
            committed_leader_epoch=0,
            committed_metadata=f"meta-{p}",
        )
        for p, o in offsets.items()
    )
    return build(
        m,
        "OffsetCommitRequest",
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        retention_time=datetime.timedelta(milliseconds=-1),
        topics=(build(m, "OffsetCommitRequestTopic", name=TOPIC, partitions=parts),),
    )


def _commit(broker: BrokerProcess, group: str, offsets: dict[int, int]) -> None:
    with RawClient(broker.bootstrap) as c:
        r = c.request(_commit_request(8, group, offsets))
    assert [p.error_code for t in r.topics for p in t.partitions] == [0] * len(offsets)


def _committed(broker: BrokerProcess, group: str) -> dict[int, tuple[int, int, str | None]]:
    """Every committed (offset, leader epoch, metadata) of TOPIC, read with OffsetFetch v7."""
    with RawClient(broker.bootstrap) as c:
        r = c.request(build(req(9, 7), "OffsetFetchRequest", group_id=group, topics=None))
    assert r.error_code == 0
    return {
        p.partition_index: (p.committed_offset, p.committed_leader_epoch, p.metadata)
        for t in r.topics
        if t.name == TOPIC
        for p in t.partitions
    }


def _group(api: str, v: int) -> str:
    return f"sweep-{api}-{v}-{uuid.uuid4().hex[:6]}"


def _offset_commit(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group("commit", v)
    request = _commit_request(v, group, {0: 3 + v, 1: 4 + v})

    def check(r: Any) -> None:
        assert [(p.partition_index, p.error_code) for p in r.topics[0].partitions] == [
            (0, 0),
            (1, 0),
        ]
        epoch = 0 if v >= 6 else -1  # the leader epoch field exists from v6
        assert _committed(broker, group) == {
            0: (3 + v, epoch, "meta-0"),
            1: (4 + v, epoch, "meta-1"),
        }

    return request, check


def _offset_fetch(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group, empty = _group("fetch", v), _group("fetch-none", v)
    _commit(broker, group, {1: 7})
    m = req(9, v)
    # v1 must name partitions; v2+ ask for "all committed" with null topics.
    topic_cls = "OffsetFetchRequestTopics" if v >= 8 else "OffsetFetchRequestTopic"
    named = (build(m, topic_cls, name=TOPIC, partition_indexes=(0, 1)),)
    if v >= 8:
        groups = (
            build(m, "OffsetFetchRequestGroup", group_id=group, topics=None),
            build(m, "OffsetFetchRequestGroup", group_id=empty, topics=named),
        )
        request = build(m, "OffsetFetchRequest", groups=groups, require_stable=False)
    else:
        topics = named if v == 1 else None
        request = build(m, "OffsetFetchRequest", group_id=group, topics=topics)

    def offsets(topics: Any) -> dict[int, tuple[int, str | None, int]]:
        return {
            p.partition_index: (p.committed_offset, p.metadata, p.error_code)
            for t in topics
            for p in t.partitions
        }

    def check(r: Any) -> None:
        if v >= 8:
            mine, other = r.groups
            assert (mine.group_id, mine.error_code, other.error_code) == (group, 0, 0)
            assert offsets(mine.topics) == {1: (7, "meta-1", 0)}
            assert offsets(other.topics) == {0: (-1, "", 0), 1: (-1, "", 0)}
        elif v == 1:
            assert offsets(r.topics) == {0: (-1, "", 0), 1: (7, "meta-1", 0)}
        else:
            assert offsets(r.topics) == {1: (7, "meta-1", 0)}

    return request, check


def _list_groups(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group("list", v)
    _commit(broker, group, {0: 1})
    request = build(
        req(16, v), "ListGroupsRequest", states_filter=("Empty",), types_filter=("classic",)
    )

    def check(r: Any) -> None:
        listed = {g.group_id: g for g in r.groups}
        assert listed[group].protocol_type == ""  # offsets only, as Kafka lists them
        if v >= 4:
            assert {g.group_state for g in r.groups} == {"Empty"}
        if v >= 5:
            assert listed[group].group_type == "classic"

    return request, check


def _describe_groups(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group, unknown = _group("describe", v), _group("describe-none", v)
    _commit(broker, group, {0: 1})
    request = build(
        req(15, v),
        "DescribeGroupsRequest",
        groups=(group, unknown),
        include_authorized_operations=False,
    )

    def check(r: Any) -> None:
        got = [(g.group_id, g.error_code, g.group_state, g.members) for g in r.groups]
        assert got == [(group, 0, "Empty", ()), (unknown, 0, "Dead", ())]

    return request, check


def _delete_groups(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group, unknown = _group("delete", v), _group("delete-none", v)
    _commit(broker, group, {0: 1, 1: 2})
    request = build(req(42, v), "DeleteGroupsRequest", groups_names=(group, unknown))

    def check(r: Any) -> None:
        got = [(g.group_id, g.error_code) for g in r.results]
        assert got == [(group, 0), (unknown, ErrorCode.group_id_not_found)]
        assert _committed(broker, group) == {}

    return request, check


def _offset_delete(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    group = _group("offset-delete", v)
    _commit(broker, group, {0: 1, 1: 2})
    m = req(47, v)
    parts = (build(m, "OffsetDeleteRequestPartition", partition_index=0),)
    topic = build(m, "OffsetDeleteRequestTopic", name=TOPIC, partitions=parts)
    request = build(m, "OffsetDeleteRequest", group_id=group, topics=(topic,))

    def check(r: Any) -> None:
        assert [(p.partition_index, p.error_code) for p in r.topics[0].partitions] == [(0, 0)]
        assert _committed(broker, group) == {1: (2, 0, "meta-1")}

    return request, check


def _delete_records(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    from confluent_kafka import Producer

    name = f"sweep-delete-records-{v}-{uuid.uuid4().hex[:6]}"
    create_topic(broker, name)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(3):
        producer.produce(name, value=b"v%d" % i, partition=0)
    assert producer.flush(30) == 0
    m = req(21, v)
    parts = (build(m, "DeleteRecordsPartition", partition_index=0, offset=2),)
    topic = build(m, "DeleteRecordsTopic", name=name, partitions=parts)
    request = build(m, "DeleteRecordsRequest", topics=(topic,), timeout=TEN_S)

    def check(r: Any) -> None:
        (t,) = r.topics
        got = [(p.partition_index, p.low_watermark, p.error_code) for p in t.partitions]
        assert (t.name, got) == (name, [(0, 2, 0)])

    return request, check


def _alter_configs(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    name = f"sweep-alter-{v}-{uuid.uuid4().hex[:6]}"
    create_topic(broker, name)
    m = req(33, v)
    config = build(m, "AlterableConfig", name="retention.ms", value="60000")
    res = build(m, "AlterConfigsResource", resource_type=2, resource_name=name, configs=(config,))
    request = build(m, "AlterConfigsRequest", resources=(res,), validate_only=False)

    def check(r: Any) -> None:
        (res,) = r.responses
        assert (res.resource_name, res.error_code) == (name, 0)
        assert _topic_config(broker, name, "retention.ms") == "60000"

    return request, check


def _incremental_alter_configs(v: int, broker: BrokerProcess) -> tuple[Any, Callable[[Any], None]]:
    name = f"sweep-incr-{v}-{uuid.uuid4().hex[:6]}"
    create_topic(broker, name)
    m = req(44, v)
    config = build(m, "AlterableConfig", name="cleanup.policy", config_operation=2, value="compact")
    res = build(m, "AlterConfigsResource", resource_type=2, resource_name=name, configs=(config,))
    request = build(m, "IncrementalAlterConfigsRequest", resources=(res,), validate_only=False)

    def check(r: Any) -> None:
        (res,) = r.responses
        assert (res.resource_name, res.error_code) == (name, 0)
        assert _topic_config(broker, name, "cleanup.policy") == "delete,compact"

    return request, check


def _topic_config(broker: BrokerProcess, topic: str, key: str) -> str:
    m = req(32, 4)
    res = build(
        m,
        "DescribeConfigsResource",
        resource_type=2,
        resource_name=topic,
        configuration_keys=(key,),
    )
    with RawClient(broker.bootstrap) as c:
        answer = c.request(build(m, "DescribeConfigsRequest", resources=(res,)))
    (config,) = answer.results[0].configs
    assert config.config_source == 1  # DYNAMIC_TOPIC_CONFIG
    return str(config.value)


SIMPLE: dict[int, Callable[[int], tuple[Any, Callable[[Any], None]]]] = {
    0: _produce,
    2: _list_offsets,
    3: _metadata,
    10: _find_coordinator,
    18: _api_versions,
    19: _create_topics,
    32: _describe_configs,
    60: _describe_cluster,
    22: _init_producer_id,
    23: _offset_for_leader_epoch,
}
WITH_BROKER: dict[int, Callable[[int, BrokerProcess], tuple[Any, Callable[[Any], None]]]] = {
    1: _fetch,
    20: _delete_topics,
    21: _delete_records,
    33: _alter_configs,
    44: _incremental_alter_configs,
    37: _create_partitions,
    11: _join_group,
    12: _heartbeat,
    13: _leave_group,
    14: _sync_group,
    8: _offset_commit,
    9: _offset_fetch,
    15: _describe_groups,
    16: _list_groups,
    42: _delete_groups,
    47: _offset_delete,
    **txn_sweep.WITH_BROKER,
    **sasl_sweep.WITH_BROKER,
    **scram_sweep.WITH_BROKER,
    **acl_sweep.WITH_BROKER,
    **log_dirs_sweep.WITH_BROKER,
}
IMPLEMENTED_FROM = {0: 3}  # Produce 0-2 are advertised only (see produce handler)


def test_every_api_in_api_versions_has_a_sweep(broker: BrokerProcess) -> None:
    assert set(advertised(broker)) == set(SIMPLE) | set(WITH_BROKER)


# What issue #2 asks for; the test below also checks ApiVersions says the same.
RANGES = {
    0: (3, 11),
    1: (4, 16),
    2: (1, 9),
    3: (0, 12),
    10: (0, 4),
    18: (0, 3),
    19: (2, 7),
    20: (1, 6),
    22: (0, 4),
    23: (0, 4),
    32: (1, 4),
    37: (0, 3),
    60: (0, 1),
    11: (0, 7),
    12: (0, 4),
    13: (0, 4),
    14: (0, 5),
    8: (2, 8),
    9: (1, 8),
    15: (0, 5),
    16: (0, 5),
    42: (0, 2),
    47: (0, 0),
    21: (0, 2),
    33: (0, 2),
    44: (0, 1),
    **txn_sweep.RANGES,
    **sasl_sweep.RANGES,
    **scram_sweep.RANGES,
    **acl_sweep.RANGES,
    **log_dirs_sweep.RANGES,
}


@pytest.mark.parametrize(
    ("api_key", "version"),
    [(k, v) for k, (lo, hi) in RANGES.items() for v in range(lo, hi + 1)],
)
def test_each_advertised_version_answers_correctly(
    broker: BrokerProcess, api_key: int, version: int
) -> None:
    low, high = advertised(broker)[api_key]
    assert (IMPLEMENTED_FROM.get(api_key, low), high) == RANGES[api_key]
    if api_key in WITH_BROKER:
        request, check = WITH_BROKER[api_key](version, broker)
    else:
        request, check = SIMPLE[api_key](version)
    with sasl_sweep.connect(api_key, broker) as c:
        response = c.request(request)
    check(response)
    assert ErrorCode(getattr(response, "error_code", 0)) == ErrorCode.none

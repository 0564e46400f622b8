"""ACLs on real brokers: an ACL matrix over every API, and ACLs shared by the bucket.

Two broker processes on one bucket: A (`--authorizer off`) is the admin the ACLs are
created and deleted through; B (`--authorizer acl`) enforces them on the principal
every connection has until SASL lands, User:ANONYMOUS. For each API, a request to B
first gets the authorization error Kafka answers, then, once the ACLs it needs are
created through A (B reads them from the bucket: we wait for the answer to change,
not for a duration), an answer without any authorization error; then the ACLs go.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration import acl_sweep
from tests.integration import test_api_versions_sweep as sweep
from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import create_topic
from tidelog.broker.security.acl import AclOperation as Op
from tidelog.broker.security.acl import PatternType as Pat
from tidelog.broker.security.acl import ResourceType as Res
from tidelog.protocol.messages import build

pytestmark = pytest.mark.integration

ANON = "User:ANONYMOUS"
TOPIC = sweep.TOPIC
TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED = 29, 30, 31, 53
AUTH_ERRORS = {TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED}
ZERO = datetime.timedelta(0)
TEN_S = datetime.timedelta(seconds=10)
Grant = tuple[Res, str, Op]


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


@dataclass
class Pair:
    admin: BrokerProcess  # --authorizer off
    enforcing: BrokerProcess  # --authorizer acl


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("acls")
    common = ["--object-store", f"file://{tmp / 'bucket'}"]
    a = BrokerProcess(tmp / "a", node_id=1, args=[*common, "--authorizer", "off"])
    b = BrokerProcess(
        tmp / "b",
        node_id=2,
        args=[*common, "--authorizer", "acl", "--security-refresh-ms", "100"],
    )
    with a, b:
        create_topic(a, TOPIC, partitions=2)
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": a.bootstrap})
        for i in range(10):
            producer.produce(TOPIC, value=b"v%d" % i, partition=0)
        assert producer.flush(30) == 0
        yield Pair(a, b)


# -- ACLs through the admin broker (raw CreateAcls / DeleteAcls v3) --------------------


def grant(broker: BrokerProcess, grants: list[Grant], *, deny: bool = False, **kw: Any) -> None:
    m = req(30, 3)
    creations = tuple(
        build(
            m,
            "AclCreation",
            resource_type=rtype,
            resource_name=name,
            resource_pattern_type=kw.get("pattern", Pat.LITERAL),
            principal=kw.get("principal", ANON),
            host="*",
            operation=op,
            permission_type=2 if deny else 3,
        )
        for rtype, name, op in grants
    )
    with RawClient(broker.bootstrap) as c:
        r = c.request(build(m, "CreateAclsRequest", creations=creations))
    assert [x.error_code for x in r.results] == [0] * len(grants), r


def revoke_all(broker: BrokerProcess) -> int:
    """Delete every ACL; how many there were."""
    m = req(31, 3)
    every = build(
        m,
        "DeleteAclsFilter",
        resource_type_filter=Res.ANY,
        resource_name_filter=None,
        pattern_type_filter=Pat.ANY,
        principal_filter=None,
        host_filter=None,
        operation=Op.ANY,
        permission_type=1,
    )
    with RawClient(broker.bootstrap) as c:
        r = c.request(build(m, "DeleteAclsRequest", filters=(every,)))
    (result,) = r.filter_results
    assert result.error_code == 0, r
    return len(result.matching_acls)


def codes(value: Any) -> list[int]:
    """Every error code anywhere in a response."""
    found: list[int] = []
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            inner = getattr(value, f.name)
            if f.name.endswith("error_code"):
                found.append(int(inner))
            else:
                found.extend(codes(inner))
    elif isinstance(value, tuple):
        for item in value:
            found.extend(codes(item))
    return found


def send(broker: BrokerProcess, request: Any) -> Any:
    with RawClient(broker.bootstrap) as c:
        return c.request(request)


def wait_for(what: str, probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Ask until the answer is what we wait for. The deadline only ends a test whose
    answer never comes; nothing is measured against it."""
    deadline = time.monotonic() + 60
    while True:
        answer = probe()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"{what}: still {answer}"
        time.sleep(0.05)


# -- the matrix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[Pair], Any]
    needs: tuple[Grant, ...]
    denied: int


def _sweep(api_key: int, version: int) -> Callable[[Pair], Any]:
    def make(p: Pair) -> Any:
        if api_key in sweep.WITH_BROKER:
            return sweep.WITH_BROKER[api_key](version, p.admin)[0]
        return sweep.SIMPLE[api_key](version)[0]

    return make


def _acl_api(api_key: int) -> Callable[[Pair], Any]:
    return lambda p: acl_sweep.WITH_BROKER[api_key](3, p.admin)[0]


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _join(p: Pair) -> Any:
    return sweep._join_request(7, _uid("acl-join"), "")


def _sync(p: Pair) -> Any:
    return build(
        req(14, 5),
        "SyncGroupRequest",
        group_id=_uid("acl-sync"),
        generation_id=1,
        member_id="m",
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=(),
    )


def _heartbeat(p: Pair) -> Any:
    return build(
        req(12, 4),
        "HeartbeatRequest",
        group_id=_uid("acl-hb"),
        generation_id=1,
        member_id="m",
        group_instance_id=None,
    )


def _leave(p: Pair) -> Any:
    m = req(13, 4)
    who = build(m, "MemberIdentity", member_id="m", group_instance_id=None)
    return build(m, "LeaveGroupRequest", group_id=_uid("acl-leave"), members=(who,))


def _commit(p: Pair) -> Any:
    return sweep._commit_request(8, _uid("acl-commit"), {0: 1})


def _offset_fetch(p: Pair) -> Any:
    m = req(9, 8)
    named = (build(m, "OffsetFetchRequestTopics", name=TOPIC, partition_indexes=(0,)),)
    group = build(m, "OffsetFetchRequestGroup", group_id=_uid("acl-fetch"), topics=named)
    return build(m, "OffsetFetchRequest", groups=(group,), require_stable=False)


def _describe_groups(p: Pair) -> Any:
    return build(
        req(15, 5),
        "DescribeGroupsRequest",
        groups=(_uid("acl-describe"),),
        include_authorized_operations=False,
    )


def _delete_groups(p: Pair) -> Any:
    return build(req(42, 2), "DeleteGroupsRequest", groups_names=(_uid("acl-delete"),))


def _offset_delete(p: Pair) -> Any:
    m = req(47, 0)
    parts = (build(m, "OffsetDeleteRequestPartition", partition_index=0),)
    topic = build(m, "OffsetDeleteRequestTopic", name=TOPIC, partitions=parts)
    return build(m, "OffsetDeleteRequest", group_id=_uid("acl-odel"), topics=(topic,))


def _find_txn(p: Pair) -> Any:
    return build(
        req(10, 4), "FindCoordinatorRequest", key_type=1, coordinator_keys=(_uid("acl-find"),)
    )


def _init_txn(p: Pair) -> Any:
    return build(
        req(22, 4),
        "InitProducerIdRequest",
        transactional_id=_uid("acl-init"),
        transaction_timeout=datetime.timedelta(seconds=60),
        producer_id=-1,
        producer_epoch=-1,
    )


def _add_partitions(p: Pair) -> Any:
    m = req(24, 3)
    return build(
        m,
        "AddPartitionsToTxnRequest",
        v3_and_below_transactional_id=_uid("acl-addp"),
        v3_and_below_producer_id=1,
        v3_and_below_producer_epoch=0,
        v3_and_below_topics=(build(m, "AddPartitionsToTxnTopic", name=TOPIC, partitions=(0,)),),
    )


def _verify_only(p: Pair) -> Any:
    m = req(24, 4)
    topic = build(m, "AddPartitionsToTxnTopic", name=TOPIC, partitions=(0,))
    txn = build(
        m,
        "AddPartitionsToTxnTransaction",
        transactional_id=_uid("acl-verify"),
        producer_id=1,
        producer_epoch=0,
        verify_only=True,
        topics=(topic,),
    )
    return build(m, "AddPartitionsToTxnRequest", transactions=(txn,))


def _add_offsets(p: Pair) -> Any:
    return build(
        req(25, 3),
        "AddOffsetsToTxnRequest",
        transactional_id=_uid("acl-addo"),
        producer_id=1,
        producer_epoch=0,
        group_id=_uid("acl-addo-group"),
    )


def _end_txn(p: Pair) -> Any:
    return build(
        req(26, 3),
        "EndTxnRequest",
        transactional_id=_uid("acl-end"),
        producer_id=1,
        producer_epoch=0,
        committed=True,
    )


def _txn_commit(p: Pair) -> Any:
    m = req(28, 3)
    part = build(
        m,
        "TxnOffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=1,
        committed_leader_epoch=-1,
        committed_metadata=None,
    )
    return build(
        m,
        "TxnOffsetCommitRequest",
        transactional_id=_uid("acl-tc"),
        group_id=_uid("acl-tc-group"),
        producer_id=1,
        producer_epoch=0,
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        topics=(build(m, "TxnOffsetCommitRequestTopic", name=TOPIC, partitions=(part,)),),
    )


def _markers(p: Pair) -> Any:
    m = req(27, 1)
    topic = build(m, "WritableTxnMarkerTopic", name=TOPIC, partition_indexes=(0,))
    marker = build(
        m,
        "WritableTxnMarker",
        producer_id=1,
        producer_epoch=0,
        transaction_result=False,
        topics=(topic,),
        coordinator_epoch=0,
    )
    return build(m, "WriteTxnMarkersRequest", markers=(marker,))


def _describe_producers(p: Pair) -> Any:
    m = req(61, 0)
    topic = build(m, "TopicRequest", name=TOPIC, partition_indexes=(0,))
    return build(m, "DescribeProducersRequest", topics=(topic,))


def _describe_txns(p: Pair) -> Any:
    return build(req(65, 0), "DescribeTransactionsRequest", transactional_ids=(_uid("acl-dt"),))


def _broker_configs(p: Pair) -> Any:
    m = req(32, 4)
    res = build(
        m, "DescribeConfigsResource", resource_type=4, resource_name="", configuration_keys=None
    )
    return build(
        m,
        "DescribeConfigsRequest",
        resources=(res,),
        include_synonyms=False,
        include_documentation=False,
    )


def _cluster_default(p: Pair) -> Any:
    """IncrementalAlterConfigs on the BROKER resource "" (the cluster-wide defaults),
    setting a config that does nothing here to its default value."""
    m = req(44, 1)
    entry = build(m, "AlterableConfig", name="min.insync.replicas", config_operation=0, value="1")
    res = build(m, "AlterConfigsResource", resource_type=4, resource_name="", configs=(entry,))
    return build(m, "IncrementalAlterConfigsRequest", resources=(res,), validate_only=False)


ANY_TOPIC, ANY_GROUP, ANY_TXN = (Res.TOPIC, "*"), (Res.GROUP, "*"), (Res.TRANSACTIONAL_ID, "*")
CLUSTER = (Res.CLUSTER, "kafka-cluster")


def g(resource: tuple[Res, str], op: Op) -> Grant:
    return (resource[0], resource[1], op)


CASES = [
    Case("Produce", _sweep(0, 9), (g(ANY_TOPIC, Op.WRITE),), TOPIC_DENIED),
    Case("Produce v11", _sweep(0, 11), (g(ANY_TOPIC, Op.WRITE),), TOPIC_DENIED),
    Case("Fetch", _sweep(1, 12), (g(ANY_TOPIC, Op.READ),), TOPIC_DENIED),
    # By topic id (v13+): authorized by the id's topic, as Kafka does.
    Case("Fetch v16", _sweep(1, 16), (g(ANY_TOPIC, Op.READ),), TOPIC_DENIED),
    Case("ListOffsets", _sweep(2, 7), (g(ANY_TOPIC, Op.DESCRIBE),), TOPIC_DENIED),
    Case("ListOffsets/READ implies DESCRIBE", _sweep(2, 7), (g(ANY_TOPIC, Op.READ),), TOPIC_DENIED),
    Case("Metadata", _sweep(3, 12), (g(ANY_TOPIC, Op.DESCRIBE),), TOPIC_DENIED),
    Case("OffsetCommit", _commit, (g(ANY_GROUP, Op.READ), g(ANY_TOPIC, Op.READ)), GROUP_DENIED),
    Case(
        "OffsetFetch",
        _offset_fetch,
        (g(ANY_GROUP, Op.DESCRIBE), g(ANY_TOPIC, Op.DESCRIBE)),
        GROUP_DENIED,
    ),
    Case("FindCoordinator/group", _sweep(10, 4), (g(ANY_GROUP, Op.DESCRIBE),), GROUP_DENIED),
    Case("FindCoordinator/txn", _find_txn, (g(ANY_TXN, Op.DESCRIBE),), TXN_DENIED),
    Case("JoinGroup", _join, (g(ANY_GROUP, Op.READ),), GROUP_DENIED),
    Case("Heartbeat", _heartbeat, (g(ANY_GROUP, Op.READ),), GROUP_DENIED),
    Case("LeaveGroup", _leave, (g(ANY_GROUP, Op.READ),), GROUP_DENIED),
    Case("SyncGroup", _sync, (g(ANY_GROUP, Op.READ),), GROUP_DENIED),
    Case("DescribeGroups", _describe_groups, (g(ANY_GROUP, Op.DESCRIBE),), GROUP_DENIED),
    Case("CreateTopics", _sweep(19, 7), (g(CLUSTER, Op.CREATE),), TOPIC_DENIED),
    Case("CreateTopics/topic CREATE", _sweep(19, 7), (g(ANY_TOPIC, Op.CREATE),), TOPIC_DENIED),
    Case("DeleteTopics", _sweep(20, 6), (g(ANY_TOPIC, Op.DELETE),), TOPIC_DENIED),
    Case("DeleteRecords", _sweep(21, 2), (g(ANY_TOPIC, Op.DELETE),), TOPIC_DENIED),
    Case("InitProducerId/idempotent", _sweep(22, 4), (g(CLUSTER, Op.IDEMPOTENT_WRITE),), 31),
    Case("InitProducerId/idempotent, WRITE a topic", _sweep(22, 4), (g(ANY_TOPIC, Op.WRITE),), 31),
    Case("InitProducerId/transactional", _init_txn, (g(ANY_TXN, Op.WRITE),), TXN_DENIED),
    Case("OffsetForLeaderEpoch", _sweep(23, 4), (g(ANY_TOPIC, Op.DESCRIBE),), TOPIC_DENIED),
    Case(
        "AddPartitionsToTxn",
        _add_partitions,
        (g(ANY_TXN, Op.WRITE), g(ANY_TOPIC, Op.WRITE)),
        TXN_DENIED,
    ),
    Case("AddPartitionsToTxn v4", _verify_only, (g(CLUSTER, Op.CLUSTER_ACTION),), CLUSTER_DENIED),
    Case(
        "AddOffsetsToTxn", _add_offsets, (g(ANY_TXN, Op.WRITE), g(ANY_GROUP, Op.READ)), TXN_DENIED
    ),
    Case("EndTxn", _end_txn, (g(ANY_TXN, Op.WRITE),), TXN_DENIED),
    Case("WriteTxnMarkers", _markers, (g(CLUSTER, Op.CLUSTER_ACTION),), CLUSTER_DENIED),
    Case(
        "TxnOffsetCommit",
        _txn_commit,
        (g(ANY_TXN, Op.WRITE), g(ANY_GROUP, Op.READ), g(ANY_TOPIC, Op.READ)),
        TXN_DENIED,
    ),
    Case("DescribeAcls", _acl_api(29), (g(CLUSTER, Op.DESCRIBE),), CLUSTER_DENIED),
    Case("CreateAcls", _acl_api(30), (g(CLUSTER, Op.ALTER),), CLUSTER_DENIED),
    Case("DeleteAcls", _acl_api(31), (g(CLUSTER, Op.ALTER),), CLUSTER_DENIED),
    Case("DescribeConfigs/topic", _sweep(32, 4), (g(ANY_TOPIC, Op.DESCRIBE_CONFIGS),), 29),
    Case("DescribeConfigs/broker", _broker_configs, (g(CLUSTER, Op.DESCRIBE_CONFIGS),), 31),
    Case(
        "DescribeConfigs/ALTER_CONFIGS implies",
        _sweep(32, 4),
        (g(ANY_TOPIC, Op.ALTER_CONFIGS),),
        29,
    ),
    Case("AlterConfigs", _sweep(33, 2), (g(ANY_TOPIC, Op.ALTER_CONFIGS),), TOPIC_DENIED),
    Case("CreatePartitions", _sweep(37, 3), (g(ANY_TOPIC, Op.ALTER),), TOPIC_DENIED),
    Case("DeleteGroups", _delete_groups, (g(ANY_GROUP, Op.DELETE),), GROUP_DENIED),
    Case("IncrementalAlterConfigs", _sweep(44, 1), (g(ANY_TOPIC, Op.ALTER_CONFIGS),), 29),
    Case(
        "IncrementalAlterConfigs/cluster default",
        _cluster_default,
        (g(CLUSTER, Op.ALTER_CONFIGS),),
        CLUSTER_DENIED,
    ),
    Case("OffsetDelete", _offset_delete, (g(ANY_GROUP, Op.DELETE), g(ANY_TOPIC, Op.READ)), 30),
    Case("DescribeCluster", _sweep(60, 1), (g(CLUSTER, Op.DESCRIBE),), CLUSTER_DENIED),
    Case("DescribeLogDirs", _sweep(35, 5), (g(CLUSTER, Op.DESCRIBE),), CLUSTER_DENIED),
    Case("DescribeProducers", _describe_producers, (g(ANY_TOPIC, Op.READ),), TOPIC_DENIED),
    Case("DescribeTransactions", _describe_txns, (g(ANY_TXN, Op.DESCRIBE),), TXN_DENIED),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_api_is_refused_without_its_acl_and_served_with_it(pair: Pair, case: Case) -> None:
    revoke_all(pair.admin)
    request = case.request(pair)
    probe = lambda: codes(send(pair.enforcing, request))  # noqa: E731
    # A previous case's ACLs may still be in force on B for up to one refresh.
    wait_for(f"{case.name} refused", probe, lambda got: case.denied in got)
    grant(pair.admin, list(case.needs))
    wait_for(f"{case.name} served", probe, lambda got: not AUTH_ERRORS & set(got))
    assert revoke_all(pair.admin) >= len(case.needs)  # the ACL APIs make their own too


def test_api_versions_needs_no_acl(pair: Pair) -> None:
    revoke_all(pair.admin)
    request, check = sweep.SIMPLE[18](3)
    answer = send(pair.enforcing, request)
    check(answer)
    assert not AUTH_ERRORS & set(codes(answer))


def _all_topics(p: Pair) -> list[str]:
    request = build(
        req(3, 12),
        "MetadataRequest",
        topics=None,
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    return sorted(t.name for t in send(p.enforcing, request).topics)


def test_metadata_lists_only_topics_the_principal_may_describe(pair: Pair) -> None:
    revoke_all(pair.admin)
    for name in ("pay.eu", "pay.us", "orders"):
        create_topic(pair.admin, name)
    wait_for("nothing listed", lambda: _all_topics(pair), lambda got: got == [])
    grant(pair.admin, [(Res.TOPIC, "pay.", Op.READ)], pattern=Pat.PREFIXED)
    wait_for("prefix listed", lambda: _all_topics(pair), lambda got: got == ["pay.eu", "pay.us"])
    grant(pair.admin, [(Res.TOPIC, "pay.us", Op.DESCRIBE)], deny=True)
    wait_for("deny wins", lambda: _all_topics(pair), lambda got: got == ["pay.eu"])
    grant(pair.admin, [(Res.TOPIC, "*", Op.DESCRIBE)], principal="User:*")
    wait_for("wildcard", lambda: _all_topics(pair), lambda got: "orders" in got)
    assert "pay.us" not in _all_topics(pair)
    revoke_all(pair.admin)


def _group_coordinated_by(p: Pair, node_id: int) -> str:
    """A fresh group id whose coordinator is broker `node_id` (asked of the admin)."""
    while True:
        group = _uid("acl-listed")
        request = build(req(10, 4), "FindCoordinatorRequest", key_type=0, coordinator_keys=(group,))
        (found,) = send(p.admin, request).coordinators
        if found.error_code == 0 and found.node_id == node_id:
            return group


def test_list_groups_shows_only_groups_the_principal_may_describe(pair: Pair) -> None:
    revoke_all(pair.admin)
    group = _group_coordinated_by(pair, 2)
    grant(pair.admin, [(Res.GROUP, group, Op.READ), (Res.TOPIC, TOPIC, Op.READ)])
    commit = sweep._commit_request(8, group, {0: 1})
    wait_for("committed on B", lambda: codes(send(pair.enforcing, commit)), lambda c: c == [0])
    revoke_all(pair.admin)
    listing = build(req(16, 4), "ListGroupsRequest", states_filter=())

    def groups() -> list[str]:
        return [x.group_id for x in send(pair.enforcing, listing).groups]

    wait_for("no group listed", groups, lambda got: got == [])
    grant(pair.admin, [(Res.GROUP, "acl-listed", Op.DESCRIBE)], pattern=Pat.PREFIXED)
    wait_for("the group listed", groups, lambda got: got == [group])
    revoke_all(pair.admin)
    wait_for("no group listed again", groups, lambda got: got == [])
    grant(pair.admin, [(*CLUSTER, Op.DESCRIBE)])  # DESCRIBE on the cluster lists all
    wait_for("all groups listed", groups, lambda got: group in got)
    revoke_all(pair.admin)


def test_acls_made_through_one_broker_are_listed_by_the_other(pair: Pair) -> None:
    revoke_all(pair.admin)
    grant(pair.admin, [(Res.TOPIC, "shared", Op.WRITE)])
    grant(pair.admin, [(*CLUSTER, Op.DESCRIBE)])
    m = req(29, 3)
    request = build(
        m,
        "DescribeAclsRequest",
        resource_type_filter=Res.TOPIC,
        resource_name_filter="shared",
        pattern_type_filter=Pat.MATCH,
        principal_filter=None,
        host_filter=None,
        operation=Op.ANY,
        permission_type=1,
    )
    answer = wait_for(
        "B lists the ACL",
        lambda: send(pair.enforcing, request),
        lambda r: r.error_code == 0 and len(r.resources) == 1,
    )
    (resource,) = answer.resources
    assert [(a.principal, a.operation, a.permission_type) for a in resource.acls] == [
        (ANON, Op.WRITE, 3)
    ]
    revoke_all(pair.admin)


def test_an_invalid_binding_is_refused_with_kafkas_error(pair: Pair) -> None:
    m = req(30, 3)
    bad = build(
        m,
        "AclCreation",
        resource_type=Res.CLUSTER,
        resource_name="not-the-cluster",
        resource_pattern_type=Pat.LITERAL,
        principal=ANON,
        host="*",
        operation=Op.ALTER,
        permission_type=3,
    )
    good = dataclasses.replace(bad, resource_type=Res.TOPIC)
    r = send(pair.admin, build(m, "CreateAclsRequest", creations=(bad, good)))
    assert [x.error_code for x in r.results] == [42, 0]
    assert "kafka-cluster" in r.results[0].error_message
    assert revoke_all(pair.admin) == 1


def _commit_on_b(p: Pair) -> Any:
    return sweep._commit_request(8, _group_coordinated_by(p, 2), {0: 1})


def _txn_produce(p: Pair) -> Any:
    request = sweep.SIMPLE[0](9)[0]
    return dataclasses.replace(request, transactional_id=_uid("acl-produce"))


@dataclass(frozen=True)
class TwoAcls:
    name: str
    request: Callable[[Pair], Any]
    first: tuple[Grant, ...]
    still_denied: int  # with only `first`
    second: tuple[Grant, ...]


TWO_ACLS = [
    TwoAcls(
        "OffsetCommit: the group, then the topic",
        _commit_on_b,
        (g(ANY_GROUP, Op.READ),),
        TOPIC_DENIED,
        (g(ANY_TOPIC, Op.READ),),
    ),
    TwoAcls(
        "AddPartitionsToTxn: the id, then the topic",
        _add_partitions,
        (g(ANY_TXN, Op.WRITE),),
        TOPIC_DENIED,
        (g(ANY_TOPIC, Op.WRITE),),
    ),
    TwoAcls(
        "AddOffsetsToTxn: the id, then the group",
        _add_offsets,
        (g(ANY_TXN, Op.WRITE),),
        GROUP_DENIED,
        (g(ANY_GROUP, Op.READ),),
    ),
    TwoAcls(
        "TxnOffsetCommit: the id, then the group",
        _txn_commit,
        (g(ANY_TXN, Op.WRITE), g(ANY_TOPIC, Op.READ)),
        GROUP_DENIED,
        (g(ANY_GROUP, Op.READ),),
    ),
    TwoAcls(
        "Produce with a transactional id: the topic, then the id",
        _txn_produce,
        (g(ANY_TOPIC, Op.WRITE),),
        TXN_DENIED,
        (g(ANY_TXN, Op.WRITE),),
    ),
    TwoAcls(
        "DeleteTopics: DESCRIBE is not DELETE",
        _sweep(20, 6),
        (g(ANY_TOPIC, Op.DESCRIBE),),
        TOPIC_DENIED,
        (g(ANY_TOPIC, Op.DELETE),),
    ),
]


@pytest.mark.parametrize("case", TWO_ACLS, ids=[c.name for c in TWO_ACLS])
def test_an_api_needing_two_acls_is_refused_with_only_one(pair: Pair, case: TwoAcls) -> None:
    revoke_all(pair.admin)
    request = case.request(pair)
    probe = lambda: codes(send(pair.enforcing, request))  # noqa: E731
    wait_for(f"{case.name}: refused", probe, lambda got: bool(AUTH_ERRORS & set(got)))
    grant(pair.admin, list(case.first))
    wait_for(
        f"{case.name}: one ACL", probe, lambda got: AUTH_ERRORS & set(got) == {case.still_denied}
    )
    grant(pair.admin, list(case.second))
    wait_for(f"{case.name}: both", probe, lambda got: not AUTH_ERRORS & set(got))
    revoke_all(pair.admin)


def test_list_transactions_shows_only_ids_the_principal_may_describe(pair: Pair) -> None:
    revoke_all(pair.admin)
    while True:  # an id whose coordinator is B
        txn_id = _uid("acl-txn")
        ask = build(req(10, 4), "FindCoordinatorRequest", key_type=1, coordinator_keys=(txn_id,))
        (found,) = send(pair.admin, ask).coordinators
        if found.error_code == 0 and found.node_id == 2:
            break
    init = dataclasses.replace(_init_txn(pair), transactional_id=txn_id)
    grant(pair.admin, [(Res.TRANSACTIONAL_ID, txn_id, Op.WRITE)])
    wait_for("initialised on B", lambda: codes(send(pair.enforcing, init)), lambda c: c == [0])
    revoke_all(pair.admin)
    listing = build(
        req(66, 1),
        "ListTransactionsRequest",
        state_filters=(),
        producer_id_filters=(),
        duration_filter=-1,
    )

    def listed() -> list[str]:
        return [t.transactional_id for t in send(pair.enforcing, listing).transaction_states]

    wait_for("nothing listed", listed, lambda got: got == [])
    grant(pair.admin, [(Res.TRANSACTIONAL_ID, txn_id, Op.DESCRIBE)])
    wait_for("the id listed", listed, lambda got: got == [txn_id])
    revoke_all(pair.admin)

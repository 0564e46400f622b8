"""broker/security/audit.py: one JSON line per authentication and per changed resource.

For every mutating API the audit log covers, a kio request and response are built
here (a success and a failure side by side), `request` is called, and the lines read
back; read-only APIs write nothing, and no secret of AlterUserScramCredentials does.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.unit.node_harness import NodeHarness, run_node, serve_config
from tidelog.broker.config_values import ConfigError
from tidelog.broker.security.audit import AUDITED_APIS, AuditLog
from tidelog.protocol.messages import build

ZERO = datetime.timedelta(0)
TIME = "2026-12-03T18:00:00.000+00:00"
WHO = ("User:alice", "/10.0.0.7", "admin-1")


def m(api_key: int, version: int, kind: Literal[EntityType.request, EntityType.response]) -> Any:
    return load_payload_module(api_key, version, kind)


def req(api_key: int, version: int, class_name: str, /, **fields: Any) -> Any:
    return build(m(api_key, version, EntityType.request), class_name, **fields)


def resp(api_key: int, version: int, class_name: str, /, **fields: Any) -> Any:
    return build(m(api_key, version, EntityType.response), class_name, **fields)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def audited(tmp_path: Path, api_key: int, version: int, request: Any, response: Any) -> list[Any]:
    log = AuditLog(tmp_path / "audit.log", clock=lambda: TIME)
    log.request(*WHO, api_key, version, request, response)
    log.close()
    got = lines(tmp_path / "audit.log")
    for line in got:
        assert (line["time"], line["event"]) == (TIME, "request")
        assert (line["principal"], line["client_address"], line["client_id"]) == WHO
        assert line["api_version"] == version
    return got


def short(line: dict[str, Any], *extra: str) -> tuple[Any, ...]:
    keys = ("api", "operation", "resource_type", "resource", "outcome", *extra)
    return (*(line.get(k) for k in keys), line.get("error"))


def test_authentication_lines_say_who_how_and_whether(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", clock=lambda: TIME)
    log.authentication("User:alice", "/10.0.0.7", "c1", "SCRAM-SHA-512", "SASL_SSL", True, "")
    log.authentication("User:bob", "/10.0.0.8", None, "PLAIN", "SASL_PLAINTEXT", False, "bad pw")
    log.close()
    ok, bad = lines(tmp_path / "audit.log")
    assert ok == {
        "time": TIME,
        "event": "authentication",
        "principal": "User:alice",
        "client_address": "/10.0.0.7",
        "client_id": "c1",
        "mechanism": "SCRAM-SHA-512",
        "listener": "SASL_SSL",
        "outcome": "success",
    }
    assert (bad["outcome"], bad["error"], bad["reason"]) == (
        "failure",
        "SASL_AUTHENTICATION_FAILED",
        "bad pw",
    )


def test_the_clock_is_iso_8601_utc(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    log.authentication("User:a", "/h", "c", "PLAIN", "SASL_SSL", True, "")
    log.close()
    (line,) = lines(tmp_path / "audit.log")
    assert datetime.datetime.fromisoformat(line["time"]).utcoffset() == ZERO


def test_create_topics(tmp_path: Path) -> None:
    topics = tuple(
        req(19, 7, "CreatableTopic", name=n, num_partitions=1, replication_factor=1,
            assignments=(), configs=())
        for n in ("a", "b")
    )  # fmt: skip
    results = tuple(
        resp(19, 7, "CreatableTopicResult", name=n, topic_id=None, error_code=c,
             error_message=None, topic_config_error_code=0, num_partitions=1,
             replication_factor=1, configs=())
        for n, c in (("a", 0), ("b", 36))
    )  # fmt: skip
    request = req(19, 7, "CreateTopicsRequest", topics=topics, timeout=ZERO, validate_only=False)
    response = resp(19, 7, "CreateTopicsResponse", throttle_time=ZERO, topics=results)
    assert [short(x) for x in audited(tmp_path, 19, 7, request, response)] == [
        ("CreateTopics", "CREATE", "TOPIC", "a", "success", None),
        ("CreateTopics", "CREATE", "TOPIC", "b", "failure", "TOPIC_ALREADY_EXISTS"),
    ]


def test_delete_topics(tmp_path: Path) -> None:
    request = req(20, 1, "DeleteTopicsRequest", topic_names=("a", "b"), timeout=ZERO)
    results = (
        resp(20, 1, "DeletableTopicResult", name="a", error_code=0),
        resp(20, 1, "DeletableTopicResult", name="b", error_code=3),
    )
    response = resp(20, 1, "DeleteTopicsResponse", throttle_time=ZERO, responses=results)
    assert [short(x) for x in audited(tmp_path, 20, 1, request, response)] == [
        ("DeleteTopics", "DELETE", "TOPIC", "a", "success", None),
        ("DeleteTopics", "DELETE", "TOPIC", "b", "failure", "UNKNOWN_TOPIC_OR_PARTITION"),
    ]


def test_create_partitions(tmp_path: Path) -> None:
    topic = req(37, 3, "CreatePartitionsTopic", name="a", count=4, assignments=None)
    request = req(37, 3, "CreatePartitionsRequest", topics=(topic,), timeout=ZERO,
                  validate_only=False)  # fmt: skip
    result = resp(37, 3, "CreatePartitionsTopicResult", name="a", error_code=37,
                  error_message="x")  # fmt: skip
    response = resp(37, 3, "CreatePartitionsResponse", throttle_time=ZERO, results=(result,))
    assert [short(x) for x in audited(tmp_path, 37, 3, request, response)] == [
        ("CreatePartitions", "ALTER", "TOPIC", "a", "failure", "INVALID_PARTITIONS"),
    ]


@pytest.mark.parametrize(
    ("api_key", "version", "api"), [(33, 2, "AlterConfigs"), (44, 1, "IncrementalAlterConfigs")]
)
def test_alter_configs(tmp_path: Path, api_key: int, version: int, api: str) -> None:
    op = {"config_operation": 1} if api_key == 44 else {}  # DELETE
    entry = req(api_key, version, "AlterableConfig", name="log.retention.ms", value=None, **op)
    resources = (
        req(api_key, version, "AlterConfigsResource", resource_type=2, resource_name="t",
            configs=()),
        req(api_key, version, "AlterConfigsResource", resource_type=4, resource_name="1",
            configs=()),
        req(api_key, version, "AlterConfigsResource", resource_type=4, resource_name="",
            configs=(entry,)),
    )  # fmt: skip
    name = "AlterConfigsRequest" if api_key == 33 else "IncrementalAlterConfigsRequest"
    request = req(api_key, version, name, resources=resources, validate_only=False)
    answers = (
        resp(api_key, version, "AlterConfigsResourceResponse", error_code=0, error_message=None,
             resource_type=2, resource_name="t"),
        resp(api_key, version, "AlterConfigsResourceResponse", error_code=40,
             error_message="no", resource_type=4, resource_name="1"),
        resp(api_key, version, "AlterConfigsResourceResponse", error_code=0,
             error_message=None, resource_type=4, resource_name=""),
    )  # fmt: skip
    name = "AlterConfigsResponse" if api_key == 33 else "IncrementalAlterConfigsResponse"
    response = resp(api_key, version, name, throttle_time=ZERO, responses=answers)
    got = audited(tmp_path, api_key, version, request, response)
    assert [short(x, "changes") for x in got] == [
        (api, "ALTER_CONFIGS", "TOPIC", "t", "success", [], None),
        (api, "ALTER_CONFIGS", "BROKER", "1", "failure", [], "INVALID_CONFIG"),
        # The cluster default entity: what was asked, by name (no values).
        (api, "ALTER_CONFIGS", "BROKER", "", "success",
         ["DELETE log.retention.ms" if api_key == 44 else "SET log.retention.ms"], None),
    ]  # fmt: skip


def test_delete_records(tmp_path: Path) -> None:
    parts = tuple(req(21, 2, "DeleteRecordsPartition", partition_index=i, offset=5) for i in (0, 1))
    topic = req(21, 2, "DeleteRecordsTopic", name="t", partitions=parts)
    request = req(21, 2, "DeleteRecordsRequest", topics=(topic,), timeout=ZERO)
    results = tuple(
        resp(21, 2, "DeleteRecordsPartitionResult", partition_index=i, low_watermark=5,
             error_code=c)
        for i, c in ((0, 0), (1, 6))
    )  # fmt: skip
    answer = resp(21, 2, "DeleteRecordsTopicResult", name="t", partitions=results)
    response = resp(21, 2, "DeleteRecordsResponse", throttle_time=ZERO, topics=(answer,))
    assert [short(x, "partition") for x in audited(tmp_path, 21, 2, request, response)] == [
        ("DeleteRecords", "DELETE", "TOPIC", "t", "success", 0, None),
        ("DeleteRecords", "DELETE", "TOPIC", "t", "failure", 1, "NOT_LEADER_OR_FOLLOWER"),
    ]


def test_delete_groups(tmp_path: Path) -> None:
    request = req(42, 2, "DeleteGroupsRequest", groups_names=("g1", "g2"))
    results = (
        resp(42, 2, "DeletableGroupResult", group_id="g1", error_code=0),
        resp(42, 2, "DeletableGroupResult", group_id="g2", error_code=68),
    )
    response = resp(42, 2, "DeleteGroupsResponse", throttle_time=ZERO, results=results)
    assert [short(x) for x in audited(tmp_path, 42, 2, request, response)] == [
        ("DeleteGroups", "DELETE", "GROUP", "g1", "success", None),
        ("DeleteGroups", "DELETE", "GROUP", "g2", "failure", "NON_EMPTY_GROUP"),
    ]


def test_offset_delete(tmp_path: Path) -> None:
    part = req(47, 0, "OffsetDeleteRequestPartition", partition_index=0)
    topic = req(47, 0, "OffsetDeleteRequestTopic", name="t", partitions=(part,))
    request = req(47, 0, "OffsetDeleteRequest", group_id="g", topics=(topic,))
    answer = resp(47, 0, "OffsetDeleteResponsePartition", partition_index=0, error_code=86)
    rtopic = resp(47, 0, "OffsetDeleteResponseTopic", name="t", partitions=(answer,))
    response = resp(47, 0, "OffsetDeleteResponse", error_code=0, throttle_time=ZERO,
                    topics=(rtopic,))  # fmt: skip
    assert [
        short(x, "topic", "partition") for x in audited(tmp_path, 47, 0, request, response)
    ] == [
        ("OffsetDelete", "DELETE", "GROUP", "g", "failure", "t", 0, "GROUP_SUBSCRIBED_TO_TOPIC"),
    ]


def _commit_parts(api_key: int, version: int, prefix: str) -> tuple[Any, Any]:
    parts = tuple(
        req(api_key, version, f"{prefix}RequestPartition", partition_index=i, committed_offset=9,
            committed_leader_epoch=-1, committed_metadata=None)
        for i in (0, 1)
    )  # fmt: skip
    topic = req(api_key, version, f"{prefix}RequestTopic", name="t", partitions=parts)
    answers = tuple(
        resp(api_key, version, f"{prefix}ResponsePartition", partition_index=i, error_code=c)
        for i, c in ((0, 0), (1, 22))
    )
    rtopic = resp(api_key, version, f"{prefix}ResponseTopic", name="t", partitions=answers)
    return topic, rtopic


def test_offset_commit(tmp_path: Path) -> None:
    topic, rtopic = _commit_parts(8, 8, "OffsetCommit")
    request = req(8, 8, "OffsetCommitRequest", group_id="g", generation_id_or_member_epoch=1,
                  member_id="m", group_instance_id=None, topics=(topic,))  # fmt: skip
    response = resp(8, 8, "OffsetCommitResponse", throttle_time=ZERO, topics=(rtopic,))
    assert [short(x, "topic", "partition") for x in audited(tmp_path, 8, 8, request, response)] == [
        ("OffsetCommit", "READ", "GROUP", "g", "success", "t", 0, None),
        ("OffsetCommit", "READ", "GROUP", "g", "failure", "t", 1, "ILLEGAL_GENERATION"),
    ]


def test_txn_offset_commit(tmp_path: Path) -> None:
    topic, rtopic = _commit_parts(28, 3, "TxnOffsetCommit")
    request = req(28, 3, "TxnOffsetCommitRequest", transactional_id="tx", group_id="g",
                  producer_id=7, producer_epoch=0, generation_id=1, member_id="m",
                  group_instance_id=None, topics=(topic,))  # fmt: skip
    response = resp(28, 3, "TxnOffsetCommitResponse", throttle_time=ZERO, topics=(rtopic,))
    got = audited(tmp_path, 28, 3, request, response)
    assert [short(x, "topic", "partition") for x in got] == [
        ("TxnOffsetCommit", "READ", "GROUP", "g", "success", "t", 0, None),
        ("TxnOffsetCommit", "READ", "GROUP", "g", "failure", "t", 1, "ILLEGAL_GENERATION"),
    ]
    assert {x["transactional_id"] for x in got} == {"tx"}


def test_create_acls(tmp_path: Path) -> None:
    creations = tuple(
        req(30, 3, "AclCreation", resource_type=2, resource_name=n, resource_pattern_type=3,
            principal="User:bob", host="*", operation=3, permission_type=3)
        for n in ("orders", "pay")
    )  # fmt: skip
    request = req(30, 3, "CreateAclsRequest", creations=creations)
    results = (
        resp(30, 3, "AclCreationResult", error_code=0, error_message=None),
        resp(30, 3, "AclCreationResult", error_code=31, error_message=None),
    )
    response = resp(30, 3, "CreateAclsResponse", throttle_time=ZERO, results=results)
    got = audited(tmp_path, 30, 3, request, response)
    assert [short(x, "acl_principal") for x in got] == [
        ("CreateAcls", "ALTER", "TOPIC", "orders", "success", "User:bob", None),
        ("CreateAcls", "ALTER", "TOPIC", "pay", "failure", "User:bob",
         "CLUSTER_AUTHORIZATION_FAILED"),
    ]  # fmt: skip


def test_delete_acls(tmp_path: Path) -> None:
    f = req(31, 3, "DeleteAclsFilter", resource_type_filter=3, resource_name_filter="g",
            pattern_type_filter=3, principal_filter=None, host_filter=None, operation=1,
            permission_type=1)  # fmt: skip
    request = req(31, 3, "DeleteAclsRequest", filters=(f,))
    result = resp(31, 3, "DeleteAclsFilterResult", error_code=0, error_message=None,
                  matching_acls=())  # fmt: skip
    response = resp(31, 3, "DeleteAclsResponse", throttle_time=ZERO, filter_results=(result,))
    (line,) = audited(tmp_path, 31, 3, request, response)
    assert short(line, "matching_acls") == ("DeleteAcls", "ALTER", "GROUP", "g", "success", 0, None)


def test_alter_user_scram_credentials_names_users_never_secrets(tmp_path: Path) -> None:
    secret_salt, secret_salted = b"SALT-SALT-SALT", b"SALTED-PASSWORD-BYTES"
    up = req(51, 0, "ScramCredentialUpsertion", name="alice", mechanism=2, iterations=4096,
             salt=secret_salt, salted_password=secret_salted)  # fmt: skip
    down = req(51, 0, "ScramCredentialDeletion", name="bob", mechanism=1)
    request = req(51, 0, "AlterUserScramCredentialsRequest", deletions=(down,), upsertions=(up,))
    results = (
        resp(51, 0, "AlterUserScramCredentialsResult", user="bob", error_code=91,
             error_message="x"),
        resp(51, 0, "AlterUserScramCredentialsResult", user="alice", error_code=0,
             error_message=None),
    )  # fmt: skip
    response = resp(51, 0, "AlterUserScramCredentialsResponse", throttle_time=ZERO,
                    results=results)  # fmt: skip
    got = audited(tmp_path, 51, 0, request, response)
    assert [short(x, "changes") for x in got] == [
        ("AlterUserScramCredentials", "ALTER", "USER", "bob", "failure",
         ["delete SCRAM-SHA-256"], "RESOURCE_NOT_FOUND"),
        ("AlterUserScramCredentials", "ALTER", "USER", "alice", "success",
         ["upsert SCRAM-SHA-512"], None),
    ]  # fmt: skip
    text = (tmp_path / "audit.log").read_bytes()
    for secret in (secret_salt, secret_salted):
        assert secret not in text
        assert secret.hex().encode() not in text
        assert __import__("base64").b64encode(secret) not in text


def test_read_only_apis_write_nothing(tmp_path: Path) -> None:
    request = req(42, 2, "DeleteGroupsRequest", groups_names=("g",))
    log = AuditLog(tmp_path / "audit.log", clock=lambda: TIME)
    for api_key in (0, 1, 3, 9, 32, 50):
        assert api_key not in AUDITED_APIS
        log.request(*WHO, api_key, 0, request, object())
    log.close()
    assert (tmp_path / "audit.log").read_text() == ""


def test_every_line_is_appended_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text('{"earlier": true}\n')
    log = AuditLog(path, clock=lambda: TIME)
    log.authentication("User:a", "/h", "c", "PLAIN", "SASL_SSL", True, "")
    assert path.read_text().endswith("\n")  # flushed before close
    assert len(lines(path)) == 2
    log.close()


def test_a_path_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--audit-log"):
        AuditLog(tmp_path / "missing-dir" / "audit.log")


def test_the_broker_opens_its_audit_log_and_closes_it_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    security = dataclasses.replace(serve_config(tmp_path).security, audit_log=path)
    seen: list[AuditLog | None] = []

    async def body(h: NodeHarness) -> None:
        seen.append(h.node.security.audit)

    run_node(tmp_path, body, security=security)
    (log,) = seen
    assert isinstance(log, AuditLog) and log.path == path and path.exists()
    log.authentication("User:a", "/h", "c", "PLAIN", "SASL_SSL", True, "")  # closed: no-op
    assert path.read_text() == ""


def test_without_the_option_there_is_no_audit_log(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        assert h.node.security.audit is None

    run_node(tmp_path, body)

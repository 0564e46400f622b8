"""Request builders of the ACL APIs for the version sweep
(tests/integration/test_api_versions_sweep.py) and the fuzz corpus: each version
creates, lists or deletes its own ACL (a topic name that names the version), so the
versions do not see one another's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tidelog.protocol.messages import build

Built = tuple[Any, Callable[[Any], None]]
TOPIC, LITERAL, READ, ALLOW, ANY = 2, 3, 3, 3, 1
PRINCIPAL = "User:sweep"


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def creation(version: int, topic: str) -> Any:
    m = req(30, version)
    one = build(
        m,
        "AclCreation",
        resource_type=TOPIC,
        resource_name=topic,
        resource_pattern_type=LITERAL,
        principal=PRINCIPAL,
        host="*",
        operation=READ,
        permission_type=ALLOW,
    )
    return build(m, "CreateAclsRequest", creations=(one,))


def _created(broker: BrokerProcess, topic: str) -> None:
    with RawClient(broker.bootstrap) as c:
        r = c.request(creation(1, topic))
    assert [x.error_code for x in r.results] == [0], r


def _filter(m: Any, cls: str, topic: str) -> Any:
    return build(
        m,
        cls,
        resource_type_filter=TOPIC,
        resource_name_filter=topic,
        pattern_type_filter=LITERAL,
        principal_filter=PRINCIPAL,
        host_filter=None,
        operation=ANY,
        permission_type=ANY,
    )


def _create_acls(v: int, broker: BrokerProcess) -> Built:
    def check(r: Any) -> None:
        assert [x.error_code for x in r.results] == [0], r

    return creation(v, f"acl-create-v{v}"), check


def _describe_acls(v: int, broker: BrokerProcess) -> Built:
    topic = f"acl-describe-v{v}"
    _created(broker, topic)
    request = _filter(req(29, v), "DescribeAclsRequest", topic)

    def check(r: Any) -> None:
        assert r.error_code == 0, r
        (resource,) = r.resources
        assert (resource.resource_name, resource.pattern_type) == (topic, LITERAL)
        assert [(a.principal, a.operation) for a in resource.acls] == [(PRINCIPAL, READ)]

    return request, check


def _delete_acls(v: int, broker: BrokerProcess) -> Built:
    topic = f"acl-delete-v{v}"
    _created(broker, topic)
    m = req(31, v)
    request = build(m, "DeleteAclsRequest", filters=(_filter(m, "DeleteAclsFilter", topic),))

    def check(r: Any) -> None:
        (result,) = r.filter_results
        assert result.error_code == 0, r
        assert [a.resource_name for a in result.matching_acls] == [topic]

    return request, check


WITH_BROKER: dict[int, Callable[[int, BrokerProcess], Built]] = {
    29: _describe_acls,
    30: _create_acls,
    31: _delete_acls,
}
RANGES = {29: (1, 3), 30: (1, 3), 31: (1, 3)}

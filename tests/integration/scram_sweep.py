"""Request builders of the SCRAM credential APIs for the version sweep
(tests/integration/test_api_versions_sweep.py): AlterUserScramCredentials upserts a
user of its own, DescribeUserScramCredentials describes one it upserted first."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tidelog.protocol.messages import build

Built = tuple[Any, Callable[[Any], None]]
SALT = b"sweep-salt-16byt"
SHA512 = 2


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def upsert_request(version: int, user: str) -> Any:
    m = req(51, version)
    salted = hashlib.pbkdf2_hmac("sha512", b"sweep-password", SALT, 4096)
    upsertion = build(
        m,
        "ScramCredentialUpsertion",
        name=user,
        mechanism=SHA512,
        iterations=4096,
        salt=SALT,
        salted_password=salted,
    )
    return build(m, "AlterUserScramCredentialsRequest", deletions=(), upsertions=(upsertion,))


def _alter(v: int, broker: BrokerProcess) -> Built:
    user = f"sweep-alter-v{v}"

    def check(r: Any) -> None:
        assert [(x.user, x.error_code) for x in r.results] == [(user, 0)]

    return upsert_request(v, user), check


def _describe(v: int, broker: BrokerProcess) -> Built:
    user = f"sweep-describe-v{v}"
    with RawClient(broker.bootstrap) as c:
        assert c.request(upsert_request(0, user)).results[0].error_code == 0
    m = req(50, v)
    request = build(
        m, "DescribeUserScramCredentialsRequest", users=(build(m, "UserName", name=user),)
    )

    def check(r: Any) -> None:
        (result,) = r.results
        infos = [(i.mechanism, i.iterations) for i in result.credential_infos]
        assert (result.user, result.error_code, infos) == (user, 0, [(SHA512, 4096)])

    return request, check


WITH_BROKER: dict[int, Callable[[int, BrokerProcess], Built]] = {50: _describe, 51: _alter}
RANGES = {50: (0, 0), 51: (0, 0)}

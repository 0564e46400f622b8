"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51) on a real node.

Credentials are upserted the way clients send them (salt and SaltedPassword), and the
stored keys are checked against scramp's own for the same password and salt; the
document in the bucket holds neither the password nor the SaltedPassword.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, request, run_node, serve_config
from tidelog.broker.security.credentials import make_credential
from tidelog.broker.security.users import user_credentials
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.security_doc import SECURITY_KEY

SALT = b"0123456789abcdef"
SHA256, SHA512 = 1, 2


def salted(password: str, mechanism: int, iterations: int = 4096, salt: bytes = SALT) -> bytes:
    name = "sha256" if mechanism == SHA256 else "sha512"
    return hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations)


def upsert(name: str, mechanism: int, password: str = "pw", iterations: int = 4096) -> Any:
    return request(
        51,
        0,
        "ScramCredentialUpsertion",
        name=name,
        mechanism=mechanism,
        iterations=iterations,
        salt=SALT,
        salted_password=salted(password, mechanism, max(iterations, 1)),
    )


def delete(name: str, mechanism: int) -> Any:
    return request(51, 0, "ScramCredentialDeletion", name=name, mechanism=mechanism)


def alter(h: NodeHarness, upsertions: tuple[Any, ...] = (), deletions: tuple[Any, ...] = ()) -> Any:
    return h.call(
        request(
            51, 0, "AlterUserScramCredentialsRequest", upsertions=upsertions, deletions=deletions
        )
    )


def describe(h: NodeHarness, *names: str, all_users: bool = False) -> Any:
    users = None if all_users else tuple(request(50, 0, "UserName", name=n) for n in names)
    return h.call(request(50, 0, "DescribeUserScramCredentialsRequest", users=users))


def codes(response: Any) -> dict[str, ErrorCode]:
    return {r.user: ErrorCode(r.error_code) for r in response.results}


def test_upserted_credentials_are_scramps_keys_and_never_the_password(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        answer = await alter(
            h, (upsert("alice", SHA512, "s3cret-pw", 8192), upsert("alice", SHA256))
        )
        assert codes(answer) == {"alice": ErrorCode.none}
        creds = user_credentials(h.node.security.doc)["alice"]
        assert creds["SCRAM-SHA-512"] == make_credential("s3cret-pw", "SCRAM-SHA-512", 8192, SALT)
        assert creds["SCRAM-SHA-256"] == make_credential("pw", "SCRAM-SHA-256", 4096, SALT)
        raw = h.objects.objects[SECURITY_KEY]
        assert b"s3cret-pw" not in raw
        assert salted("s3cret-pw", SHA512, 8192).hex().encode() not in raw
        described = await describe(h, "alice")
        (result,) = described.results
        infos = {(i.mechanism, i.iterations) for i in result.credential_infos}
        assert (result.error_code, infos) == (0, {(SHA256, 4096), (SHA512, 8192)})

    run_node(tmp_path, body)


def test_one_request_is_one_write_of_the_document(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        before = h.node.security.doc["version"]
        await alter(h, (upsert("a", SHA256), upsert("b", SHA512), upsert("c", SHA256)))
        assert h.node.security.doc["version"] == before + 1
        assert sorted(user_credentials(h.node.security.doc)) == ["a", "b", "c"]

    run_node(tmp_path, body)


def test_describe_lists_everyone_and_names_unknown_and_twice_named_users(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await alter(h, (upsert("bob", SHA256), upsert("alice", SHA512)))
        everyone = await describe(h, all_users=True)
        assert (everyone.error_code, [r.user for r in everyone.results]) == (0, ["alice", "bob"])
        assert [r.user for r in (await describe(h)).results] == ["alice", "bob"]  # empty list
        answer = await describe(h, "bob", "nobody", "alice", "alice")
        assert codes(answer) == {
            "bob": ErrorCode.none,
            "nobody": ErrorCode.resource_not_found,
            "alice": ErrorCode.duplicate_resource,
        }

    run_node(tmp_path, body)


def test_alter_errors_fail_only_their_user(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        answer = await alter(
            h,
            (
                upsert("", SHA256),
                upsert("few", SHA256, iterations=4095),
                upsert("many", SHA512, iterations=16385),
                upsert("mech", 3),
                upsert("twice", SHA256),
                upsert("twice", SHA256),
                upsert("both", SHA512),
                upsert("good", SHA256),
                upsert("mixed", SHA256),
                upsert("mixed", SHA512, iterations=100),
            ),
            (delete("both", SHA512), delete("ghost", SHA256)),
        )
        assert codes(answer) == {
            "": ErrorCode.unacceptable_credential,
            "few": ErrorCode.unacceptable_credential,
            "many": ErrorCode.unacceptable_credential,
            "mech": ErrorCode.unsupported_sasl_mechanism,
            "twice": ErrorCode.duplicate_resource,
            "both": ErrorCode.duplicate_resource,
            "good": ErrorCode.none,
            "mixed": ErrorCode.unacceptable_credential,
            "ghost": ErrorCode.resource_not_found,
        }
        assert list(user_credentials(h.node.security.doc)) == ["good"]

    run_node(tmp_path, body)


def test_delete_removes_a_credential_then_the_user(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await alter(h, (upsert("carol", SHA256), upsert("carol", SHA512)))
        assert codes(await alter(h, deletions=(delete("carol", SHA256),))) == {
            "carol": ErrorCode.none
        }
        assert list(user_credentials(h.node.security.doc)["carol"]) == ["SCRAM-SHA-512"]
        version = h.node.security.doc["version"]
        again = await alter(h, deletions=(delete("carol", SHA256),))
        assert codes(again) == {"carol": ErrorCode.resource_not_found}
        assert h.node.security.doc["version"] == version  # nothing to write: nothing written
        await alter(h, deletions=(delete("carol", SHA512),))
        assert "carol" not in h.node.security.doc["users"]
        assert codes(await describe(h, "carol")) == {"carol": ErrorCode.resource_not_found}

    run_node(tmp_path, body)


def test_without_cluster_permission_nothing_is_described_or_changed(tmp_path: Path) -> None:
    # `--authorizer acl` with no ACLs at all: nobody (bar super users) may do anything.
    security = dataclasses.replace(serve_config(tmp_path).security, authorizer="acl")

    async def body(h: NodeHarness) -> None:
        answer = await alter(h, (upsert("eve", SHA256),), (delete("mallory", SHA512),))
        assert codes(answer) == {
            "eve": ErrorCode.cluster_authorization_failed,
            "mallory": ErrorCode.cluster_authorization_failed,
        }
        assert h.node.security.doc["users"] == {}
        described = await describe(h, all_users=True)
        assert (described.error_code, described.results) == (
            ErrorCode.cluster_authorization_failed,
            (),
        )

    run_node(tmp_path, body, security=security)

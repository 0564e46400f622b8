"""SCRAM users end to end: confluent-kafka's admin client and `tidelog users` on one bucket.

AlterUserScramCredentials upserts and deletes through a real broker, the credential is
checked in the bucket's security document (salted keys, no password), `tidelog users
add` (a subprocess, password on stdin) adds a user offline, `list` shows it, and a
second broker on the same bucket describes both users.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from tests.integration.broker_process import BrokerProcess
from tidelog.broker.security.credentials import make_credential
from tidelog.broker.security.users import user_credentials
from tidelog.storage.security_doc import SECURITY_KEY, parse_document

pytestmark = pytest.mark.integration

ALICE_PASSWORD = b"alice-password-Zq9"
CAROL_PASSWORD = "carol-password-Kx4"
WAIT_S = 60.0


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def described(client: AdminClient, *users: str) -> dict[str, set[tuple[str, int]]]:
    """{user: {(mechanism, iterations)}} of the users that exist (of all, if none named)."""
    if users:
        futures = client.describe_user_scram_credentials(list(users))
        out: dict[str, Any] = {}
        for user, future in futures.items():
            try:
                out[user] = future.result(30)
            except KafkaException:
                continue
    else:
        out = client.describe_user_scram_credentials().result(30)
    return {
        user: {(str(i.mechanism.name), i.iterations) for i in d.scram_credential_infos}
        for user, d in out.items()
    }


def tidelog_users(bucket: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "users", *argv,
         "--object-store", f"file://{bucket}"],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_users_through_the_admin_client_and_offline_on_two_brokers(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    bucket = tmp_path / "bucket"
    args = ["--object-store", f"file://{bucket}"]
    first = BrokerProcess(tmp_path / "node1", node_id=1, args=args)
    brokers.append(first)
    first.start()
    client = admin(first)

    upserts = [
        UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), ALICE_PASSWORD
        ),
        UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), ALICE_PASSWORD
        ),
        UserScramCredentialUpsertion(
            "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"bob-password"
        ),
    ]
    for future in client.alter_user_scram_credentials(upserts).values():
        future.result(30)
    assert described(client) == {
        "alice": {("SCRAM_SHA_256", 4096), ("SCRAM_SHA_512", 8192)},
        "bob": {("SCRAM_SHA_256", 4096)},
    }

    # In the bucket: salted keys that a SCRAM server would accept for the password.
    raw = (bucket / SECURITY_KEY).read_bytes()
    assert ALICE_PASSWORD not in raw and b"bob-password" not in raw
    alice = user_credentials(parse_document(raw))["alice"]["SCRAM-SHA-512"]
    assert alice.iterations == 8192
    assert alice == make_credential(ALICE_PASSWORD.decode(), "SCRAM-SHA-512", 8192, alice.salt)

    deletion = UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)
    client.alter_user_scram_credentials([deletion])["bob"].result(30)
    assert set(described(client)) == {"alice"}
    with pytest.raises(KafkaException, match=r"RESOURCE_NOT_FOUND|does not exist"):
        client.alter_user_scram_credentials([deletion])["bob"].result(30)

    # Offline, with the broker up: the password on stdin, never echoed.
    added = tidelog_users(bucket, "add", "carol", stdin=CAROL_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert CAROL_PASSWORD not in added.stdout + added.stderr
    listed = tidelog_users(bucket, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {u["name"]: u["mechanisms"] for u in json.loads(listed.stdout)} == {
        "alice": {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 8192},
        "carol": {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 4096},
    }
    assert CAROL_PASSWORD.encode() not in (bucket / SECURITY_KEY).read_bytes()

    # A second broker on the bucket sees both; the first sees the offline user too.
    second = BrokerProcess(tmp_path / "node2", node_id=2, args=args)
    brokers.append(second)
    second.start()
    other = admin(second)
    carol = {("SCRAM_SHA_256", 4096), ("SCRAM_SHA_512", 4096)}
    wait_until(
        "the second broker describes carol", lambda: described(other, "carol") == {"carol": carol}
    )
    assert set(described(other)) == {"alice", "carol"}
    wait_until(
        "the first broker describes carol", lambda: described(client, "carol") == {"carol": carol}
    )

    deleted = tidelog_users(bucket, "delete", "carol")
    assert deleted.returncode == 0, deleted.stderr
    wait_until("carol is gone on the second broker", lambda: described(other, "carol") == {})

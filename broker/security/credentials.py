"""Salted SCRAM credentials, as the security document holds them.

Owns: the `users` part of storage/security_doc.py's document:

    "users": {"alice": {"SCRAM-SHA-512": {"salt": B64, "stored_key": B64,
                                           "server_key": B64, "iterations": 4096}}}

RFC 5802's StoredKey and ServerKey, never the password: a stolen document does not
let anyone log in (it allows an offline guessing attack, as Kafka's does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import scramp

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# Kafka's mechanism numbers (DescribeUserScramCredentials, AlterUserScramCredentials).
MECHANISM_IDS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
DEFAULT_ITERATIONS = 4096
MIN_ITERATIONS = 4096  # Kafka's lower bound
MAX_ITERATIONS = 16384  # Kafka's upper bound


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": base64.b64encode(self.salt).decode(),
            "stored_key": base64.b64encode(self.stored_key).decode(),
            "server_key": base64.b64encode(self.server_key).decode(),
            "iterations": self.iterations,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ScramCredential:
        return cls(
            base64.b64decode(raw["salt"]),
            base64.b64decode(raw["stored_key"]),
            base64.b64decode(raw["server_key"]),
            int(raw["iterations"]),
        )


def credential(doc: Mapping[str, Any], user: str, mechanism: str) -> ScramCredential | None:
    """The user's credential for `mechanism` in the document, or None."""
    raw = doc.get("users", {}).get(user, {}).get(mechanism)
    if not isinstance(raw, Mapping):
        return None
    try:
        return ScramCredential.from_json(raw)
    except (KeyError, TypeError, ValueError):
        return None


def make_credential(
    password: str, mechanism: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    """A fresh salted credential for `password` (scramp computes RFC 5802's keys)."""
    salt_out, stored_key, server_key, count = scramp.ScramMechanism(mechanism).make_auth_info(
        password, iteration_count=iterations, salt=salt
    )
    return ScramCredential(salt_out, stored_key, server_key, count)


def credential_from_salted_password(
    mechanism: str, salted_password: bytes, salt: bytes, iterations: int
) -> ScramCredential:
    """The credential of a SaltedPassword a client computed (AlterUserScramCredentials
    sends that, never the password): RFC 5802's ClientKey = HMAC(SaltedPassword,
    "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key")."""
    name = _HASHES[mechanism]
    client_key = hmac.digest(salted_password, b"Client Key", name)
    stored_key = hashlib.new(name, client_key).digest()
    server_key = hmac.digest(salted_password, b"Server Key", name)
    return ScramCredential(salt, stored_key, server_key, iterations)

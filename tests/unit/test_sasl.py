"""The SASL session: PLAIN and SCRAM against salted credentials, and the order Kafka
imposes (handshake, tokens, then everything else)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import scramp
from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog.broker.security.credentials import ScramCredential, make_credential
from tidelog.broker.security.sasl import FAILED_MESSAGE, SaslSession, SaslState
from tidelog.protocol.errors import ErrorCode

ALL = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
USERS = {("alice", m): make_credential("alice-pw", m) for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")}


def lookup(user: str, mechanism: str) -> ScramCredential | None:
    return USERS.get((user, mechanism))


def session(mechanism: str, version: int = 1) -> SaslSession:
    s = SaslSession(ALL, lookup)
    assert s.handshake(mechanism, version) == ErrorCode.none
    return s


def test_only_the_exchange_is_served_before_authentication() -> None:
    s = SaslSession(ALL, lookup)
    assert [k for k in (0, 1, 3, 17, 18, 36) if s.allows(k)] == [17, 18, 36]


def test_handshake_refuses_an_unknown_mechanism_and_a_second_handshake() -> None:
    s = SaslSession(("SCRAM-SHA-512",), lookup)
    assert s.handshake("PLAIN", 1) == ErrorCode.unsupported_sasl_mechanism
    assert s.handshake("SCRAM-SHA-512", 1) == ErrorCode.none
    assert s.handshake("SCRAM-SHA-512", 1) == ErrorCode.illegal_sasl_state


def test_a_v0_handshake_means_raw_tokens() -> None:
    assert session("PLAIN", 0).raw_tokens and not session("PLAIN", 1).raw_tokens


def test_plain_with_the_right_password_authenticates() -> None:
    s = session("PLAIN")
    assert s.authenticate(b"\0alice\0alice-pw") == (b"", None)
    assert s.authenticated and s.user == "alice" and all(s.allows(k) for k in (0, 1, 3))


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (b"\0alice\0wrong", "wrong password"),
        (b"\0mallory\0alice-pw", "no credential for this user"),
        (b"bob\0alice\0alice-pw", FAILED_MESSAGE),  # authorization id of someone else
        (b"alice-pw", FAILED_MESSAGE),  # not three fields
        (b"\0\xff\xfe\0x", ""),  # not UTF-8
    ],
)
def test_plain_failures_all_say_the_same(token: bytes, why: str) -> None:
    s = session("PLAIN")
    assert s.authenticate(token) == (b"", FAILED_MESSAGE)
    assert s.state is SaslState.FAILED and not s.allows(3)
    assert why in s.failure
    assert s.authenticate(b"\0alice\0alice-pw")[1] == "SaslAuthenticate is not expected now"


def scram_exchange(mechanism: str, user: str, password: str) -> tuple[SaslSession, str | None]:
    s = session(mechanism)
    client = scramp.ScramClient([mechanism], user, password)
    first, failed = s.authenticate(client.get_client_first().encode())
    if failed is not None:
        return s, failed
    client.set_server_first(first.decode())
    final, failed = s.authenticate(client.get_client_final().encode())
    if failed is None:
        client.set_server_final(final.decode())  # the server proved it knows the key too
    return s, failed


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_with_the_right_password_authenticates(mechanism: str) -> None:
    s, failed = scram_exchange(mechanism, "alice", "alice-pw")
    assert failed is None and s.authenticated and s.user == "alice"


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "alice-pw")])
def test_scram_failures_say_the_same(user: str, password: str) -> None:
    s, failed = scram_exchange("SCRAM-SHA-512", user, password)
    assert failed == FAILED_MESSAGE and s.state is SaslState.FAILED


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha512).digest()


def librdkafka_final(first_bare: str, server_first: str, nonce: str, password: str) -> str:
    """client-final as librdkafka < 2.6.1 builds it, signed over what it sends."""
    fields = dict(p.split("=", 1) for p in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = _hmac(salted, b"Client Key")
    without_proof = f"c=biws,r={nonce}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = _hmac(hashlib.sha512(client_key).digest(), auth)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}"


@pytest.mark.parametrize(("doubled", "ok"), [(True, True), (False, False)])
def test_librdkafkas_doubled_client_nonce_is_accepted_in_exactly_that_form(
    doubled: bool, ok: bool
) -> None:
    s = session("SCRAM-SHA-512")
    client_nonce = "rdkafka-nonce-0123456789"
    first_bare = f"n=alice,r={client_nonce}"
    server_first = s.authenticate(f"n,,{first_bare}".encode())[0].decode()
    nonce = server_first.split(",")[0][2:]
    assert nonce.startswith(client_nonce) and len(nonce) > len(client_nonce)
    # librdkafka's form, or the client nonce alone twice (the server nonce missing).
    sent = client_nonce + nonce if doubled else client_nonce + client_nonce
    final = librdkafka_final(first_bare, server_first, sent, "alice-pw")
    _, failed = s.authenticate(final.encode())
    assert (failed is None) is ok


@given(
    mechanism=st.sampled_from(ALL),
    tokens=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_any_tokens_end_in_an_answer_never_an_exception(
    mechanism: str, tokens: list[bytes]
) -> None:
    s = session(mechanism)
    for token in tokens:
        answer, failed = s.authenticate(token)
        assert isinstance(answer, bytes)
        if failed is not None:
            assert failed in (FAILED_MESSAGE, "SaslAuthenticate is not expected now")
            assert not s.authenticated

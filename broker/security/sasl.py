"""One connection's SASL authentication: handshake, exchange, principal.

Owns: the server side of PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, done by
scramp), and the order Kafka imposes on a SASL listener: SaslHandshake names a
mechanism, SaslAuthenticate carries its tokens (or, after a v0 handshake, raw
length-prefixed tokens), and nothing but ApiVersions is served before it succeeds.

Guarantees: a wrong password, an unknown user and a malformed token all end the same
way, `AuthenticationFailed` with one message (a client cannot tell which users
exist from the answer); PLAIN is checked against the same salted SCRAM credentials
(the password is hashed with the stored salt and compared in constant time), so no
password is ever stored. Pure: no I/O; `lookup` reads the broker's security document.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from enum import Enum

import scramp

from tidelog.broker.security.credentials import (
    SCRAM_MECHANISMS,
    ScramCredential,
    make_credential,
)
from tidelog.protocol.errors import ErrorCode

# Kafka's default sasl.server.max.receive.size: frames before authentication succeeds
# are at most this big, whatever --max-request-bytes allows afterwards.
MAX_UNAUTHENTICATED_BYTES = 512 * 1024
FAILED_MESSAGE = "Authentication failed: invalid credentials"
SASL_APIS = frozenset({18, 17, 36})  # ApiVersions, SaslHandshake, SaslAuthenticate

CredentialLookup = Callable[[str, str], ScramCredential | None]


class AuthenticationFailed(Exception):
    """The exchange failed; the message is what the client is told."""


class SaslState(Enum):
    HANDSHAKE = "handshake"  # waiting for SaslHandshake
    AUTHENTICATE = "authenticate"  # a mechanism was chosen; tokens next
    DONE = "done"
    FAILED = "failed"


class SaslSession:
    def __init__(self, mechanisms: tuple[str, ...], lookup: CredentialLookup) -> None:
        self.mechanisms = mechanisms
        self._lookup = lookup
        self.state = SaslState.HANDSHAKE
        self.mechanism = ""
        self.raw_tokens = False  # after a v0 handshake the tokens come without a header
        self.user = ""  # who is asking (known once the first token is read)
        self._scram: scramp.ScramServer | None = None
        self._scram_step = 0
        self._server_nonce = ""
        self._lock = threading.Lock()
        self.failure = ""  # why it failed, for the broker's log (never told the client)

    @property
    def authenticated(self) -> bool:
        return self.state is SaslState.DONE

    def allows(self, api_key: int) -> bool:
        """Whether a request of this API may be served on the connection now."""
        return self.authenticated or api_key in SASL_APIS

    def handshake(self, mechanism: str, version: int) -> ErrorCode:
        if self.state is not SaslState.HANDSHAKE:
            return ErrorCode.illegal_sasl_state
        if mechanism not in self.mechanisms:
            return ErrorCode.unsupported_sasl_mechanism
        self.mechanism = mechanism
        self.raw_tokens = version == 0
        self.state = SaslState.AUTHENTICATE
        if mechanism in SCRAM_MECHANISMS:
            # An alphanumeric server nonce, as Kafka's: librdkafka 2.0 (kcat) mangles
            # scramp's default urlsafe-base64 one and fails "Server nonce doesn't match".
            self._server_nonce = secrets.token_hex(24)
            self._scram = scramp.ScramMechanism(mechanism).make_server(
                self._scram_auth, s_nonce=self._server_nonce
            )
        return ErrorCode.none

    def authenticate(self, token: bytes) -> tuple[bytes, str | None]:
        """The answer to one token, and why authentication failed (None: it did not).
        After a failure the state is FAILED: the connection closes once it answers."""
        with self._lock:  # tokens pipelined by a hostile client: one at a time
            try:
                return self._step(token), None
            except AuthenticationFailed as exc:
                return b"", str(exc)

    def _step(self, token: bytes) -> bytes:
        if self.state is not SaslState.AUTHENTICATE:
            self.state = SaslState.FAILED
            raise AuthenticationFailed("SaslAuthenticate is not expected now")
        try:
            if self._scram is None:
                self._plain(token)
                self.state = SaslState.DONE
                return b""
            return self._scram_token(self._scram, token)
        except (scramp.ScramException, UnicodeDecodeError, ValueError) as exc:
            self.state = SaslState.FAILED
            self.failure = self.failure or f"{type(exc).__name__}: {exc}"
            raise AuthenticationFailed(FAILED_MESSAGE) from exc
        except AuthenticationFailed as exc:
            self.state = SaslState.FAILED
            self.failure = self.failure or str(exc)
            raise

    # -- PLAIN -------------------------------------------------------------------------

    def _plain(self, token: bytes) -> None:
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise AuthenticationFailed(FAILED_MESSAGE)
        authzid, user, password = (p.decode("utf-8") for p in parts)
        self.user = user
        if not user or (authzid and authzid != user):
            raise AuthenticationFailed(FAILED_MESSAGE)
        for mechanism in reversed(SCRAM_MECHANISMS):  # SCRAM-SHA-512 first
            stored = self._lookup(user, mechanism)
            if stored is not None:
                made = make_credential(password, mechanism, stored.iterations, stored.salt)
                if hmac.compare_digest(made.stored_key, stored.stored_key):
                    return
                self.failure = "wrong password"
                raise AuthenticationFailed(FAILED_MESSAGE)
        self.failure = "no credential for this user"
        raise AuthenticationFailed(FAILED_MESSAGE)

    # -- SCRAM -------------------------------------------------------------------------

    def _scram_auth(self, user: str) -> tuple[bytes, bytes, bytes, int]:
        self.user = user
        stored = self._lookup(user, self.mechanism)
        if stored is None:
            self.failure = f"no {self.mechanism} credential for this user"
            raise AuthenticationFailed(FAILED_MESSAGE)
        return stored.salt, stored.stored_key, stored.server_key, stored.iterations

    def _scram_token(self, server: scramp.ScramServer, token: bytes) -> bytes:
        self._scram_step += 1
        if self._scram_step == 1:
            server.set_client_first(token.decode("utf-8"))
            return str(server.get_server_first()).encode()
        if self._scram_step == 2:
            client_final = token.decode("utf-8")
            self._accept_doubled_nonce(server, client_final)
            server.set_client_final(client_final)
            server_final = str(server.get_server_final()).encode()
            self.state = SaslState.DONE
            return server_final
        raise AuthenticationFailed(FAILED_MESSAGE)

    def _accept_doubled_nonce(self, server: scramp.ScramServer, final: str) -> None:
        """librdkafka before 2.6.1 (kcat 1.7's 2.0.2 among them) sends its own nonce
        twice in client-final, `r=<client nonce><client nonce><server nonce>`
        (librdkafka#4895). Kafka 3.8.1-3.9 accept it; so do we, in exactly that form:
        the server nonce is still checked (a replayed exchange still fails) and the
        proof is checked over the message the client signed."""
        nonce = str(server.nonce)
        client_nonce = nonce[: len(nonce) - len(self._server_nonce)]
        fields = dict(part.split("=", 1) for part in final.split(",") if "=" in part)
        if client_nonce and fields.get("r") == client_nonce + nonce:
            server.nonce = type(server.nonce)(client_nonce + nonce)  # scramp.core.Nonce

"""TLS for SSL and SASL_SSL listeners: Python's `ssl`, no crypto of our own.

Owns: the server `SSLContext` built from `--ssl-certfile`, `--ssl-keyfile`,
`--ssl-cafile` and `--ssl-client-auth` (TLS 1.2 or newer, the `ssl` module's default
ciphers), and the principal of a client certificate: `User:` and the certificate's
subject as RFC 2253 writes it (most specific first: `CN=alice,OU=payments,O=acme`),
which is what Kafka's default principal builder names an mTLS client.

Fails safe: a certificate or key that cannot be loaded is a one-line ConfigError at
start-up (nothing is served); a client whose handshake fails never reaches the
connection table (asyncio drops it and logs at debug level).
"""

from __future__ import annotations

import ssl
from typing import Any

from tidelog.broker.config_values import ConfigError
from tidelog.broker.security.options import SecurityConfig

_VERIFY = {
    "none": ssl.CERT_NONE,
    "requested": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
# Short names RFC 2253 (and Java's X500Principal) use for the usual attributes.
_SHORT = {
    "commonName": "CN",
    "organizationalUnitName": "OU",
    "organizationName": "O",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_ESCAPED = ',+"\\<>;='


def server_context(config: SecurityConfig) -> ssl.SSLContext:
    """The SSLContext of this broker's TLS listeners; raises ConfigError."""
    assert config.ssl_certfile is not None and config.ssl_keyfile is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"cannot load --ssl-certfile {config.ssl_certfile} with --ssl-keyfile "
            f"{config.ssl_keyfile}: {exc}"
        ) from None
    if config.ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=config.ssl_cafile)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load --ssl-cafile {config.ssl_cafile}: {exc}") from None
    context.verify_mode = _VERIFY[config.ssl_client_auth]
    return context


def _escape(value: str) -> str:
    out = "".join("\\" + ch if ch in _ESCAPED else ch for ch in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def certificate_principal(peercert: Any) -> str | None:
    """`User:<subject>` of a verified client certificate (`getpeercert()`), else None."""
    if not isinstance(peercert, dict):
        return None
    subject = peercert.get("subject")
    if not subject:
        return None
    rdns = []
    for rdn in reversed(subject):  # the certificate lists the least specific first
        rdns.append("+".join(f"{_SHORT.get(k, k)}={_escape(str(v))}" for k, v in rdn))
    return "User:" + ",".join(rdns)

"""`tidelog serve` security options, with Kafka's names (docs/security.md).

Owns: the options of listeners, TLS, SASL, authorization, audit and S3 encryption,
their defaults and checks across options (a TLS listener needs a certificate, an
advertised listener needs a listener of its name). broker/config.py lists them with
the rest and hands the values here to build `SecurityConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidelog.broker.config_values import ConfigError, HostPort, Option, choice, int_in
from tidelog.broker.security.listeners import Listener, advertise, parse_listeners
from tidelog.broker.security.principal import parse_principal

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CLIENT_AUTH = ("none", "requested", "required")
SSE_MODES = ("AES256", "aws:kms")


def _mechanisms(text: str) -> tuple[str, ...]:
    names = tuple(p.strip().upper() for p in text.split(",") if p.strip())
    for name in names:
        if name not in SASL_MECHANISMS:
            raise ValueError(
                f"expected mechanisms among {', '.join(SASL_MECHANISMS)}, got {name!r}"
            )
    if not names:
        raise ValueError("expected at least one mechanism")
    return names


def _super_users(text: str) -> tuple[str, ...]:
    return tuple(str(parse_principal(p)) for p in text.split(";") if p.strip())


def _sse(text: str) -> str:
    for mode in SSE_MODES:
        if text.strip().lower() == mode.lower():
            return mode
    raise ValueError(f"expected one of {', '.join(SSE_MODES)}, got {text!r}")


SECURITY_OPTIONS: tuple[Option, ...] = (
    Option(
        "listeners",
        parse_listeners,
        None,
        "listeners to open, Kafka's syntax: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL "
        "(default: PLAINTEXT://<--listen>)",
        "NAME://HOST:PORT[,...]",
    ),
    Option(
        "advertised-listeners",
        parse_listeners,
        None,
        "addresses clients are told, per listener name (default: each listener's own)",
        "NAME://HOST:PORT[,...]",
    ),
    Option(
        "inter-broker-listener-name",
        choice(("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")),
        None,
        "the listener other brokers reach this one on (default: the first listener)",
        "NAME",
    ),
    Option("ssl-certfile", Path, None, "PEM certificate chain of TLS listeners", "PATH"),
    Option("ssl-keyfile", Path, None, "PEM private key of --ssl-certfile", "PATH"),
    Option(
        "ssl-cafile", Path, None, "PEM CA certificates client certificates must chain to", "PATH"
    ),
    Option(
        "ssl-client-auth",
        choice(CLIENT_AUTH),
        "none",
        "ask TLS clients for a certificate: none, requested or required (mTLS; the "
        "principal is then User:<certificate subject>)",
        "none|requested|required",
    ),
    Option(
        "sasl-enabled-mechanisms",
        _mechanisms,
        ",".join(SASL_MECHANISMS),
        "SASL mechanisms offered on SASL listeners",
        "MECH[,MECH...]",
    ),
    Option(
        "authorizer",
        choice(("off", "acl")),
        "off",
        "off: every principal may do everything; acl: Kafka's ACLs decide",
        "off|acl",
    ),
    Option(
        "super-users",
        _super_users,
        "",
        "principals every ACL check allows (semicolon-separated)",
        "User:NAME[;User:NAME...]",
    ),
    Option(
        "allow-everyone-if-no-acl-found",
        choice(("true", "false")),
        "false",
        "with --authorizer acl, allow a resource no ACL names",
        "true|false",
    ),
    Option("audit-log", Path, None, "append one JSON line per authentication and change", "PATH"),
    Option(
        "security-refresh-ms",
        int_in(100, 3_600_000),
        "1000",
        "how often users and ACLs changed through another broker are read from the bucket",
        "MS",
    ),
    Option("s3-sse", _sse, None, "S3 server-side encryption of every object", "AES256|aws:kms"),
    Option("s3-sse-kms-key-id", str, None, "KMS key of --s3-sse aws:kms", "KEY_ID"),
)
SECURITY_DESTS = frozenset(opt.dest for opt in SECURITY_OPTIONS)


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    listeners: tuple[Listener, ...]
    advertised: tuple[Listener, ...]  # one per listener, same order
    inter_broker_listener: str
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: str = "none"
    sasl_enabled_mechanisms: tuple[str, ...] = SASL_MECHANISMS
    authorizer: str = "off"
    super_users: tuple[str, ...] = ()
    allow_everyone_if_no_acl_found: bool = False
    audit_log: Path | None = None
    security_refresh_ms: int = 1000
    s3_sse: str | None = None
    s3_sse_kms_key_id: str | None = None

    def advertised_of(self, name: str) -> HostPort | None:
        for listener in self.advertised:
            if listener.name == name:
                return listener.address
        return None

    @property
    def inter_broker_sasl(self) -> bool:
        """Whether brokers log in to each other (as User:tidelog-broker)."""
        return self.inter_broker_listener in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def needs_documents(self) -> bool:
        """Whether users or ACLs are consulted (then the bucket is polled for them)."""
        return self.authorizer == "acl" or any(lsn.sasl for lsn in self.listeners)


def plaintext_only(listen: HostPort, advertised: HostPort | None = None) -> SecurityConfig:
    """What `--listen` alone means: one PLAINTEXT listener."""
    listener = Listener("PLAINTEXT", listen)
    shown = Listener("PLAINTEXT", advertised or advertise(listen))
    return SecurityConfig((listener,), (shown,), "PLAINTEXT")


def build_security(
    values: dict[str, Any], sources: dict[str, str], listen: HostPort, advertised: HostPort | None
) -> SecurityConfig:
    """The SecurityConfig of parsed option values; raises ConfigError on a bad mix."""
    listeners: tuple[Listener, ...] | None = values.pop("listeners")
    shown_given: tuple[Listener, ...] | None = values.pop("advertised_listeners")
    if listeners is None:
        listeners = (Listener("PLAINTEXT", listen),)
        if shown_given is None and advertised is not None:
            shown_given = (Listener("PLAINTEXT", advertised),)
    elif advertised is not None and shown_given is None:
        shown_given = (Listener(listeners[0].name, advertised),)
    names = [lsn.name for lsn in listeners]
    by_name = {lsn.name: lsn.address for lsn in shown_given or ()}
    for name in by_name:
        if name not in names:
            raise ConfigError(
                f"invalid value for {sources['advertised_listeners']}: no listener named {name}"
            )
    shown = tuple(
        Listener(lsn.name, by_name.get(lsn.name) or advertise(lsn.address)) for lsn in listeners
    )
    inter = values.pop("inter_broker_listener_name")
    inter = inter.upper() if inter else names[0]
    if inter not in names:
        raise ConfigError(
            f"invalid value for {sources['inter_broker_listener_name']}: no listener named {inter}"
        )
    config = SecurityConfig(
        listeners,
        shown,
        inter,
        allow_everyone_if_no_acl_found=values.pop("allow_everyone_if_no_acl_found") == "true",
        **{k: values.pop(k) for k in list(values) if k in SECURITY_DESTS},
    )
    _check(config, sources)
    return config


def _check(config: SecurityConfig, sources: dict[str, str]) -> None:
    if any(lsn.tls for lsn in config.listeners):
        for dest in ("ssl_certfile", "ssl_keyfile"):
            if getattr(config, dest) is None:
                raise ConfigError(
                    f"a TLS listener (SSL, SASL_SSL) needs --{dest.replace('_', '-')}"
                )
    for dest in ("ssl_certfile", "ssl_keyfile", "ssl_cafile"):
        path = getattr(config, dest)
        if path is not None and not path.is_file():
            raise ConfigError(f"invalid value for {sources[dest]}: no file at {path}")
    if config.ssl_client_auth != "none" and config.ssl_cafile is None:
        raise ConfigError("--ssl-client-auth requested or required needs --ssl-cafile")
    if config.s3_sse_kms_key_id and config.s3_sse != "aws:kms":
        raise ConfigError("--s3-sse-kms-key-id needs --s3-sse aws:kms")

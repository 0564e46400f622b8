"""`--listeners`, `--advertised-listeners` and the TLS/SASL options: Kafka's syntax,
one-line errors for bad mixes, and the certificate subject as a principal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tidelog.broker.config import ServeConfig, add_serve_arguments, resolve_serve_config
from tidelog.broker.config_values import ConfigError, HostPort
from tidelog.broker.security.listeners import parse_listeners
from tidelog.broker.security.tls import certificate_principal


def resolve(*argv: str) -> ServeConfig:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return resolve_serve_config(parser.parse_args(list(argv)), {})


def test_listen_alone_is_one_plaintext_listener() -> None:
    security = resolve("--listen", "0.0.0.0:9099").security
    assert [str(lsn) for lsn in security.listeners] == ["PLAINTEXT://0.0.0.0:9099"]
    assert [str(lsn) for lsn in security.advertised] == ["PLAINTEXT://127.0.0.1:9099"]


def test_listeners_and_advertised_listeners_pair_by_name(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    config = resolve(
        "--listeners", "PLAINTEXT://127.0.0.1:9092,sasl_ssl://0.0.0.0:9094",
        "--advertised-listeners", "SASL_SSL://kafka.example:19094",
        "--ssl-certfile", str(cert), "--ssl-keyfile", str(cert),
    )  # fmt: skip
    assert config.listen == HostPort("127.0.0.1", 9092)
    shown = {lsn.name: str(lsn.address) for lsn in config.security.advertised}
    assert shown == {"PLAINTEXT": "127.0.0.1:9092", "SASL_SSL": "kafka.example:19094"}
    assert config.advertised == HostPort("127.0.0.1", 9092)  # the inter-broker listener


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listeners", "HTTP://1.2.3.4:1"], "expected a listener named"),
        (["--listeners", "PLAINTEXT://a:1,PLAINTEXT://b:2"], "given twice"),
        (["--listeners", "PLAINTEXT:1"], "expected NAME://HOST:PORT"),
        (["--listen", "a:1", "--listeners", "PLAINTEXT://a:1"], "not both"),
        (["--listeners", "SSL://127.0.0.1:1"], "needs --ssl-certfile"),
        (["--advertised-listeners", "SSL://h:1"], "no listener named SSL"),
        (["--inter-broker-listener-name", "sasl_ssl"], "no listener named SASL_SSL"),
        (["--ssl-client-auth", "required"], "needs --ssl-cafile"),
        (["--sasl-enabled-mechanisms", "GSSAPI"], "expected mechanisms among"),
        (["--super-users", "admin"], "expected a principal like User:alice"),
        (["--s3-sse", "rot13"], "expected one of AES256, aws:kms"),
        (["--s3-sse-kms-key-id", "k1"], "needs --s3-sse aws:kms"),
        (["--ssl-cafile", "/nonexistent/ca.pem"], "no file at /nonexistent/ca.pem"),
    ],
)
def test_bad_security_options_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(*argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_security_defaults_change_nothing() -> None:
    security = resolve().security
    assert (security.authorizer, security.needs_documents) == ("off", False)
    assert security.sasl_enabled_mechanisms == ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def test_parse_listeners_keeps_order() -> None:
    names = [lsn.name for lsn in parse_listeners("SSL://h:1, SASL_PLAINTEXT://h:2")]
    assert names == ["SSL", "SASL_PLAINTEXT"]


def test_a_certificate_subject_is_an_rfc2253_principal() -> None:
    cert = {
        "subject": (
            (("countryName", "US"),),
            (("organizationName", "acme, inc"),),
            (("commonName", "alice"),),
        )
    }
    assert certificate_principal(cert) == "User:CN=alice,O=acme\\, inc,C=US"
    assert certificate_principal({}) is None and certificate_principal(None) is None

"""`tidelog serve` options: parsed from the command line and `TIDELOG_*` variables.

Owns: every broker setting, its default, its validation and its environment variable.
Guarantees: a bad value (from either source) raises `ConfigError` with a one-line,
lowercase message naming the option; nothing else about a user mistake escapes.
Precedence: command line, then environment, then default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidelog.broker.config_values import (
    ConfigError,
    HostPort,
    Option,
    choice,
    int_in,
    node_list,
    parse_bool,
    parse_host_port,
    parse_http_listen,
)
from tidelog.broker.log_format import LOG_FORMATS
from tidelog.broker.security.options import SECURITY_OPTIONS, SecurityConfig, build_security
from tidelog.storage.store_config import StoreConfig

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    listen: HostPort
    advertised_listener: HostPort | None
    http_listen: HostPort | None
    data_dir: Path
    object_store: str | None
    s3_endpoint: str | None
    node_id: int
    durability: str
    flush_interval_ms: int
    flush_bytes: int
    auto_create_topics: bool
    default_partitions: int
    max_partitions_per_topic: int
    max_partitions: int
    log_retention_check_interval_ms: int
    log_cleaner_backoff_ms: int
    segment_object_bytes: int
    log_segment_delete_delay_ms: int
    max_request_bytes: int
    max_connections: int | None
    max_connections_per_ip: int | None
    connections_max_idle_ms: int
    queued_max_requests: int
    fetch_max_bytes: int
    group_initial_rebalance_delay_ms: int
    transaction_max_timeout_ms: int
    session_timeout_ms: int
    replace: tuple[int, ...]
    wal_failover: str
    shutdown_timeout_ms: int
    log_level: str
    log_format: str
    security: SecurityConfig

    @property
    def object_store_root(self) -> Path:
        """Where the local object store lives when no --object-store is given."""
        return Path(self.data_dir) / "objects"

    @property
    def advertised(self) -> HostPort:
        """Where other brokers reach this one: the inter-broker listener's address."""
        address = self.security.advertised_of(self.security.inter_broker_listener)
        assert address is not None  # build_security checked the name
        return address

    def store_config(self) -> StoreConfig:
        """The storage settings a `tidelog serve` configuration implies."""
        return StoreConfig(
            data_dir=Path(self.data_dir),
            node_id=self.node_id,
            durability="object" if self.durability == "object" else "wal",
            flush_interval_ms=self.flush_interval_ms,
            flush_bytes=self.flush_bytes,
            host=self.advertised.host,
            port=self.advertised.port,
            listeners=tuple(
                (a.name, a.address.host, a.address.port) for a in self.security.advertised
            ),
            session_timeout_ms=self.session_timeout_ms,
            replace_nodes=self.replace,
            wal_failover="takeover" if self.wal_failover == "takeover" else "wait",
            max_partitions_per_topic=self.max_partitions_per_topic,
            max_partitions=self.max_partitions,
            log_retention_check_interval_ms=self.log_retention_check_interval_ms,
            log_cleaner_backoff_ms=self.log_cleaner_backoff_ms,
            segment_object_bytes=self.segment_object_bytes,
            log_segment_delete_delay_ms=self.log_segment_delete_delay_ms,
        )


SERVE_OPTIONS: tuple[Option, ...] = (
    Option("listen", parse_host_port, "127.0.0.1:9092", "address to listen on", "HOST:PORT"),
    Option(
        "advertised-listener",
        parse_host_port,
        None,
        "address clients are told to connect to (default: the listen address)",
        "HOST:PORT",
    ),
    Option(
        "http-listen",
        parse_http_listen,
        "127.0.0.1:9644",
        "address of /metrics, /healthz, /readyz and the status page; off: none",
        "HOST:PORT|off",
    ),
    Option("data-dir", Path, "./tidelog-data", "local directory for the WAL", "PATH"),
    Option(
        "object-store",
        str,
        None,
        "file://PATH or s3://BUCKET/PREFIX (default: file://<data-dir>/objects)",
        "URL",
    ),
    Option("s3-endpoint", str, None, "S3 endpoint URL (credentials from AWS_*)", "URL"),
    Option("node-id", int_in(0, 2**31 - 1), "1", "this broker's node id", "N"),
    Option(
        "durability",
        choice(("wal", "object")),
        "wal",
        "ack after the WAL fsync (wal) or after the upload to the bucket (object)",
        "wal|object",
    ),
    Option(
        "flush-interval-ms",
        int_in(1, 3_600_000),
        "200",
        "longest time data waits before it is uploaded",
        "MS",
    ),
    Option(
        "flush-bytes",
        int_in(64 * 1024, 1 << 30),
        str(4 * 1024 * 1024),
        "upload as soon as this much waits; also the most one uploaded object holds",
        "BYTES",
    ),
    Option("default-partitions", int_in(1, 10_000), "1", "partitions of auto-created topics", "N"),
    Option(
        "max-partitions-per-topic",
        int_in(1, 2**31 - 1),
        "10000",
        "most partitions one topic may have; more is INVALID_PARTITIONS "
        "(CreateTopics, CreatePartitions, auto-create)",
        "N",
    ),
    Option(
        "max-partitions",
        int_in(1, 2**31 - 1),
        "50000",
        "most partitions all topics of the cluster may have together; more is "
        "POLICY_VIOLATION (every broker holds and loads the metadata of each one)",
        "N",
    ),
    Option(
        "log-retention-check-interval-ms",
        int_in(1, 2**31 - 1),
        "300000",
        "how often retention is enforced and segments are rolled into their own objects "
        "(Kafka's log.retention.check.interval.ms)",
        "MS",
    ),
    Option(
        "log-cleaner-backoff-ms",
        int_in(1, 2**31 - 1),
        "15000",
        "how often the partitions of compacted topics are rolled and cleaned between "
        "retention checks (Kafka's log.cleaner.backoff.ms)",
        "MS",
    ),
    Option(
        "segment-object-bytes",
        int_in(1 << 20, 1 << 30),
        str(64 << 20),
        "most bytes one segment object holds (a topic's segment.bytes applies below it)",
        "BYTES",
    ),
    Option(
        "log-segment-delete-delay-ms",
        int_in(0, 2**31 - 1),
        "60000",
        "how long an object no index names any more stays in the bucket before it is "
        "deleted (Kafka's log.segment.delete.delay.ms)",
        "MS",
    ),
    Option(
        "max-request-bytes",
        int_in(1024, 2**31 - 1),
        str(100 * 1024 * 1024),
        "largest request frame accepted; larger ones close the connection",
        "BYTES",
    ),
    Option(
        "max-connections",
        int_in(1, 2**31 - 1),
        None,
        "most client connections open at once; more are closed at once (Kafka's "
        "max.connections; default: what the open-file limit allows, less a reserve)",
        "N",
    ),
    Option(
        "max-connections-per-ip",
        int_in(1, 2**31 - 1),
        None,
        "most connections from one IP address (Kafka's max.connections.per.ip; "
        "default: --max-connections)",
        "N",
    ),
    Option(
        "connections-max-idle-ms",
        int_in(100, 2**31 - 1),
        "600000",
        "close a connection that sent nothing for this long and has no request in "
        "flight, a stalled partial request included (Kafka's connections.max.idle.ms)",
        "MS",
    ),
    Option(
        "queued-max-requests",
        int_in(1, 1_000_000),
        "500",
        "requests in flight per connection before the broker stops reading from it "
        "(Kafka's queued.max.requests, here per connection)",
        "N",
    ),
    Option(
        "fetch-max-bytes",
        int_in(1024, 2**31 - 1),
        str(55 * 1024 * 1024),
        "most record bytes one fetch answer holds, whatever the client asks "
        "(Kafka's fetch.max.bytes; one batch larger than this is still sent whole)",
        "BYTES",
    ),
    Option(
        "group-initial-rebalance-delay-ms",
        int_in(0, 300_000),
        "0",
        "how long a new group waits for more members before its first rebalance",
        "MS",
    ),
    Option(
        "transaction-max-timeout-ms",
        int_in(1, 2**31 - 1),
        "900000",
        "the longest transaction.timeout.ms a producer may ask for; longer is refused "
        "with INVALID_TRANSACTION_TIMEOUT (Kafka's transaction.max.timeout.ms)",
        "MS",
    ),
    Option(
        "session-timeout-ms",
        int_in(500, 600_000),
        "6000",
        "a broker whose stream is silent this long is fenced and its partitions move; "
        "also how long a wal-mode ack may trust the last upload",
        "MS",
    ),
    Option(
        "replace",
        node_list,
        "",
        "node ids of dead brokers whose partitions this broker takes over at once "
        "(comma-separated), instead of after the session timeout",
        "N[,N...]",
    ),
    Option(
        "wal-failover",
        choice(("wait", "takeover")),
        "wait",
        "when a wal-mode broker goes silent: wait for its WAL volume to be handed over "
        "(nothing acked is lost), or take its partitions over after the session timeout "
        "(what only its WAL held is lost); object-mode brokers are always taken over",
        "wait|takeover",
    ),
    Option(
        "shutdown-timeout-ms",
        int_in(0, 3_600_000),
        "30000",
        "on SIGTERM/SIGINT, how long to finish requests, upload and hand partitions over "
        "before exiting anyway (exit code 4; wal mode keeps what was not uploaded in the "
        "WAL for the next start)",
        "MS",
    ),
    Option("log-level", choice(LOG_LEVELS), "info", "logging verbosity", "LEVEL"),
    Option(
        "log-format",
        choice(LOG_FORMATS),
        "text",
        "log lines on stderr: text, or json (one object per line: ts, level, logger, msg, exc)",
        "text|json",
    ),
    *SECURITY_OPTIONS,
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    for opt in SERVE_OPTIONS:
        parser.add_argument(
            f"--{opt.name}",
            dest=opt.dest,
            metavar=opt.metavar,
            default=None,
            help=f"{opt.help} [env {opt.env}; default {opt.default}]",
        )
    parser.add_argument(
        "--auto-create-topics",
        dest="auto_create_topics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="create unknown topics on metadata requests [env TIDELOG_AUTO_CREATE_TOPICS; "
        "default true]",
    )


def resolve_serve_config(args: argparse.Namespace, env: Mapping[str, str]) -> ServeConfig:
    """Merge command line, environment and defaults; raise ConfigError on a bad value."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    given: set[str] = set()
    for opt in SERVE_OPTIONS:
        raw, source = getattr(args, opt.dest), f"--{opt.name}"
        if raw is None and opt.env in env:
            raw, source = env[opt.env], opt.env
        if raw is None:
            raw = opt.default
        else:
            given.add(opt.dest)
        sources[opt.dest] = source
        try:
            values[opt.dest] = None if raw is None else opt.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid value for {source}: {exc}") from None
    for cap in ("max_partitions_per_topic", "max_partitions"):
        # Every auto-create would be refused: say so now, not on the first produce.
        if values["default_partitions"] > values[cap]:
            raise ConfigError(
                f"invalid value for {sources['default_partitions']}: expected at most "
                f"{sources[cap]} ({values[cap]}), got {values['default_partitions']}"
            )
    for shorthand, full in (
        ("listen", "listeners"),
        ("advertised_listener", "advertised_listeners"),
    ):
        if shorthand in given and full in given:
            raise ConfigError(f"give {sources[shorthand]} or {sources[full]}, not both")
    security = build_security(values, sources, values["listen"], values["advertised_listener"])
    values["listen"] = security.listeners[0].address
    if security.s3_sse is not None and "s3://" not in (values["object_store"] or ""):
        raise ConfigError(f"{sources['s3_sse']} needs an s3:// --object-store")
    auto = args.auto_create_topics
    if auto is None:
        try:
            auto = parse_bool(env.get("TIDELOG_AUTO_CREATE_TOPICS", "true"))
        except ValueError as exc:
            raise ConfigError(f"invalid value for TIDELOG_AUTO_CREATE_TOPICS: {exc}") from None
    return ServeConfig(auto_create_topics=auto, security=security, **values)


def environment() -> Mapping[str, str]:
    return os.environ

"""What a broker's storage is configured with (the `tidelog serve` flags that reach it).

Owns: `StoreConfig` and its defaults; nothing here reads or validates the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Durability = Literal["wal", "object"]
DEFAULT_SEGMENT_OBJECT_BYTES = 64 << 20  # --segment-object-bytes; `tidelog inspect` too


@dataclass(frozen=True, slots=True)
class StoreConfig:
    data_dir: Path
    node_id: int = 1
    durability: Durability = "wal"
    flush_interval_ms: int = 200
    flush_bytes: int = 4 << 20  # cut a commit once this much waits; most one holds
    max_backlog_bytes: int = 512 << 20
    tail_cache_bytes: int = 64 << 20
    chunk_cache_bytes: int = 128 << 20
    wal_fsync: bool = True
    snapshot_every: int = 256
    max_in_flight_uploads: int = 4
    ops_timeout_s: float = 15.0
    host: str = "127.0.0.1"  # what other brokers and clients are told to connect to
    port: int = 9092
    # Every advertised listener, (name, host, port): Metadata answers each client with
    # the addresses of the listener it came in on. Empty: just host and port.
    listeners: tuple[tuple[str, str, int], ...] = ()
    session_timeout_ms: int = 6000  # a silent broker is fenced after this; also the lease
    replace_nodes: tuple[int, ...] = ()  # take these nodes' keys over at start, at once
    # A silent wal-mode broker: "wait" for its WAL to be handed over (its last acks may
    # be only there), or "takeover" after the session timeout, giving those up.
    wal_failover: Literal["wait", "takeover"] = "wait"
    # Checked before anything is allocated (docs/topics.md): one topic, and all together.
    max_partitions_per_topic: int = 10_000
    max_partitions: int = 50_000
    wal_retry_ms: int = 1000  # after a failed WAL write, probe this often until one works
    # The lifecycle pass (storage/lifecycle.py): retention, segment rolls, deletes.
    log_retention_check_interval_ms: int = 300_000
    log_cleaner_backoff_ms: int = 15_000  # compacted topics: roll and clean this often
    segment_object_bytes: int = DEFAULT_SEGMENT_OBJECT_BYTES
    log_segment_delete_delay_ms: int = 60_000  # the janitor's delay (storage/janitor.py)

    @property
    def lease_s(self) -> float:
        return self.session_timeout_ms / 1000

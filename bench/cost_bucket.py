"""What the cost workload does beyond producing: runs tidelog's lifecycle, and reads the bucket.

Owns: the broker options and topic config that make tidelog's lifecycle pass (segment
rolls, retention, the janitor) happen inside a 10 s run, the wait for its last rolls
after the produce, and the listing of the bytes a store holds under `segments/`,
`streams/` and elsewhere. bench/cost_model.py prices what these measure.
"""

from __future__ import annotations

import time
from typing import Any

from tidelog.bench.brokers import s3_client
from tidelog.bench.s3proxy import CountingProxy, Counts
from tidelog.bench.sides import Side

# How tidelog runs in the cost workload, so that the lifecycle happens inside a 10 s run:
# a pass every 2 s instead of 300 s, segments rolled after 4 s instead of 7 days or
# 64 MiB, unnamed objects deleted 1 s after they are seen collectable instead of 60 s.
# The run measures what each request kind costs per byte or per flush (a roll copies each
# chunk once, whatever the segment size); bench/cost_model.py prices the month at the
# defaults, where segments are larger and passes rarer (docs/benchmarks.md, item 4).
LIFECYCLE_ARGS = (
    "--log-retention-check-interval-ms", "2000",
    "--log-segment-delete-delay-ms", "1000",
)  # fmt: skip
LIFECYCLE_TOPIC = {"segment.ms": "4000"}
SETTLE_QUIET_S = 5.0  # after produce: until no segment PUT for this long (last rolls)
SETTLE_MAX_S = 60.0


def settle(proxy: CountingProxy) -> Counts:
    """Wait, after the produce, until the lifecycle rolled what it will roll: no segment
    PUT for SETTLE_QUIET_S (at most SETTLE_MAX_S). Returns the proxy's counts then."""
    deadline = time.monotonic() + SETTLE_MAX_S
    counts = proxy.snapshot()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < SETTLE_QUIET_S:
        time.sleep(0.5)
        now = proxy.snapshot()
        if now.areas["PUT segments"] != counts.areas["PUT segments"]:
            quiet_since = time.monotonic()
        counts = now
    return counts


def stored_bytes(side: Side, store: str | None) -> dict[str, int]:
    """Bytes in the bucket under the store's `segments/`, `streams/` and elsewhere."""
    out = {"segments": 0, "streams": 0, "other": 0}
    if side.s3 is None or store is None:
        return out
    bucket, _, root = store.removeprefix("s3://").partition("/")
    root = root.strip("/")
    client: Any = s3_client(side.s3)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root)
    for page in pages:
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(root) :].lstrip("/")
            area = rest.split("/", 1)[0]
            out[area if area in out else "other"] += obj["Size"]
    return out

"""Produce throughput of one broker against a cluster of N on the same bucket.

Issue 4's question: does coordination through the bucket cost throughput? Each round
starts 1 broker, then N brokers (alternating which goes first over --rounds so machine
drift hits both), on a fresh `file://` bucket, creates a topic whose partitions the
brokers spread between them, waits until every broker leads some, and drives the
cluster with one librdkafka producer (1 KiB values, acks=all, as bench/throughput.py).
Prints total MB/s for each size, the N/1 ratio (medians), and CPU seconds per GB
produced for each broker process (utime+stime from /proc), so the cost on a bigger
machine can be projected: on this 2-core box N brokers share the same two cores.

    python bench/cluster.py                  # 3 brokers vs 1, 200 MB per round, 3 rounds

Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

if __package__ in (None, ""):  # run as `python bench/cluster.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import ROOT, create_topic, stop_all
from tidelog.bench.throughput import MB, produce
from tidelog.broker.processes import BrokerProcess

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Node:
    node_id: int
    broker: BrokerProcess

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def cpu_s(self) -> float:
        """User + system CPU seconds the broker process has used so far."""
        assert self.broker.proc is not None
        stat = Path(f"/proc/{self.broker.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


@contextlib.contextmanager
def cluster(workdir: Path, size: int) -> Iterator[list[Node]]:
    bucket = f"file://{workdir / ('bucket-' + uuid.uuid4().hex[:6])}"
    nodes: list[Node] = []
    try:
        for node_id in range(1, size + 1):
            data = workdir / f"n{node_id}-{uuid.uuid4().hex[:6]}"
            broker = BrokerProcess(
                data,
                node_id=node_id,
                object_store=bucket,
                log_level="info",
                log_path=data / "broker.log",
                cwd=ROOT,
            )
            nodes.append(Node(node_id, broker))
            broker.start()
        yield nodes
    finally:
        stop_all([n.broker for n in nodes])


def wait_spread(bootstrap: str, topic: str, size: int) -> None:
    """Until every partition has a leader and every broker leads some."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10)
        leaders = [p.leader for p in md.topics[topic].partitions.values()]
        if -1 not in leaders and len(set(leaders)) == size:
            return
        time.sleep(0.2)
    raise RuntimeError(f"partitions did not spread over {size} brokers")


@dataclass
class Figures:
    mbps: list[float] = field(default_factory=list)
    cpu_s_per_gb: list[list[float]] = field(default_factory=list)  # per round, per broker


def one_round(workdir: Path, size: int, total: int, partitions: int, figs: Figures) -> None:
    with cluster(workdir, size) as nodes:
        bootstrap = ",".join(n.bootstrap for n in nodes)
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topic, partitions)
        wait_spread(bootstrap, topic, size)
        produce(bootstrap, topic, min(total, 20 * MB), partitions=partitions)  # warm-up
        before = [n.cpu_s() for n in nodes]
        seconds = produce(bootstrap, topic, total, partitions=partitions)
        used = [n.cpu_s() - b for n, b in zip(nodes, before, strict=True)]
    figs.mbps.append(total / MB / seconds)
    figs.cpu_s_per_gb.append([u / (total / 1e9) for u in used])
    per_broker = " ".join(f"{c:5.1f}" for c in figs.cpu_s_per_gb[-1])
    print(
        f"  {size} broker(s): produce {figs.mbps[-1]:7.1f} MB/s   CPU s/GB per broker: "
        f"{per_broker}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", type=int, default=3, help="cluster size compared to 1")
    parser.add_argument("--mb", type=int, default=200, help="megabytes produced per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    sizes = (1, args.brokers)
    figs = {size: Figures() for size in sizes}
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-cluster-") as tmp:
        for r in range(args.rounds):
            order = sizes if r % 2 == 0 else sizes[::-1]
            print(f"round {r + 1}/{args.rounds}", flush=True)
            for size in order:
                one_round(Path(tmp), size, args.mb * MB, args.partitions, figs[size])
    one, many = (statistics.median(figs[s].mbps) for s in sizes)
    print(f"\nproduce, {args.mb} MB of 1 KiB values, acks=all, {args.partitions} partitions")
    for size in sizes:
        f = figs[size]
        total_cpu = [sum(r) for r in f.cpu_s_per_gb]
        print(
            f"  {size} broker(s): median {statistics.median(f.mbps):7.1f} MB/s "
            f"(min {min(f.mbps):.1f}, max {max(f.mbps):.1f}); CPU s/GB all brokers: "
            f"median {statistics.median(total_cpu):.1f}"
        )
    print(f"  ratio {args.brokers}/1: {many / one:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

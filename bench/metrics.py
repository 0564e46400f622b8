"""What `--http-listen` costs: produce throughput with /metrics on and scraped every
second, against `--http-listen off`, on the same run (issue 16).

Each round starts two tidelog brokers afresh, one after the other (the order swapped
every round, so machine drift hits both): `on` serves HTTP on a free port while a
thread GETs /metrics and /api/status every --scrape-s (1 s), as Prometheus and an open
status page would; `off` serves none. Each is driven by the same confluent-kafka
producer as `make bench` (acks=all, linger 5 ms, 1 MiB batches, 6 partitions, 1 KiB
values): a warm-up, then --mb MB timed. Prints MB/s per round, the medians, each
round's on/off ratio (its two runs are back to back) and their median against the
target (>= 0.97x), never asserted; how many scrapes ran and how long the slowest took.

    python bench/metrics.py                 # 3 rounds of 1500 MB each side
    python bench/metrics.py --rounds 5 --mb 3000 --json metrics.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/metrics.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import create_topic, run_broker
from tidelog.bench.throughput import produce
from tidelog.broker.processes import free_port

MB = 1_000_000
TARGET = 0.97


class Scraper(threading.Thread):
    def __init__(self, base: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.every_s = every_s
        self.stop = threading.Event()
        self.scrapes = 0
        self.failures = 0
        self.slowest_s = 0.0

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            for path in ("/metrics", "/api/status"):
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(self.base + path, timeout=10) as answer:
                        answer.read()
                except OSError:
                    self.failures += 1
                    continue
                self.scrapes += 1
                self.slowest_s = max(self.slowest_s, time.perf_counter() - started)


def one_side(workdir: Path, http: bool, mb: int, scrape_s: float) -> dict[str, float]:
    port = free_port()
    args = ("--http-listen", f"127.0.0.1:{port}" if http else "off")
    with run_broker("tidelog", workdir, None, extra_args=args) as (bootstrap, _proc):
        topic = f"metrics-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topic)
        produce(bootstrap, topic, min(mb, 40) * MB // 4)  # warm-up
        scraper = Scraper(f"http://127.0.0.1:{port}", scrape_s) if http else None
        if scraper is not None:
            scraper.start()
        try:
            seconds = produce(bootstrap, topic, mb * MB)
        finally:
            if scraper is not None:
                scraper.stop.set()
                scraper.join()
    figures = {"mb_s": mb / seconds}
    if scraper is not None:
        figures |= {
            "scrapes": scraper.scrapes,
            "scrape_failures": scraper.failures,
            "slowest_scrape_ms": scraper.slowest_s * 1000,
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--mb", type=int, default=1500, help="MB timed per side (default 1500)")
    parser.add_argument("--scrape-s", type=float, default=1.0, help="scrape interval (1 s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.mb < 1 or args.scrape_s <= 0:
        parser.error("--rounds, --mb and --scrape-s must be positive")
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-metrics-") as tmp:
        for r in range(args.rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for side in order:
                figures = one_side(Path(tmp), side == "on", args.mb, args.scrape_s)
                runs[side].append(figures)
                extra = (
                    f" scrapes={figures['scrapes']:.0f} failures={figures['scrape_failures']:.0f}"
                    f" slowest_ms={figures['slowest_scrape_ms']:.1f}"
                    if side == "on"
                    else ""
                )
                print(f"round {r + 1} {side:>3}: {figures['mb_s']:.1f} MB/s{extra}", flush=True)
    on = statistics.median(f["mb_s"] for f in runs["on"])
    off = statistics.median(f["mb_s"] for f in runs["off"])
    # Each round's two runs are back to back, so their ratio cancels the machine's drift
    # between rounds; the median of those is the figure the target is read against.
    paired = [a["mb_s"] / b["mb_s"] for a, b in zip(runs["on"], runs["off"], strict=True)]
    ratio = statistics.median(paired)
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"produce MB/s median: http on + scraped {on:.1f}, off {off:.1f} ({on / off:.3f}x)")
    print(f"on/off per round: {' '.join(f'{r:.3f}' for r in paired)}")
    print(f"on/off median of rounds {ratio:.3f}x (target >= {TARGET}x: {verdict})")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "paired": paired, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Recovery time of the broker-replacement drill, repeated: median and worst per mode.

Runs `tidelog drill replace --json` (a subprocess each time, so every run starts fresh
brokers in a fresh temp dir) `--runs` times per durability mode, with seeds 1..runs,
and prints per mode: recovery time (kill -9 -> first record acknowledged by the
replacement) median and worst, bytes copied between brokers (0 by construction: the
drill hands over the WAL volume or starts empty; it never copies), what the
replacement read from the bucket, and how many runs failed their verdict. A run whose
drill fails counts as failed and its recovery time is left out, never retried.

    python bench/recovery.py --runs 5
    python bench/recovery.py --runs 3 --store s3 --json recovery.json

Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_once(mode: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tidelog.broker.cli",
        "drill",
        "replace",
        "--json",
        "--mode",
        mode,
        "--records",
        str(args.records),
        "--seed",
        str(seed),
        "--store",
        args.store,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if not done.stdout.strip():
        return {"passed": False, "error": done.stderr.strip().splitlines()[-1:]}
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit_code"] = done.returncode
    return report


def summarize(mode: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("passed") and r.get("recovery_s") is not None]
    times = [r["recovery_s"] for r in ok]
    reads = [r["recovery_read_bytes"] for r in ok if r.get("recovery_read_measured")]
    return {
        "mode": mode,
        "runs": len(runs),
        "failed": len(runs) - len(ok),
        "recovery_median_s": round(statistics.median(times), 3) if times else None,
        "recovery_worst_s": max(times) if times else None,
        "recovery_all_s": times,
        "bytes_copied_between_brokers": sorted({r["bytes_copied_between_brokers"] for r in ok}),
        "commits_read_median": statistics.median([r["commits_read_by_replacement"] for r in ok])
        if ok
        else None,
        "recovery_read_bytes_median": statistics.median(reads) if reads else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="drills per mode (default 5)")
    parser.add_argument("--records", type=int, default=20_000, help="per drill (default 20000)")
    parser.add_argument("--modes", default="wal,object", help="comma-separated (default both)")
    parser.add_argument("--store", choices=("file", "s3"), default="file")
    parser.add_argument("--json", type=Path, help="also write the summaries and runs here")
    args = parser.parse_args()
    summaries = []
    everything: dict[str, list[dict[str, Any]]] = {}
    for mode in args.modes.split(","):
        runs = []
        for seed in range(1, args.runs + 1):
            report = run_once(mode, seed, args)
            runs.append(report)
            print(
                f"{mode} run {seed}: recovery={report.get('recovery_s')}s "
                f"passed={report.get('passed')}",
                file=sys.stderr,
                flush=True,
            )
        everything[mode] = runs
        summaries.append(summarize(mode, runs))
    print(f"replace drill, {args.records} records, {args.store} store, {args.runs} runs per mode")
    print(f"{'mode':<7} {'median':>8} {'worst':>8} {'failed':>6}  bytes copied  commits read")
    for s in summaries:
        median = "-" if s["recovery_median_s"] is None else f"{s['recovery_median_s']:.2f}s"
        worst = "-" if s["recovery_worst_s"] is None else f"{s['recovery_worst_s']:.2f}s"
        copied = ",".join(str(b) for b in s["bytes_copied_between_brokers"]) or "-"
        print(
            f"{s['mode']:<7} {median:>8} {worst:>8} {s['failed']:>6}  {copied:>12}  "
            f"{s['commits_read_median']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"summaries": summaries, "runs": everything}, indent=2))
    return 0 if all(s["failed"] == 0 for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`tidelog bench` as a plug-in: the `bench` entry point of `tidelog.commands` (pyproject.toml).

Owns: `COMMAND`, the sub-command's help, its options (bench/options.py) and its run
(bench/suite.py). Guarantees: importing this module imports nothing of the bench extra,
so `tidelog --help` works without it; without the extra `tidelog bench` has no options
and says which extra to install (exit 2); a run whose needs are missing says so before
anything starts (bench/needs.py). Has the shape of broker/commands.py's `Command`
without importing the broker.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


class BenchCommand:
    order = 50
    help = "benchmark suite: tidelog side by side with Tansu 0.6"
    description = (
        "Run the standard benchmark suite (throughput, latency, object-store "
        "cost, groups, replacement, memory) against tidelog and the peer broker Tansu 0.6, "
        "alternating the two over rounds; print medians and ratios, read them against the "
        "targets, write JSON, PNG charts and SUMMARY.md. Run it from the source checkout."
    )

    def add_arguments(self, parser: argparse.ArgumentParser, parser_class: type[Any]) -> None:
        try:
            from tidelog.bench.options import add_bench_arguments
        except ImportError:  # installed without the bench extra: `tidelog bench` says so
            return
        add_bench_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        try:
            from tidelog.bench.needs import missing_line
            from tidelog.bench.suite import run_bench
        except ImportError as exc:
            print(f"tidelog bench: error: needs the bench extra (pip install 'tidelog[bench]'): "
                  f"{exc}", file=sys.stderr)  # fmt: skip
            return 2
        missing = missing_line(args)  # before anything starts: a run takes minutes
        if missing is not None:
            print(missing, file=sys.stderr)
            return 2
        return run_bench(args)


COMMAND = BenchCommand()

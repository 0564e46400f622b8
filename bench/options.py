"""The options of `tidelog bench`, kept free of heavy imports so `tidelog --help` stays fast.

Owns: the option names, choices and defaults and the list of workload names (checked
against bench/workloads.py by tests/unit/test_bench_report.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

WORKLOAD_NAMES = ("produce", "consume", "latency", "cost", "groups", "drill", "memory")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one-minute smoke run: tiny sizes")
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOAD_NAMES,
        metavar="WORKLOAD",
        help=f"run only this workload (repeatable): {', '.join(WORKLOAD_NAMES)}",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip Tansu")
    parser.add_argument(
        "--rounds", type=_positive, default=None, help="rounds per workload (default 3; quick 1)"
    )
    parser.add_argument(
        "--s3",
        choices=("none", "moto", "seaweedfs"),
        default="moto",
        help="S3 server for the object-mode setup, started by the bench (default moto)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON, charts, profiles and SUMMARY.md (default bench/results)",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="do not re-run missed targets under py-spy"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value

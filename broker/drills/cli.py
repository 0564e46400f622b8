"""`tidelog drill SCENARIO`: the sub-commands, their shared options, and the run.

Owns: the table of scenarios (one module each; adding a scenario is one module and one
entry in SCENARIOS), the options every scenario takes, the temp dir and the store's
lifetime, and the exit code: 0 only when the scenario passed, 1 when it failed or could
not run (one line on stderr), 2 for a usage mistake (one line on stderr).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tidelog.broker.commands import SubCommand
from tidelog.broker.drills import outage, replace, scale, txn, zombie
from tidelog.broker.drills.harness import DrillContext, DrillOptions, render_json, render_table
from tidelog.broker.drills.load import RECORDS_PER_S
from tidelog.broker.drills.narration import Narrator
from tidelog.broker.drills.processes import DrillError
from tidelog.broker.drills.schedule import MIN_RECORDS, Schedule, ScheduleError
from tidelog.broker.drills.stores import open_store

SCENARIOS = {
    s.name: s
    for s in (
        replace.SCENARIO,
        zombie.SCENARIO,
        outage.SCENARIO,
        scale.SCALE_OUT,
        scale.SCALE_IN,
        txn.SCENARIO,
    )
}
DEFAULT_RECORDS = 20_000


def run_drill(args: argparse.Namespace) -> int:
    scenario = SCENARIOS[args.drill_command]
    if args.s3_endpoint and args.store != "s3":
        print("tidelog drill: error: --s3-endpoint needs --store s3", file=sys.stderr)
        return 2
    records = args.records
    if args.duration is not None:
        records = round(args.duration * RECORDS_PER_S)
    elif records is None:
        records = DEFAULT_RECORDS
    try:
        Schedule.of(records)
    except ScheduleError as exc:
        print(f"tidelog drill: error: {exc}", file=sys.stderr)
        return 2
    opts = DrillOptions(
        scenario=scenario.name,
        mode=args.mode,
        records=records,
        duration_s=args.duration,
        seed=args.seed,
        keep=args.keep,
        json=args.json,
        store=args.store,
        s3_endpoint=args.s3_endpoint,
        s3_server=args.s3_server,
        outage_s=getattr(args, "outage", 3.0),
    )
    say = Narrator(quiet=opts.json)
    tmp = Path(tempfile.mkdtemp(prefix=f"tidelog-drill-{scenario.name}-"))
    say.say(f"drill dir {tmp}" + (" (kept)" if opts.keep else " (removed at the end)"))
    try:
        store = open_store(opts.store, tmp, opts.s3_endpoint, opts.s3_server)
        try:
            say.say(f"bucket: {store.describe()}")
            with DrillContext(opts, say, tmp, store) as ctx:  # kills its brokers at exit
                report = scenario.run(ctx)
        finally:
            store.close()
    except DrillError as exc:
        print(f"tidelog drill: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report["drill_dir"] = str(tmp) if opts.keep else None
    ok = scenario.passed(report)
    report["passed"] = ok
    print(render_json(report) if opts.json else render_table(scenario.rows(report), ok))
    return 0 if ok else 1


def add_drill_arguments(drill: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    """Fill in the `drill` sub-parser: one sub-command per scenario."""
    sub = drill.add_subparsers(
        dest="drill_command", metavar="DRILL", parser_class=parser_class, required=True
    )
    for scenario in SCENARIOS.values():
        parser = sub.add_parser(scenario.name, help=scenario.help, description=scenario.description)
        _add_common(parser)
        if scenario.name == outage.SCENARIO.name:
            parser.add_argument(
                "--outage",
                type=_positive_float,
                default=3.0,
                metavar="SECONDS",
                help="how long the store stops answering (default 3)",
            )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=("wal", "object"),
        default="wal",
        help="--durability of the brokers (default wal)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--records",
        type=_positive,
        default=None,
        help=f"payments to produce, at least {MIN_RECORDS} (default {DEFAULT_RECORDS})",
    )
    size.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help=f"produce for this long instead of a number of records: {RECORDS_PER_S} "
        "payments a second of it",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the key sequence (default 1)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (data dirs, bucket, broker logs)"
    )
    parser.add_argument("--json", action="store_true", help="print only the report, as JSON")
    parser.add_argument(
        "--store",
        choices=("file", "s3"),
        default="file",
        help="the brokers' object store: a temp dir (file, default) or an S3 bucket (s3)",
    )
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        default=None,
        help="with --store s3: an S3 endpoint to use (credentials from AWS_*); without it "
        "the drill starts its own server (--s3-server)",
    )
    parser.add_argument(
        "--s3-server",
        choices=("moto", "seaweedfs"),
        default="moto",
        help="with --store s3 and no --s3-endpoint: the local server to start (default moto)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer value={text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 value={text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number value={text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 value={text}")
    return value


COMMAND = SubCommand(  # the `drill` entry point of `tidelog.commands` (pyproject.toml)
    order=30,
    help="failure drills on throw-away brokers (replace, zombie, object-store-outage)",
    description="Self-contained failure drills: each starts its own brokers in a temp "
    "dir, breaks one under load and verifies every acknowledged record.",
    add_arguments=add_drill_arguments,
    run=run_drill,
)

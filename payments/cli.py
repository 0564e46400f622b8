"""`tidelog payments demo|rebuild|api`: the command line of the reference application.

Owns: the `payments` sub-parser (filled in by `add_payments_arguments`) and
`run_payments`, which dispatches; `COMMAND` hands both to `tidelog` as the `payments`
entry point of `tidelog.commands` (pyproject.toml), so the broker never imports this app.
Guarantees: a usage mistake is one line on stderr and exit 2; heavy modules are imported
only by the subcommand that runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer value={text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 value={text}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number value={text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 value={text}")
    return value


def _bootstrap_help(default: str) -> str:
    return f"HOST:PORT of a running tidelog (default: {default})"


def add_payments_arguments(parser: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    sub = parser.add_subparsers(
        dest="payments_command", metavar="COMMAND", parser_class=parser_class, required=True
    )
    demo = sub.add_parser(
        "demo",
        help="run payments through commands, outbox, events and projections; verify",
        description="Start a broker in a temp dir (unless --bootstrap), issue a seeded "
        "workload of payment commands, publish the outbox, build every read model and print "
        "the verifier's table. Exit 0 only if every read model matches the write model "
        "and the receipts stage wrote exactly one receipt per payment captured in full.",
    )
    demo.add_argument("--payments", type=_positive, default=5_000, help="payments (default 5000)")
    demo.add_argument("--merchants", type=_positive, default=50, help="merchants (default 50)")
    demo.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    demo.add_argument(
        "--rate",
        type=_rate,
        default=2_000.0,
        help="payments started per second; 0 = as fast as possible (default 2000)",
    )
    demo.add_argument(
        "--drill",
        action="store_true",
        help="kill -9 the broker half-way and replace it (new node id, same port, "
        "same data dir), then kill -9 the receipts stage; needs the embedded broker",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the demo dir (write model, read models, broker data) at the end",
    )
    demo.add_argument("--bootstrap", help=_bootstrap_help("a broker started in the demo dir"))
    demo.add_argument("--data-dir", type=Path, help="use this dir instead of a temp dir (kept)")

    rebuild = sub.add_parser(
        "rebuild",
        help="replay a projection from offset 0 and prove it equals the live one",
        description="Replay PROJECTION from offset 0 into a fresh read model, up to the "
        "offsets the live read model has consumed, and compare the two table by table.",
    )
    rebuild.add_argument("projection", help="payment_status, merchant, ledger or risk")
    rebuild.add_argument(
        "--data-dir", type=Path, required=True, help="the app's dir (e.g. a demo run with --keep)"
    )
    rebuild.add_argument("--bootstrap", help=_bootstrap_help("a broker started on DATA_DIR/broker"))

    api = sub.add_parser(
        "api",
        help="HTTP read API and status page over the read models",
        description="Serve payment status and history, merchant balances and settlement, "
        "ledger totals and projection lag as JSON, a self-refreshing HTML status page at / "
        "and Prometheus metrics (lag, outbox backlog, latency, verifier) at /metrics.",
    )
    api.add_argument("--data-dir", type=Path, required=True, help="the app's dir")
    api.add_argument(
        "--listen", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)"
    )
    api.add_argument("--bootstrap", help=_bootstrap_help("a broker started on DATA_DIR/broker"))
    api.add_argument(
        "--follow",
        action="store_true",
        help="also run the relay and the projections, so the read models stay live",
    )


def run_payments(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.payments_command == "demo":
        return _demo(args)
    if args.payments_command == "rebuild":
        from tidelog.payments.rebuild import run_rebuild_command

        return run_rebuild_command(args.projection, args.data_dir, args.bootstrap)
    from tidelog.payments.api import run_api_command

    return run_api_command(args.data_dir, args.listen, args.bootstrap, args.follow)


def _demo(args: argparse.Namespace) -> int:
    if args.drill and args.bootstrap:
        print(
            "tidelog payments demo: error: --drill needs the embedded broker; drop --bootstrap",
            file=sys.stderr,
        )
        return 2
    from tidelog.payments.demo import DemoOptions, Narrator, run_demo

    opts = DemoOptions(
        payments=args.payments,
        merchants=args.merchants,
        seed=args.seed,
        rate=args.rate,
        drill=args.drill,
        keep=args.keep,
        bootstrap=args.bootstrap,
        data_dir=args.data_dir,
    )
    return run_demo(opts, Narrator())


class PaymentsCommand:
    """What `tidelog` needs of a sub-command (the shape of broker/commands.py's `Command`;
    the app does not import the broker)."""

    order = 40
    help = "the payments CQRS reference application (demo, rebuild, api)"
    description = "A payments app over tidelog, through confluent-kafka only."

    def add_arguments(self, parser: argparse.ArgumentParser, parser_class: type[Any]) -> None:
        add_payments_arguments(parser, parser_class)

    def run(self, args: argparse.Namespace) -> int:
        return run_payments(args)


COMMAND = PaymentsCommand()

"""What every payments process run alone (`python -m tidelog.payments.X`) sets up.

Owns: the log format on stderr (its parent, `broker/processes`, keeps the output), the
stop event SIGTERM and SIGINT set (a process ends after its current batch, exit 0), and
the `--batch-messages` option of the processes that apply records in batches.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading


def add_batch_messages(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--batch-messages",
        type=int,
        default=default,
        help=f"most records per transaction (default {default})",
    )


def start_child() -> threading.Event:
    """Log to stderr and return the event a SIGTERM or SIGINT sets."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop

"""The `tidelog` command line: `tidelog serve` starts a broker; every other sub-command
(`topics`, `groups`, `inspect`, `drill`, `payments`, `bench`) is a plug-in found through the
`tidelog.commands` entry points (broker/commands.py), so this module imports none of them.

Owns: the top-level parser, `serve` (its logging set-up, signal handling and exit
codes), and dispatch to a plug-in's runner. A plug-in that fails to load is skipped
with one warning line; `serve` never depends on one. A user mistake (or a node id a
live broker has) prints one line to stderr and exits 2; SIGTERM/SIGINT stop the broker
cleanly (in-flight requests finish, everything is flushed) and exit 0, or exit 4 once
--shutdown-timeout-ms has passed (a second signal keeps that deadline); a fenced broker
exits 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from tidelog.broker.commands import Runner, add_commands, discover
from tidelog.broker.config import (
    ServeConfig,
    add_serve_arguments,
    environment,
    resolve_serve_config,
)
from tidelog.broker.config_values import ConfigError
from tidelog.broker.log_format import formatter
from tidelog.broker.memory import tune_gc, tune_malloc
from tidelog.storage.commit_format import CorruptCommit
from tidelog.storage.membership import NodeIdInUse
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.stream_state import StateError

log = logging.getLogger("tidelog")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    """The parser, and the runner of every plug-in command by name (`serve` is not one)."""
    parser = _Parser(
        prog="tidelog",
        description="A Kafka-compatible broker whose brokers are stateless: a local WAL in "
        "front of S3-compatible object storage.",
    )
    parser.add_argument("--version", action="version", version="tidelog 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    serve = sub.add_parser(
        "serve",
        help="run a broker",
        description="Run a broker. Every option can also be set as TIDELOG_<OPTION> "
        "(e.g. TIDELOG_DATA_DIR).",
    )
    add_serve_arguments(serve)
    commands, _ = discover()  # a broken one is logged there and left out
    return parser, add_commands(sub, commands, _Parser)


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


EXIT_FENCED = 3
EXIT_SHUTDOWN_TIMED_OUT = 4


async def run_broker(config: ServeConfig) -> int:
    from tidelog.broker.server import Broker

    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline: list[float] = []  # loop time by which shutdown ends; set when it starts

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            stop.set()
            return
        # Shutdown is under way: a second signal neither restarts nor skips it. It ends
        # by the deadline either way, and waiting for uploads is what saves data.
        remaining = (deadline[0] - loop.time()) * 1000 if deadline else config.shutdown_timeout_ms
        log.warning(
            "signal received again during shutdown; still exiting by the shutdown deadline "
            "signal=%s remaining_ms=%d",
            sig.name,
            max(0.0, remaining),
        )

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await broker.start()
    tune_gc()  # full collections skip start-up objects and come rarely (broker/memory.py)
    stopped = asyncio.ensure_future(stop.wait())
    fenced = asyncio.ensure_future(broker.fenced.wait())
    await asyncio.wait((stopped, fenced), return_when=asyncio.FIRST_COMPLETED)
    for waiter in (stopped, fenced):
        waiter.cancel()
    stop.set()  # from here on a signal only says it is already stopping
    deadline.append(loop.time() + config.shutdown_timeout_ms / 1000)
    if broker.fenced.is_set():
        # Another broker sealed our stream and owns our partitions: nothing we accept
        # could be acknowledged any more. Close every connection so clients move on.
        log.error("fenced by another broker; closing connections and exiting with 3")
        code = EXIT_FENCED
    else:
        log.info(
            "shutdown requested; finishing in-flight requests and flushing timeout_ms=%d",
            config.shutdown_timeout_ms,
        )
        code = 0
    if not await broker.stop(deadline[0]):
        log.error(
            "shutdown timed out; exiting with %d timeout_ms=%d",
            EXIT_SHUTDOWN_TIMED_OUT,
            config.shutdown_timeout_ms,
        )
        _exit_now(EXIT_SHUTDOWN_TIMED_OUT)
    return code


def _exit_now(code: int) -> None:
    """Exit without waiting for threads: an object-store call stuck in a worker thread
    would otherwise hold the interpreter's exit past the shutdown deadline."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command != "serve":
        return runners[args.command](args)
    try:
        config = resolve_serve_config(args, environment())
    except ConfigError as exc:
        print(f"tidelog serve: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_format)
    tune_malloc()
    _install_uvloop()
    try:
        return asyncio.run(run_broker(config))
    except (ValueError, NodeIdInUse, ConfigError) as exc:  # e.g. a malformed --object-store URL
        print(f"tidelog serve: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ObjectStoreError, StateError, CorruptCommit) as exc:
        print(f"tidelog serve: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`tidelog inspect`: what lives in the bucket (and, given a data dir, only in the WAL).

Owns: the `inspect` sub-command (`COMMAND`, the `tidelog.commands` entry point), its
arguments, where the store and the data dir come from
(command line, then environment, then default), opening the store without creating it,
and the run: gather (bucket_report.py, wal_report.py), render (report_text.py), exit code.
The report's dataclasses are in report.py and re-exported here.

Guarantees: nothing is written, neither to the bucket nor to the WAL (a torn WAL tail is
reported, never cut; a `file://` store that does not exist is an error, not created).
Exit 0 on success; an unreachable or empty store, a corrupt commit or an unreadable WAL
is one line on stderr and exit 1; a malformed URL exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tidelog.broker.admin.bucket_report import collect_bucket
from tidelog.broker.admin.report import (
    BrokerView,
    ChunkView,
    CommitView,
    GroupOffsetView,
    Head,
    InspectError,
    NextPassView,
    PartitionView,
    Report,
    SegmentView,
    WalPartitionView,
    WalView,
)
from tidelog.broker.admin.report_text import render_json, render_report
from tidelog.broker.commands import SubCommand
from tidelog.storage.commit_format import CorruptCommit
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.store_config import DEFAULT_SEGMENT_OBJECT_BYTES
from tidelog.storage.store_url import file_url_path, open_object_store

__all__ = [
    "COMMAND",
    "BrokerView",
    "ChunkView",
    "CommitView",
    "GroupOffsetView",
    "Head",
    "InspectError",
    "NextPassView",
    "PartitionView",
    "Report",
    "SegmentView",
    "WalPartitionView",
    "WalView",
    "add_bucket_arguments",
    "add_inspect_arguments",
    "inspect",
    "render_report",
    "run_inspect",
]

OBJECT_STORE_ENV = "TIDELOG_OBJECT_STORE"
S3_ENDPOINT_ENV = "TIDELOG_S3_ENDPOINT"
DATA_DIR_ENV = "TIDELOG_DATA_DIR"
DEFAULT_OBJECT_STORE = "file://./tidelog-data/objects"
DEFAULT_COMMITS = 20
MIN_SEGMENT_OBJECT_BYTES, MAX_SEGMENT_OBJECT_BYTES = 1 << 20, 1 << 30  # as `tidelog serve`


def add_bucket_arguments(parser: argparse.ArgumentParser, data_dir_help: str) -> None:
    """The bucket options (and environment variables) of every command that reads the bucket."""
    parser.add_argument(
        "--object-store",
        metavar="URL",
        default=None,
        help=f"file://PATH or s3://BUCKET/PREFIX [env {OBJECT_STORE_ENV}; default "
        f"file://<data-dir>/objects with --data-dir, else {DEFAULT_OBJECT_STORE}]",
    )
    parser.add_argument(
        "--s3-endpoint", metavar="URL", default=None, help=f"S3 endpoint [env {S3_ENDPOINT_ENV}]"
    )
    parser.add_argument(
        "--data-dir",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"{data_dir_help} [env {DATA_DIR_ENV}]",
    )


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    add_bucket_arguments(parser, "also show what is only in <data-dir>/wal")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--segments",
        action="store_true",
        help="also list each segment of each partition (key, offsets, bytes, newest record)",
    )
    parser.add_argument(
        "--segment-object-bytes",
        metavar="BYTES",
        type=_segment_object_bytes,
        default=DEFAULT_SEGMENT_OBJECT_BYTES,
        help="the brokers' --segment-object-bytes, for what the next pass would roll and "
        f"compact (default {DEFAULT_SEGMENT_OBJECT_BYTES}, the brokers' default)",
    )
    parser.add_argument(
        "--commits",
        metavar="N",
        type=_non_negative,
        default=DEFAULT_COMMITS,
        help=f"show the last N commit objects (default {DEFAULT_COMMITS})",
    )


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer value={text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 value={value}")
    return value


def _segment_object_bytes(text: str) -> int:
    value = _non_negative(text)
    if not MIN_SEGMENT_OBJECT_BYTES <= value <= MAX_SEGMENT_OBJECT_BYTES:
        raise argparse.ArgumentTypeError(
            f"must be in [{MIN_SEGMENT_OBJECT_BYTES}, {MAX_SEGMENT_OBJECT_BYTES}] value={value}"
        )
    return value


def resolve_locations(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, Path | None]:
    """The object-store URL and the data dir: command line, then environment, then default."""
    data_dir: Path | None = args.data_dir
    if data_dir is None and env.get(DATA_DIR_ENV):
        data_dir = Path(env[DATA_DIR_ENV])
    url: str | None = args.object_store or env.get(OBJECT_STORE_ENV)
    if not url:
        url = f"file://{data_dir / 'objects'}" if data_dir is not None else DEFAULT_OBJECT_STORE
    return url, data_dir


def open_existing_store(url: str, s3_endpoint: str | None) -> ObjectStore:
    """The store `url` names; a file:// store must exist (opening one would create it)."""
    if url.startswith("file://") and not file_url_path(url).is_dir():
        raise InspectError(f"no object store directory url={url}")
    return open_object_store(url, s3_endpoint=s3_endpoint, default_root=Path(DEFAULT_OBJECT_STORE))


async def inspect(
    url: str,
    s3_endpoint: str | None,
    data_dir: Path | None,
    commits: int,
    now_ms: int,
    segment_object_bytes: int = DEFAULT_SEGMENT_OBJECT_BYTES,
) -> Report:
    store = open_existing_store(url, s3_endpoint)
    try:
        return await collect_bucket(
            store,
            commits=commits,
            now_ms=now_ms,
            data_dir=data_dir,
            segment_object_bytes=segment_object_bytes,
        )
    finally:
        await store.close()


def run_inspect(args: argparse.Namespace) -> int:
    """Run `tidelog inspect` and return the exit code."""
    prog = "tidelog inspect"
    url, data_dir = resolve_locations(args, os.environ)
    s3_endpoint = args.s3_endpoint or os.environ.get(S3_ENDPOINT_ENV)
    now_ms = int(time.time() * 1000)
    try:
        report = asyncio.run(
            inspect(url, s3_endpoint, data_dir, args.commits, now_ms, args.segment_object_bytes)
        )
    except ValueError as exc:  # a malformed URL
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (InspectError, ObjectStoreError, CorruptCommit, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(render_json(report) if args.json else render_report(report, segments=args.segments))
    return 0


def _add_arguments(parser: argparse.ArgumentParser, _: type[argparse.ArgumentParser]) -> None:
    add_inspect_arguments(parser)


COMMAND = SubCommand(
    order=20,
    help="show what lives in the bucket (and only in a WAL)",
    description="Read-only: the metadata head, brokers, partitions (with their segments and "
    "what the next retention/compaction pass would do), commit objects with their chunks, "
    "group offsets and, with --data-dir, what is only in the WAL.",
    add_arguments=_add_arguments,
    run=run_inspect,
)

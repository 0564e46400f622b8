"""The drill's view of the bucket, through `tidelog inspect --json` run as a subprocess.

Owns: one line of narration per look (the metadata head's fields, as inspect names
them; with a data dir, how many records are still only in the WAL). It
reads the CLI's JSON defensively: `tidelog inspect` is not the drill's to define, so
when a field is missing or the command fails, the line says so instead of failing the
drill. Inspect gets the store directly (not the brokers' fault wrapper or proxies), so
it never counts as a broker's read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tidelog.broker.drills.processes import StoreArgs

INSPECT_TIMEOUT_S = 30.0
_NOT_SHOWN = ("store", "head_id")  # long, and the same in every look


def inspect_line(store: StoreArgs, data_dir: Path | None = None) -> str:
    command = [sys.executable, "-m", "tidelog.broker.cli", "inspect", "--object-store", store.url]
    if store.endpoint:
        command += ["--s3-endpoint", store.endpoint]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    try:
        done = subprocess.run(
            [*command, "--json", "--commits", "1"],
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT_S,
            env={**os.environ, **store.env},
        )
        view = json.loads(done.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return f"tidelog inspect gave no view error={type(exc).__name__}"
    return summarize(view)


def summarize(view: Any) -> str:
    """One line from `tidelog inspect --json` output; tolerant of a changed layout."""
    if not isinstance(view, dict):
        return "tidelog inspect: unexpected output"
    head = view.get("head")
    parts = []
    if isinstance(head, dict):
        fields = [f"{k}={v}" for k, v in head.items() if k not in _NOT_SHOWN]
        parts.append("head " + " ".join(fields))
    wal = view.get("wal")
    if isinstance(wal, dict) and isinstance(wal.get("partitions"), list):
        only = sum(int(p.get("only_in_wal", 0)) for p in wal["partitions"] if isinstance(p, dict))
        parts.append(f"{only} records only in the WAL ({len(wal.get('files', []))} files)")
    return "tidelog inspect: " + ("; ".join(parts) if parts else "no head in its output")

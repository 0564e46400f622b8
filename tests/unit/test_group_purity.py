"""The group state machine's modules stay pure: no clock, no I/O, no asyncio, no logging.

Reads the imports of every `broker/groups/` module except the driver (coordinator.py)
with `ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.source_ast import parse_file

GROUPS = Path(__file__).resolve().parents[2] / "broker" / "groups"
DRIVER = "coordinator.py"  # the one module that owns timers, futures and the offsets store
ALLOWED_STDLIB = {
    "__future__",
    "collections",
    "collections.abc",
    "dataclasses",
    "enum",
    "typing",
    "uuid",
}
ALLOWED_PROJECT = ("tidelog.broker.groups.", "tidelog.protocol.errors")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(parse_file(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_state_machine_modules_import_no_clock_io_or_asyncio() -> None:
    modules = sorted(p for p in GROUPS.glob("*.py") if p.name != DRIVER)
    assert {p.name for p in modules} >= {"state.py", "rebalance.py", "join.py", "timers.py"}
    offenders = sorted(
        f"{path.name} imports {name}"
        for path in modules
        for name in imports_of(path)
        if name not in ALLOWED_STDLIB and not name.startswith(ALLOWED_PROJECT)
    )
    assert offenders == []


def test_state_py_stays_the_only_entry_point_of_the_transitions() -> None:
    # Handlers and the driver call `handle`; the transition modules are internal to it.
    transitions = {"join", "sync", "membership", "timers", "rebalance", "step"}
    internal = {f"tidelog.broker.groups.{name}" for name in transitions}
    importers = sorted(
        f"{path.relative_to(GROUPS.parents[1])} imports {name}"
        for path in GROUPS.parent.rglob("*.py")
        if not (path.parent == GROUPS and path.stem in transitions | {"state"})
        for name in imports_of(path) & internal
    )
    assert importers == []

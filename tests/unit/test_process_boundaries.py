"""Who may import the process launchers, and what they may import (read with `ast`).

broker/processes/ starts children and imports nothing else of tidelog, so payments can
start its embedded broker there and still never import broker code that runs
in-process; the benchmarks start theirs there too, and import nothing from tests/.
"""

from __future__ import annotations

from tests.unit.test_architecture import ROOT, imported_names, python_files

LAUNCHERS = "tidelog.broker.processes"


def _imports(folder: str) -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(ROOT)}:{line}", name)
        for path in python_files(folder)
        for line, name in imported_names(path)
    ]


def test_the_launchers_import_nothing_else_of_tidelog() -> None:
    offenders = [
        f"{where} imports {name}"
        for where, name in _imports("broker/processes")
        if name.startswith("tidelog") and not name.startswith(LAUNCHERS)
    ]
    assert offenders == []


def test_payments_imports_of_the_broker_only_its_launchers() -> None:
    offenders = [
        f"{where} imports {name}"
        for where, name in _imports("payments")
        if name.startswith(("tidelog.broker", "tidelog.storage", "tidelog.protocol"))
        and not name.startswith(LAUNCHERS)
    ]
    assert offenders == []


def test_benchmarks_import_nothing_from_the_tests() -> None:
    offenders = [
        f"{where} imports {name}"
        for where, name in _imports("bench")
        if name.split(".")[0] == "tests"
    ]
    assert offenders == []

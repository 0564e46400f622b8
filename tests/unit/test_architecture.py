"""The structure docs/architecture.md describes, held against the imports themselves.

Reads every product and test module's imports (type-checking-only ones included) with
`ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("broker", "protocol", "storage", "payments", "bench")


def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every absolute import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_code_imports_the_project_only_through_the_tidelog_namespace() -> None:
    # The source folders are importable at the top of a checkout too; importing them
    # there would load a second copy of every module beside tidelog.*'s.
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in python_files(*SOURCE_FOLDERS, "tests")
        for line, name in imported_names(path)
        if name.split(".")[0] in SOURCE_FOLDERS
    ]
    assert offenders == []


def test_the_namespace_links_every_source_folder() -> None:
    for folder in SOURCE_FOLDERS:
        link = ROOT / "tidelog" / folder
        assert link.is_symlink() and link.resolve() == ROOT / folder, link

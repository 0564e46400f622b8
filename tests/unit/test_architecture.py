"""The structure docs/architecture.md describes, held against the imports themselves.

Reads every product and test module's imports (type-checking-only ones included) with
`ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.unit.source_ast import parse_file

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("broker", "protocol", "storage", "payments", "bench")


def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every absolute import in `path`."""
    tree = parse_file(path)
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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "tidelog." + ".".join(parts)


def product_modules() -> dict[str, Path]:
    """Every product module by its dotted name; bench's microbenchmarks are tests."""
    return {
        module_name(path): path
        for path in python_files(*SOURCE_FOLDERS)
        if not path.name.startswith("test_")
    }


def project_imports(path: Path, known: Iterable[str]) -> set[str]:
    """The project modules `path` imports: `from a.b import c` names a.b.c when that is
    a module, else a.b (type-checking-only imports count too: they are still a cycle)."""
    known = set(known)
    found: set[str] = set()
    tree = parse_file(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                if name in known:
                    found.add(name)
                elif node.module in known:
                    found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: project_imports(path, modules) - {name} for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every set of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_product_modules_import_each_other_in_a_cycle() -> None:
    assert strongly_connected(import_graph()) == []


# Which room may import which: (importer prefix, imported prefixes it must not use).
# docs/architecture.md draws the same layers.
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    (
        "tidelog.protocol",
        ("tidelog.storage", "tidelog.broker", "tidelog.payments", "tidelog.bench"),
    ),
    ("tidelog.storage", ("tidelog.broker", "tidelog.payments", "tidelog.bench")),
    ("tidelog.broker", ("tidelog.payments", "tidelog.bench")),
    (
        "tidelog.broker.groups",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.admin",
        ),
    ),
    (
        "tidelog.broker.transactions",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.admin",
            "tidelog.broker.drills",
            "tidelog.storage",
        ),
    ),
    (
        "tidelog.broker.handlers",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.admin",
            "tidelog.broker.drills",
        ),
    ),
    (
        "tidelog.broker.admin",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.groups",
            "tidelog.broker.transactions",
        ),
    ),
    (
        "tidelog.broker.processes",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.handlers",
            "tidelog.broker.groups",
            "tidelog.broker.transactions",
            "tidelog.storage",
        ),
    ),
    (
        "tidelog.broker.drills",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.handlers",
            "tidelog.broker.groups",
            "tidelog.broker.transactions",
        ),
    ),
    (
        "tidelog.broker.observability",
        (
            "tidelog.broker.server",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.groups",
            "tidelog.broker.transactions",
            "tidelog.broker.admin",
            "tidelog.broker.drills",
        ),
    ),
    (
        "tidelog.broker.security.acl",
        (
            "tidelog.storage",
            "tidelog.protocol",
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.security.state",
            "tidelog.broker.security.options",
            "tidelog.broker.security.credentials",
            "tidelog.broker.security.listeners",
        ),
    ),
    (
        "tidelog.broker.security",
        (
            "tidelog.broker.server",
            "tidelog.broker.node",
            "tidelog.broker.connection",
            "tidelog.broker.handlers",
            "tidelog.broker.groups",
            "tidelog.broker.transactions",
            "tidelog.broker.admin",
            "tidelog.broker.drills",
            "tidelog.broker.observability",
        ),
    ),
    ("tidelog.payments", ("tidelog.storage", "tidelog.protocol", "tidelog.bench")),
]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_each_room_imports_only_the_rooms_below_it() -> None:
    offenders = [
        f"{importer} imports {imported}"
        for importer, imports in sorted(import_graph().items())
        for room, forbidden in FORBIDDEN
        if within(importer, room)
        for imported in sorted(imports)
        if any(within(imported, f) for f in forbidden)
    ]
    assert offenders == []


# Of broker/security/, admin (tidelog users) may use only the security document's formats:
# pure functions, so the offline tool writes credentials exactly as the brokers read them.
ADMIN_SECURITY_MODULES = {"tidelog.broker.security.credentials", "tidelog.broker.security.users"}


def test_admin_uses_only_the_security_document_formats() -> None:
    offenders = [
        f"{importer} imports {imported}"
        for importer, imports in sorted(import_graph().items())
        if within(importer, "tidelog.broker.admin")
        for imported in sorted(imports)
        if within(imported, "tidelog.broker.security") and imported not in ADMIN_SECURITY_MODULES
    ]
    assert offenders == []


def test_kio_is_imported_only_inside_protocol() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in python_files(*SOURCE_FOLDERS)
        if not path.name.startswith("test_micro") and path.relative_to(ROOT).parts[0] != "protocol"
        for line, name in imported_names(path)
        if name.split(".")[0] == "kio"
    ]
    assert offenders == []


def test_no_product_file_is_over_500_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in python_files(*SOURCE_FOLDERS)
        if (n := len(path.read_text().splitlines())) > 500
    ]
    assert long == []


def test_product_code_imports_nothing_from_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in python_files(*SOURCE_FOLDERS)
        for line, name in imported_names(path)
        if name.split(".")[0] == "tests"
    ]
    assert offenders == []

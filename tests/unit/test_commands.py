"""The `tidelog` sub-command registry (`broker/commands.py`): what is installed, and what a
broken plug-in does. No command runs; the parser is only built and read."""

from __future__ import annotations

import argparse
import ast
import logging
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from tests.unit.source_ast import parse_file
from tidelog.bench import command as bench_command
from tidelog.broker import cli, commands
from tidelog.broker.commands import ENTRY_POINT_GROUP, Command, discover
from tidelog.payments import cli as payments_cli

ROOT = Path(__file__).resolve().parents[2]
# in `tidelog --help` order
INSTALLED = ["topics", "groups", "transactions", "inspect", "users", "drill", "payments", "bench"]

# mypy checks these against the protocol: payments/ and bench/ only copy its shape.
PAYMENTS: Command = payments_cli.COMMAND
BENCH: Command = bench_command.COMMAND


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_installed_commands_are_the_expected_set_in_help_order() -> None:
    loaded, broken = discover()
    assert [c.name for c in loaded] == INSTALLED
    assert broken == []


def test_top_level_help_lists_serve_then_every_plug_in_with_its_help() -> None:
    parser, runners = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in sub._choices_actions}
    assert list(helps) == ["serve", *INSTALLED]
    assert helps == {
        "serve": "run a broker",
        "topics": "list, describe, create, delete and alter topics",
        "groups": "list consumer groups, describe one with its lag",
        "transactions": "list transactions, describe one, show a partition's producers",
        "inspect": "show what lives in the bucket (and only in a WAL)",
        "users": "add, delete and list SASL/SCRAM users (in the bucket; brokers up or down)",
        "drill": "failure drills on throw-away brokers (replace, zombie, object-store-outage)",
        "payments": "the payments CQRS reference application (demo, rebuild, api)",
        "bench": "benchmark suite: tidelog side by side with Tansu 0.6",
    }
    assert sorted(runners) == sorted(INSTALLED)


def test_a_plug_in_that_fails_to_load_is_named_once_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = [
        entry_point("groups", "tidelog.broker.admin.groups:COMMAND"),
        entry_point("missing", "tidelog.no_such_module:COMMAND"),
        entry_point("typo", "tidelog.broker.admin.inspect:NO_SUCH_COMMAND"),
        entry_point("notone", "tidelog.broker.commands:ENTRY_POINT_GROUP"),
    ]
    with caplog.at_level(logging.WARNING, logger="tidelog.commands"):
        loaded, broken = discover(found)
    assert [c.name for c in loaded] == ["groups"]
    assert [(b.name, b.error.split(":")[0]) for b in broken] == [
        ("missing", "ModuleNotFoundError"),
        ("typo", "AttributeError"),
        ("notone", "not a command"),
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    for line, name in zip(lines, ["missing", "typo", "notone"], strict=True):
        assert line.startswith("command unavailable, skipped ")
        assert f"name={name} " in line and "\n" not in line


def test_serve_still_parses_when_a_plug_in_is_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = list(entry_points(group=ENTRY_POINT_GROUP))
    broken = entry_point("payments", "tidelog.no_such_module:COMMAND")
    rest = [ep for ep in installed if ep.name != "payments"]

    def with_broken_payments(*, group: str) -> list[EntryPoint]:
        assert group == ENTRY_POINT_GROUP
        return [broken, *rest]

    monkeypatch.setattr(commands, "entry_points", with_broken_payments)
    parser, runners = cli.build_parser()
    assert parser.parse_args(["serve"]).command == "serve"
    assert sorted(runners) == sorted(name for name in INSTALLED if name != "payments")


def test_a_plug_in_cannot_take_the_name_of_serve(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    installed = list(entry_points(group=ENTRY_POINT_GROUP))
    impostor = entry_point("serve", "tidelog.broker.admin.groups:COMMAND")
    monkeypatch.setattr(commands, "entry_points", lambda *, group: [impostor, *installed])
    with caplog.at_level(logging.WARNING, logger="tidelog.commands"):
        parser, runners = cli.build_parser()
    assert "serve" not in runners and sorted(runners) == sorted(INSTALLED)
    assert [r.getMessage() for r in caplog.records] == [
        "command unavailable, skipped name=serve error=name taken"
    ]
    assert "durability" in vars(parser.parse_args(["serve"]))  # the real serve, not groups


def test_a_second_entry_point_of_the_same_name_is_ignored() -> None:
    found = [
        entry_point("groups", "tidelog.broker.admin.groups:COMMAND"),
        entry_point("groups", "tidelog.no_such_module:COMMAND"),
    ]
    loaded, broken = discover(found)
    assert [c.name for c in loaded] == ["groups"] and broken == []


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import, nested ones (inside functions) included."""
    out = []
    for node in ast.walk(parse_file(path)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_the_broker_imports_neither_payments_nor_bench() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "broker").rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[:2] in (["tidelog", "payments"], ["tidelog", "bench"])
    ]
    assert offenders == []


def test_payments_and_bench_register_without_importing_the_broker() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in (ROOT / "payments" / "cli.py", ROOT / "bench" / "command.py")
        for line, name in _imports(path)
        if name.startswith("tidelog.broker")
    ]
    assert offenders == []

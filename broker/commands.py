"""The pluggable sub-commands of `tidelog`: found through the `tidelog.commands` entry points.

Owns: the `Command` protocol a sub-command meets (and `SubCommand`, a ready-made one),
`discover` (load every entry point of the group, ordered by each command's `order`),
and `add_commands` (one sub-parser per command, with its help and description).
`serve` is built into broker/cli.py; every other command (topics, groups, transactions,
inspect, drill, payments, bench) is an entry point in pyproject.toml, so the broker imports none of
them, and payments/ and bench/ register themselves without importing the broker.

Guarantees: a command whose entry point fails to load, loads something that is not a
`Command`, or takes a name the parser already has (`serve`), is skipped and named in
one warning line; the others and `serve` still work. Nothing here runs a command's
code beyond `add_arguments` and `run`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "tidelog.commands"

log = logging.getLogger("tidelog.commands")


@runtime_checkable
class Command(Protocol):
    """One `tidelog` sub-command. `help` is its line in `tidelog --help`, and `order` its
    place there (lower first, then by name: installers sort entry points by name);
    `description` heads `tidelog <name> --help`. `parser_class` is the class nested
    sub-parsers must use, so that their usage errors also exit 2 with one line."""

    @property
    def order(self) -> int: ...

    @property
    def help(self) -> str: ...

    @property
    def description(self) -> str: ...

    def add_arguments(
        self, parser: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]
    ) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


AddArguments = Callable[[argparse.ArgumentParser, type[argparse.ArgumentParser]], None]
Runner = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class SubCommand:
    """A `Command` made of two functions: what the broker's own plug-ins use. (payments/
    and bench/ do not import the broker; their objects only have the same shape.)"""

    order: int
    help: str
    description: str
    add_arguments: AddArguments
    run: Runner


@dataclass(frozen=True)
class LoadedCommand:
    name: str  # the entry point's name: the word after `tidelog`
    command: Command


@dataclass(frozen=True)
class BrokenCommand:
    name: str
    target: str  # what the entry point names, `module:attribute`
    error: str


def discover(
    found: Iterable[EntryPoint] | None = None,
) -> tuple[list[LoadedCommand], list[BrokenCommand]]:
    """Load the commands (by default: the installed `tidelog.commands` entry points);
    each one that cannot be loaded is logged once and returned among the broken."""
    loaded: list[LoadedCommand] = []
    broken: list[BrokenCommand] = []
    names: set[str] = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP) if found is None else found:
        if ep.name in names:  # e.g. two installs of one distribution on the path
            continue
        names.add(ep.name)
        try:
            obj: Any = ep.load()
        except Exception as exc:  # any import-time failure of a plug-in
            broken.append(BrokenCommand(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
            continue
        if _is_command(obj):
            loaded.append(LoadedCommand(ep.name, obj))
        else:
            broken.append(BrokenCommand(ep.name, ep.value, f"not a command: {type(obj)!r}"))
    for b in broken:
        log.warning(
            "command unavailable, skipped name=%s target=%s error=%s", b.name, b.target, b.error
        )
    return sorted(loaded, key=lambda c: (c.command.order, c.name)), broken


def _is_command(obj: object) -> bool:
    return (
        isinstance(obj, Command)
        and isinstance(obj.order, int)
        and isinstance(obj.help, str)
        and isinstance(obj.description, str)
        and callable(obj.add_arguments)
        and callable(obj.run)
    )


def add_commands(
    sub: argparse._SubParsersAction[Any],
    commands: Iterable[LoadedCommand],
    parser_class: type[argparse.ArgumentParser],
) -> dict[str, Runner]:
    """A sub-parser per command; returns each command's runner by name."""
    runners: dict[str, Runner] = {}
    for loaded in commands:
        command = loaded.command
        if loaded.name in sub.choices:  # argparse would silently replace the first one
            log.warning("command unavailable, skipped name=%s error=name taken", loaded.name)
            continue
        parser = sub.add_parser(loaded.name, help=command.help, description=command.description)
        command.add_arguments(parser, parser_class)
        runners[loaded.name] = command.run
    return runners

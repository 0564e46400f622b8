"""`tidelog users add|delete|list`: SCRAM users in the bucket, with the brokers up or down.

Owns: the `users` sub-command (`COMMAND`, the `tidelog.commands` entry point), its
arguments, reading the password (one line of stdin; from a terminal, without echo)
and the run. The bucket options and their environment variables are `tidelog
inspect`'s. Changes go through storage/security_doc.py's conditional write, so they
are safe beside running brokers (which see them within `--security-refresh-ms`) and
beside another `tidelog users`.

Guarantees: the password is never printed, logged or stored (only salted keys,
broker/security/credentials.py); exit 0 on success; a bad argument or an empty
password exits 2 with one line on stderr; an unknown user, an unreadable document or
an unreachable bucket exits 1 with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tidelog.broker.admin.groups import table
from tidelog.broker.admin.inspect import (
    DEFAULT_OBJECT_STORE,
    S3_ENDPOINT_ENV,
    add_bucket_arguments,
    open_existing_store,
    resolve_locations,
)
from tidelog.broker.admin.report import InspectError
from tidelog.broker.commands import SubCommand
from tidelog.broker.security.credentials import (
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    SCRAM_MECHANISMS,
    make_credential,
)
from tidelog.broker.security.users import delete_credential, set_credential, user_credentials
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.security_doc import SecurityDocError, SecurityDocStore
from tidelog.storage.store_url import open_object_store

MECHANISM_CHOICES = (*SCRAM_MECHANISMS, "all")


class UsersError(Exception):
    """A user mistake or a refused change: one line, exit 1."""


# -- arguments -------------------------------------------------------------------------


def _iterations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer value={text!r}") from None
    if not MIN_ITERATIONS <= value <= MAX_ITERATIONS:
        raise argparse.ArgumentTypeError(
            f"must be in [{MIN_ITERATIONS}, {MAX_ITERATIONS}] value={value}"
        )
    return value


def _mechanism(text: str) -> str:
    for choice in MECHANISM_CHOICES:
        if text.strip().upper() == choice.upper():
            return choice
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(MECHANISM_CHOICES)}, got {text!r}"
    )


def add_users_arguments(users: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    sub = users.add_subparsers(
        dest="users_command", metavar="ACTION", parser_class=parser_class, required=True
    )
    add = sub.add_parser(
        "add",
        help="add a user or replace its password (read from stdin)",
        description="Add a user, or replace its credentials, reading the password from one "
        "line of stdin (from a terminal: a prompt without echo). Only salted SCRAM keys are "
        "stored.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--mechanism",
        type=_mechanism,
        default="all",
        metavar="|".join(MECHANISM_CHOICES),
        help="which SCRAM credentials to make (default all: both, so PLAIN works too)",
    )
    add.add_argument(
        "--iterations",
        type=_iterations,
        default=MIN_ITERATIONS,
        metavar="N",
        help=f"PBKDF2 iterations, {MIN_ITERATIONS}-{MAX_ITERATIONS} (default {MIN_ITERATIONS})",
    )
    delete = sub.add_parser("delete", help="delete a user's credentials")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument(
        "--mechanism",
        type=_mechanism,
        default="all",
        metavar="|".join(MECHANISM_CHOICES),
        help="which credentials to delete (default all: the user is gone)",
    )
    listing = sub.add_parser("list", help="list users with their mechanisms and iterations")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for parser in (add, delete, listing):
        add_bucket_arguments(parser, "the brokers' data dir, for the default store")


# -- the password ----------------------------------------------------------------------


def read_password(stdin: TextIO) -> str:
    """One line of `stdin` without its line end; UsersError if empty."""
    tty = stdin.isatty()
    password = getpass.getpass("password: ") if tty else stdin.readline().rstrip("\r\n")
    if not password:
        raise UsersError("empty password (give it as one line on stdin)")
    return password


# -- the changes -----------------------------------------------------------------------


def _mechanisms(choice: str) -> tuple[str, ...]:
    return SCRAM_MECHANISMS if choice == "all" else (choice,)


async def add_user(
    store: ObjectStore, name: str, password: str, mechanisms: tuple[str, ...], iterations: int
) -> None:
    if not name:
        raise UsersError("empty user name")
    creds = {m: make_credential(password, m, iterations) for m in mechanisms}

    def edit(doc: dict[str, Any]) -> None:
        for mechanism, cred in creds.items():
            set_credential(doc, name, mechanism, cred)

    await SecurityDocStore(store).change(edit)


async def delete_user(store: ObjectStore, name: str, mechanisms: tuple[str, ...]) -> list[str]:
    """The mechanisms deleted; UsersError (nothing written) if the user had none of them."""

    def edit(doc: dict[str, Any]) -> list[str]:
        deleted = [m for m in mechanisms if delete_credential(doc, name, m)]
        if not deleted:
            raise UsersError(f"no such user name={name}" + _which(mechanisms))
        return deleted

    deleted: list[str] = await SecurityDocStore(store).change(edit)
    return deleted


def _which(mechanisms: tuple[str, ...]) -> str:
    return "" if mechanisms == SCRAM_MECHANISMS else f" mechanism={mechanisms[0]}"


async def list_users(store: ObjectStore) -> list[dict[str, Any]]:
    docs = SecurityDocStore(store)
    await docs.refresh()
    return [
        {"name": name, "mechanisms": {m: c.iterations for m, c in creds.items()}}
        for name, creds in user_credentials(docs.doc).items()
    ]


def render_list(users: list[dict[str, Any]]) -> str:
    rows = [
        (
            u["name"],
            ",".join(u["mechanisms"]),
            ",".join(str(i) for i in u["mechanisms"].values()),
        )
        for u in users
    ]
    return table(("USER", "MECHANISMS", "ITERATIONS"), rows)


# -- entry point -----------------------------------------------------------------------


def _open(args: argparse.Namespace) -> ObjectStore:
    url, _ = resolve_locations(args, os.environ)
    s3_endpoint = args.s3_endpoint or os.environ.get(S3_ENDPOINT_ENV)
    if args.users_command == "add":  # the first admin may come before the first broker
        return open_object_store(
            url, s3_endpoint=s3_endpoint, default_root=Path(DEFAULT_OBJECT_STORE)
        )
    return open_existing_store(url, s3_endpoint)


def run_users(args: argparse.Namespace) -> int:
    """Run `tidelog users ...` and return the exit code."""
    prog = f"tidelog users {args.users_command}"
    try:
        password = read_password(sys.stdin) if args.users_command == "add" else ""
    except UsersError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

    async def main() -> str:
        store = _open(args)
        try:
            if args.users_command == "add":
                mechanisms = _mechanisms(args.mechanism)
                await add_user(store, args.name, password, mechanisms, args.iterations)
                return f"user {args.name}: {', '.join(mechanisms)} ({args.iterations} iterations)"
            if args.users_command == "delete":
                deleted = await delete_user(store, args.name, _mechanisms(args.mechanism))
                return f"user {args.name}: deleted {', '.join(deleted)}"
            users = await list_users(store)
            return json.dumps(users, indent=2) if args.json else render_list(users)
        finally:
            await store.close()

    try:
        print(asyncio.run(main()))
    except ValueError as exc:  # a malformed URL
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (UsersError, InspectError, ObjectStoreError, SecurityDocError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


COMMAND = SubCommand(
    order=25,
    help="add, delete and list SASL/SCRAM users (in the bucket; brokers up or down)",
    description="Users and their salted SCRAM credentials, kept in the bucket's security "
    "document and shared by every broker on it (docs/security.md).",
    add_arguments=add_users_arguments,
    run=run_users,
)

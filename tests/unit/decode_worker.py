"""A child process that decodes request bodies, so a decoder that aborts kills it, not pytest.

kio's native reader aborts the whole interpreter (a Rust allocation failure,
SIGABRT, nothing to catch) when it sizes an array by a hostile count. A test
that ran such a frame in-process would not fail, it would end the run. The
child sets ``RLIMIT_AS`` a little above what it uses at start, so an
over-allocation fails there at once whatever the machine's overcommit policy,
and the parent sees a dead worker with its exit status.

Two modes per frame (a request frame without its size prefix):

* ``CODEC``: ``protocol.codec.decode_request``, the broker's own path.
* ``KIO``: kio's reader alone, no guard in front; the decoded entity is then
  searched for ``None`` where its annotation does not allow ``None``.

Run as ``python -m tests.unit.decode_worker``; ``DecodeWorker`` is the parent side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import IO, Any, NamedTuple, Union, get_args, get_origin

CODEC = "codec"
KIO = "kio"
# Room for decoding small test frames (and nothing like a count-sized array).
HEADROOM_BYTES = 256 << 20
_LENGTH = struct.Struct(">I")
_ROOT = Path(__file__).resolve().parents[2]


class Outcome(NamedTuple):
    """What happened to one frame: decoded, refused (DecodeError), error, or died."""

    kind: str
    detail: str = ""


# -- child side ---------------------------------------------------------------------------


def _limit_address_space() -> None:
    import resource

    with open("/proc/self/status") as status:
        vm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = vm_kib * 1024 + HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _forbidden_nulls(value: Any, path: str = "") -> list[str]:
    """Paths of fields that hold None although their annotation does not allow it."""
    if isinstance(value, tuple):
        return [hit for item in value for hit in _forbidden_nulls(item, path)]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return []
    hits: list[str] = []
    for field in dataclasses.fields(value):
        name = f"{path}.{field.name}" if path else field.name
        item = getattr(value, field.name)
        if item is None:
            annotation = field.type
            nullable = get_origin(annotation) in (types.UnionType, Union) and type(
                None
            ) in get_args(annotation)
            if not nullable:
                hits.append(name)
        else:
            hits.extend(_forbidden_nulls(item, name))
    return hits


def _decode(mode: str, frame: bytes) -> Outcome:
    from kio.serial import entity_reader

    from tidelog.protocol.codec import decode_request, request_schema
    from tidelog.protocol.errors import DecodeError
    from tidelog.protocol.headers import parse_request_header

    try:
        header, offset = parse_request_header(frame)
        if mode == CODEC:
            decode_request(header.api_key, header.api_version, frame, offset)
            return Outcome("decoded")
        entity, _size = entity_reader(request_schema(header.api_key, header.api_version))(
            frame, offset
        )
    except DecodeError as error:
        return Outcome("refused", str(error))
    except Exception as error:  # kio's own errors: caught, so the process lives
        return Outcome("error", f"{type(error).__name__}: {error}")
    nulls = _forbidden_nulls(entity)
    return Outcome("null", ",".join(nulls)) if nulls else Outcome("decoded")


def _read_message(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return stream.read(size)


def main() -> None:
    import tidelog.protocol.codec  # noqa: F401  (imported before the limit: its size is baseline)

    _limit_address_space()
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while (message := _read_message(stdin)) is not None:
        mode, _, frame = message.partition(b"\n")
        outcome = _decode(mode.decode(), frame)
        stdout.write(json.dumps(outcome) + "\n")
        stdout.flush()


# -- parent side --------------------------------------------------------------------------


class DecodeWorker:
    """Sends frames to a child process; starts a new child after one dies."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RUST_BACKTRACE": "0", "PYTHONPATH": str(_ROOT)}
        return subprocess.Popen(
            [sys.executable, "-m", "tests.unit.decode_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_ROOT,
            env=env,
        )

    def decode(self, frame: bytes, mode: str = CODEC) -> Outcome:
        child = self._child if self._child and self._child.poll() is None else self._start()
        self._child = child
        assert child.stdin is not None and child.stdout is not None
        message = mode.encode() + b"\n" + frame
        try:
            child.stdin.write(_LENGTH.pack(len(message)) + message)
            child.stdin.flush()
            line = child.stdout.readline()
        except BrokenPipeError:
            line = b""
        if line:
            kind, detail = json.loads(line)
            return Outcome(kind, detail)
        return self._died(child)

    def _died(self, child: subprocess.Popen[bytes]) -> Outcome:
        returncode = child.wait()
        assert child.stderr is not None
        stderr = child.stderr.read().decode(errors="replace").strip().splitlines()
        self._reap(child)
        first_line = stderr[0] if stderr else ""
        return Outcome("died", f"returncode={returncode} stderr={first_line}")

    def _reap(self, child: subprocess.Popen[bytes]) -> None:
        self._child = None
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                # stdin of a child that died with input unread cannot flush.
                with contextlib.suppress(BrokenPipeError):
                    stream.close()
        child.wait()

    def close(self) -> None:
        if self._child is not None:
            self._reap(self._child)


if __name__ == "__main__":
    main()

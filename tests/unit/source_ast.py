"""Parse a source file with `ast`, safe from CPython 3.11's shared AST recursion counter.

CPython 3.11 keeps the counter `ast.parse` checks ("AST constructor recursion depth
mismatch") per interpreter, not per call (python/cpython#106905). When a garbage
collection runs inside `ast.parse` and a finalizer logs a traceback — an asyncio
future whose exception nobody retrieved, as a fenced aiokafka producer leaves behind —
3.11's traceback module calls `ast.parse` again, the inner call resets the counter, and
the outer one fails with SystemError. With the cyclic collector off while parsing, no
finalizer runs in between (the parse itself frees only objects it made).
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path


def parse_file(path: Path) -> ast.Module:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text(), filename=str(path))
    finally:
        if enabled:
            gc.enable()

"""`parse_file` holds while garbage whose finalizer parses is waiting to be collected:
the case that made a plain `ast.parse` fail with "AST constructor recursion depth
mismatch" in a full run (tests/unit/source_ast.py)."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

from tests.unit.source_ast import parse_file

SOURCE = Path(__file__).resolve().parents[2] / "broker" / "node.py"


class _ParsesWhenCollected:
    """Cyclic garbage whose finalizer calls ast.parse, as a logged traceback does."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        ast.parse("def f():\n    return [x for x in y if (a and (b or c))]\n")


def _leave_garbage() -> None:
    gc.disable()
    for _ in range(30):
        _ParsesWhenCollected()
    gc.enable()


def test_parse_file_is_not_disturbed_by_finalizers_that_parse() -> None:
    expected = ast.dump(parse_file(SOURCE))
    threshold = gc.get_threshold()
    gc.set_threshold(50)
    try:
        for _ in range(20):
            _leave_garbage()
            assert ast.dump(parse_file(SOURCE)) == expected
            gc.collect()
    finally:
        gc.set_threshold(*threshold)
        gc.collect()

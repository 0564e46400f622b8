"""Type aliases shared by the protocol modules (no runtime behaviour)."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["BytesLike"]

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""Any contiguous byte buffer the readers accept without copying."""

"""Allocator tuning for the hot path: large buffers are reused, not re-faulted.

Owns: the glibc malloc settings of the broker process. Every produce request brings
megabyte-sized buffers. glibc serves allocations over its (adaptive) mmap threshold
with fresh mmap()ed pages and hands freed memory back to the kernel, so each request
pays page faults on first touch of its buffers; on a VM that cost dominated produce
(measured: about 130 MB/s before, 250-380 MB/s after, `bench/throughput.py`). Keeping
buffers up to 32 MiB on the heap and trimming only above 128 MiB of free heap makes
them reusable. No effect (and no error) on a libc without mallopt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 128 << 20


def tune_malloc() -> bool:
    """Apply the settings; returns whether the C library accepted them."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    log.debug("malloc tuned ok=%s", ok)
    return ok

"""Memory tuning for the hot path: large buffers are reused, not re-faulted, and the
garbage collector does not stop the event loop to walk start-up objects.

Owns: the glibc malloc settings and the garbage-collector settings of the broker
process. Every produce request brings
megabyte-sized buffers. glibc serves allocations over its (adaptive) mmap threshold
with fresh mmap()ed pages and hands freed memory back to the kernel, so each request
pays page faults on first touch of its buffers; on a VM that cost dominated produce
(measured: about 130 MB/s before, 250-380 MB/s after, `bench/throughput.py`). Keeping
buffers up to 32 MiB on the heap and trimming only above 128 MiB of free heap makes
them reusable. No effect (and no error) on a libc without mallopt.

Python's full (generation 2) collections walk every tracked object, and most of them
were made at start-up and live for ever (boto3's service models alone are hundreds of
thousands). Each full collection stopped the event loop for 60-100 ms while
collecting nothing, which was the whole produce p99 in object mode above the flush
interval. `tune_gc` moves everything alive once the broker is ready into the
permanent generation, which collections skip, and makes young collections (and so
full ones) about 14 times rarer: what stays alive after start-up (the tail's batches
above all) still grows a full collection to tens of milliseconds, so how often one
runs decides how many requests wait on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


GC_THRESHOLDS = (10_000, 10, 10)  # Python's defaults: (700, 10, 10)


def tune_gc() -> int:
    """Collect once, exempt every object alive now from later collections, collect
    less often; returns how many objects were frozen. Call when start-up is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    frozen = gc.get_freeze_count()
    log.debug("gc tuned frozen=%d thresholds=%s", frozen, GC_THRESHOLDS)
    return frozen

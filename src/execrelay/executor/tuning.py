"""Process-wide tuning for an exec-server process (called once by the CLI at start-up).

glibc's malloc returns freed memory at the top of the heap to the OS as soon as 128 KiB are
free, and serves blocks above its (dynamic) mmap threshold with fresh mmap()s.  An executor
answering pipelined ``fs/readFile`` requests allocates and frees tens of 64-200 KiB buffers per
loop iteration (file data, base64 text, JSON), so with the defaults every iteration unmaps
and re-faults its pages: profiled, page faults and page clearing were the top kernel symbols
and the CPU per 64 KiB read doubled at window 16.  Keeping up to 128 MiB at the heap top and
using mmap only above 32 MiB removes that churn; buffers above 32 MiB (huge reads) still go
back to the OS at once.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3


def tune_malloc(trim_threshold: int = 128 << 20, top_pad: int = 16 << 20,
                mmap_threshold: int = 32 << 20) -> bool:
    """Apply the settings with ``mallopt`` (glibc only); returns True if they were applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    ok = bool(mallopt(M_TRIM_THRESHOLD, trim_threshold)) and ok
    ok = bool(mallopt(M_TOP_PAD, top_pad)) and ok
    return ok

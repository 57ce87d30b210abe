"""Keep freed memory for the next layer: glibc allocator settings for a process that scores many networks.

Every layer of a Zen-Score forward allocates a fresh activation map (up to tens of MB at 224x224, batch 16) and frees
the one before. With glibc's defaults, a block above the mmap threshold is mapped and unmapped each time, and freed
memory at the top of the heap beyond the trim threshold goes back to the kernel, so the next map of that size
page-faults its way in again. ``reuse_freed_memory`` raises the mmap threshold to glibc's maximum (32 MiB on 64-bit)
and the trim threshold to 1 GiB, so those blocks stay in the process and are reused. Scores are unchanged (the same
operations on the same numbers); the price is that the process keeps its peak heap resident. Measured with
``tools/bench_allocator.py`` (README, Zen-Score: "Against the official code").

It is process-wide, so importing zendeploy never does it: the scorers call it where they set the torch thread count
(``LocalScorer`` for this process, its worker processes, ``RayScorer``'s tasks), and so do ``zendeploy score`` and
``zendeploy proxies``. ``ZENDEPLOY_MALLOC=system`` leaves the allocator alone. Where the C library is not glibc
(macOS, musl) it does nothing and says so in the log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Optional

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2 ** 20  # HEAP_MAX_SIZE / 2 on 64-bit: mallopt refuses more
TRIM_THRESHOLD = 2 ** 30
OPT_OUT = "ZENDEPLOY_MALLOC"

_applied: Optional[bool] = None


def reuse_freed_memory() -> bool:
    """Apply the settings once per process; True when they are in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(OPT_OUT, "").strip().lower() == "system":
        log.debug("%s=system: the C allocator keeps its defaults", OPT_OUT)
        return False
    if not sys.platform.startswith("linux"):
        log.debug("allocator settings are for glibc; %s keeps its allocator as it is", sys.platform)
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (and mallopt's options)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("not glibc: the C allocator keeps its defaults")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("glibc mmap threshold %d MiB, trim threshold %d MiB: %s", MMAP_THRESHOLD >> 20, TRIM_THRESHOLD >> 20,
              "set" if _applied else "refused")
    return _applied

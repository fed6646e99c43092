"""glibc malloc settings for a daemon that streams 1 MiB blocks.

Every large object moves through 1 MiB blocks (a read batch is eight of them, a write stage
one or two), each a fresh allocation that is freed a few milliseconds later. With glibc's
defaults the freed top of the heap beyond 2 MiB goes back to the kernel at once (and a block
over the dynamic mmap threshold is mmapped and unmapped), so the next block faults its 256
pages in again: profiled on 64 MiB GETs, copying a decrypted block out of its pooled buffer
cost ~0.2 ms per MiB, nearly all of it page faults, where the copy alone is ~0.03 ms.

So the daemon keeps up to TRIM_BYTES free at the top of each heap, blocks below MMAP_BYTES come
from the heap, and at most ARENAS arenas (glibc's default is eight per core) bound what the
worker threads keep. bench/README.md (round 14): 64 MiB PUT +9% and GET +6% on this machine,
daemon CPU per GiB -9% on PUTs, peak PSS +20 MiB. Not a library: glibc exposes these only
through mallopt(3), called here with ctypes; elsewhere (musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("stowage.daemon")

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

TRIM_BYTES = 16 << 20
MMAP_BYTES = 4 << 20
ARENAS = 4


def tune_malloc() -> bool:
    """Apply the settings to this process; False where the C library has no mallopt or refuses."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_BYTES), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_ARENA_MAX, ARENAS)))
    if not done:
        log.info("malloc settings not applied (not glibc?)")
    return done

"""Open a file only if the kernel can do it without waiting for a disk: openat2(2) with
RESOLVE_CACHED (Linux 5.12+), which fails with EAGAIN unless every component of the path is
already in the dentry cache. The event loop's reads of packed records (segments._read_cached)
open volume files with it, so an evicted dentry on a stalled disk sends the read to a worker
thread instead of stopping the loop. The standard library has no openat2: it is called through
ctypes (the syscall number is 437 on every architecture Linux has added it to since 5.6)."""

from __future__ import annotations

import ctypes
import errno
import os

_SYS_OPENAT2 = 437
_AT_FDCWD = -100
_RESOLVE_CACHED = 0x20


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def open_cached(path: str) -> int:
    """A read-only descriptor of `path`, opened from the dentry cache alone. BlockingIOError
    when a lookup would have to read a directory; OSError ENOSYS (or EINVAL) where the kernel
    has no openat2 or no RESOLVE_CACHED."""
    # O_NONBLOCK: a FIFO where a volume file belongs would otherwise stop the event loop until
    # a writer came (a GET of a packed object hung; found by the FIFO test, one run in three)
    how = _OpenHow(os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, 0, _RESOLVE_CACHED)
    fd = _syscall(_SYS_OPENAT2, _AT_FDCWD, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.EAGAIN:
            raise BlockingIOError(err, "not all of the path is in the dentry cache", path)
        raise OSError(err, os.strerror(err), path)
    return int(fd)

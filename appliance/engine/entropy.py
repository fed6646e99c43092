"""Random bytes for the write path's ids, data keys and nonces, drawn from the OS a page at a time.

Why: `os.urandom` (behind `secrets`) releases the GIL around its getrandom(2), and on the event
loop under load each release is a hand-off: a worker thread waiting for the GIL takes it and the
loop waits for its turn back. A 4 KiB PUT drew three to four times (segment id, version id, data
key, the key's wrapping nonce) at ~16 us of loop time each, against ~0.5 us unloaded. Here one
getrandom call fills a page that serves a few hundred draws, under a lock that never waits on
I/O. The bytes are the kernel CSPRNG's either way and each is handed out once; a forked child
starts with an empty page, so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import base64
import os
import threading

PAGE_BYTES = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._page = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if n > PAGE_BYTES // 4:
            return os.urandom(n)
        with self._lock:
            if self._at + n > len(self._page):
                self._page, self._at = os.urandom(PAGE_BYTES), 0
            out = self._page[self._at:self._at + n]
            self._at += n
            return out

    def forget(self) -> None:
        self._lock = threading.Lock()  # a fork may copy it held by a thread the child lacks
        self._page, self._at = b"", 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def token_bytes(n: int) -> bytes:
    """`secrets.token_bytes(n)`."""
    return _pool.take(n)


def token_hex(n: int) -> str:
    """`secrets.token_hex(n)`."""
    return _pool.take(n).hex()


def token_urlsafe(n: int) -> str:
    """`secrets.token_urlsafe(n)`."""
    return base64.urlsafe_b64encode(_pool.take(n)).rstrip(b"=").decode("ascii")

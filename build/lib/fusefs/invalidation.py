"""Keeping the kernel's caches true to changes made through S3 (or any other frontend).

The store's listener (synchronous, inside the commit) records which keys changed, unless the
change is the mount's own (the kernel already knows those). The store's commit hook then
computes which cached inodes and directory entries to drop and tells the kernel, in a thread,
before the committing request (an S3 PUT or DELETE) is answered: so a change is visible in the
mount as soon as the S3 client has its response. invalidate_entry blocks while a related FUSE
request is in flight, which is why it never runs inside a request handler or on the loop thread.
"""

from __future__ import annotations

import pyfuse3
import trio

from appliance.engine.errors import NoSuchBucket, NoSuchKey

from .inodes import InodeTable
from .tree import Tree

INVALIDATE_TIMEOUT = 2.0
Call = tuple[str, int, bytes]


class Invalidation:
    """Mixin of StowageFS: outside changes -> kernel notifications."""

    inodes: InodeTable
    tree: Tree
    pending: dict[tuple[str, str], None]
    pending_inodes: dict[int, None]  # files that lost a name to an outside change (nlink moved)
    last_invalidations: list[Call]
    mounted: bool
    kernel_limiter: trio.CapacityLimiter

    def invalidations(self, bucket: str, key: str) -> list[tuple[str, int, bytes]]:
        """Kernel cache entries to drop after an outside change of bucket/key."""
        path = key.rstrip("/")
        calls: list[tuple[str, int, bytes]] = []
        node = self.inodes.find(bucket, path)
        if node is not None and path:
            calls.append(("inode", node.ino, b""))
        parts = path.split("/") if path else []
        for i, name in enumerate(parts):
            parent = self.inodes.find(bucket, "/".join(parts[:i]))
            if parent is None:
                break
            child = "/".join(parts[: i + 1])
            if i == len(parts) - 1 or self.tree.lookup(bucket, child) is None:
                calls.append(("entry", parent.ino, name.encode()))
        return calls

    async def on_commit(self, changed: list[tuple[str, str]]) -> None:
        """Store commit hook: drop kernel caches for outside changes before the writer (an S3
        request) is answered. The kernel calls run in a thread: invalidate_entry waits for
        related requests in flight, which this loop must stay free to answer."""
        if not self.pending and not self.pending_inodes:
            return
        batch, self.pending = list(self.pending), {}
        calls: list[tuple[str, int, bytes]] = [("inode", ino, b"") for ino in self.pending_inodes]
        self.pending_inodes = {}
        for bucket, key in batch:
            try:
                calls.extend(self.invalidations(bucket, key))
            except (NoSuchBucket, NoSuchKey):
                continue
        self.last_invalidations = calls
        if calls and self.mounted:
            with trio.move_on_after(INVALIDATE_TIMEOUT):
                await trio.to_thread.run_sync(_invalidate, calls, limiter=self.kernel_limiter,
                                              abandon_on_cancel=True)



def _invalidate(calls: list[tuple[str, int, bytes]]) -> None:
    for kind, ino, name in dict.fromkeys(calls):
        try:
            if kind == "inode":
                pyfuse3.invalidate_inode(ino)
            else:
                pyfuse3.invalidate_entry(ino, name)
        except OSError:
            pass  # the kernel did not have it cached

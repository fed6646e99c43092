"""The inode table: kernel inode numbers <-> (bucket, path) nodes.

Inode numbers are handed out once per mount and never reused. A node lives while the kernel
holds lookups on it or a file handle is open; renames re-key the node and its descendants so
open files keep writing to their new names; an unlinked node that is still open is detached
(no longer found by path) and its data is dropped at the last close, as on a local filesystem.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyfuse3

from .paths import split

if TYPE_CHECKING:
    from .staging import FileState

ROOT = "root"
BUCKET = "bucket"
DIR = "dir"
FILE = "file"
LINK = "link"
DIR_KINDS = (ROOT, BUCKET, DIR)
FILE_TYPE = {ROOT: stat.S_IFDIR, BUCKET: stat.S_IFDIR, DIR: stat.S_IFDIR, FILE: stat.S_IFREG, LINK: stat.S_IFLNK}


@dataclass(eq=False)
class Node:
    ino: int
    bucket: str
    path: str
    kind: str
    lookups: int = 0
    opens: int = 0
    state: FileState | None = None
    detached: bool = False

    @property
    def is_dir(self) -> bool:
        return self.kind in DIR_KINDS

    @property
    def ftype(self) -> int:
        return FILE_TYPE[self.kind]

    @property
    def key(self) -> str:
        return self.path


class InodeTable:
    def __init__(self) -> None:
        self.root = Node(pyfuse3.ROOT_INODE, "", "", ROOT, lookups=1)
        self.by_ino: dict[int, Node] = {self.root.ino: self.root}
        self.by_path: dict[tuple[str, str], Node] = {}
        self._next = pyfuse3.ROOT_INODE + 1

    def __len__(self) -> int:
        return len(self.by_ino)

    def get(self, ino: int) -> Node:
        node = self.by_ino.get(ino)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    def find(self, bucket: str, path: str) -> Node | None:
        if not bucket:
            return self.root
        return self.by_path.get((bucket, path))

    def intern(self, bucket: str, path: str, kind: str) -> Node:
        """The node at (bucket, path), replacing one of another kind (a new inode)."""
        node = self.by_path.get((bucket, path))
        if node is not None:
            if node.kind == kind or ({node.kind, kind} <= {FILE, LINK} and node.state is None):
                node.kind = kind
                return node
            self.detach(node)
        node = Node(self._next, bucket, path, kind)
        self._next += 1
        self.by_ino[node.ino] = node
        self.by_path[(bucket, path)] = node
        return node

    def parent_of(self, node: Node) -> Node:
        if node.kind == ROOT:
            return node
        if node.kind == BUCKET:
            return self.root
        parent, _ = split(node.path)
        return self.intern(node.bucket, parent, BUCKET if parent == "" else DIR)

    def detach(self, node: Node) -> None:
        if self.by_path.get((node.bucket, node.path)) is node:
            del self.by_path[(node.bucket, node.path)]
        node.detached = True
        self._maybe_drop(node)

    def forget(self, ino: int, n: int) -> None:
        node = self.by_ino.get(ino)
        if node is None or node is self.root:
            return
        node.lookups = max(0, node.lookups - n)
        self._maybe_drop(node)

    def closed(self, node: Node) -> None:
        node.opens = max(0, node.opens - 1)
        self._maybe_drop(node)

    def _maybe_drop(self, node: Node) -> None:
        if node is self.root or node.lookups > 0 or node.opens > 0:
            return
        self.by_ino.pop(node.ino, None)
        if self.by_path.get((node.bucket, node.path)) is node:
            del self.by_path[(node.bucket, node.path)]

    def move(self, bucket: str, old: str, new: str) -> None:
        """Re-key the node at `old` and every node below it to `new` (after a rename)."""
        victim = self.by_path.get((bucket, new))
        if victim is not None:
            self.detach(victim)
        below = old + "/"
        moving = [n for (b, p), n in self.by_path.items() if b == bucket and (p == old or p.startswith(below))]
        for n in moving:
            del self.by_path[(bucket, n.path)]
        for n in moving:
            n.path = new + n.path[len(old):]
            stale = self.by_path.get((bucket, n.path))
            if stale is not None and stale is not n:
                self.detach(stale)
            self.by_path[(bucket, n.path)] = n

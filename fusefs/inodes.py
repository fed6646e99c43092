"""The inode table: kernel inode numbers <-> (bucket, path) nodes.

Inode numbers are handed out once per mount and never reused. A node lives while the kernel
holds lookups on it or a file handle is open; renames re-key the node and its descendants so
open files keep writing to their new names; an unlinked node that is still open is detached
(no longer found by path) and its data is dropped at the last close, as on a local filesystem.

A file with hard links is one node with several names: `names` holds those the kernel has
looked up, `path` is the one it is read and committed through, and `inode_id` is the engine's
identity of the file (InodeRecord), so every name of it resolves to the same inode number.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyfuse3

from .paths import split

if TYPE_CHECKING:
    from .attrs import Posix
    from .staging import FileState

ROOT = "root"
BUCKET = "bucket"
DIR = "dir"
FILE = "file"
LINK = "link"
FIFO = "fifo"
CHR = "chr"
BLK = "blk"
SOCK = "sock"
DIR_KINDS = (ROOT, BUCKET, DIR)
FILE_TYPE = {ROOT: stat.S_IFDIR, BUCKET: stat.S_IFDIR, DIR: stat.S_IFDIR, FILE: stat.S_IFREG, LINK: stat.S_IFLNK,
             FIFO: stat.S_IFIFO, CHR: stat.S_IFCHR, BLK: stat.S_IFBLK, SOCK: stat.S_IFSOCK}
# The kind of an object whose trusted mode has these type bits (anything else is a regular file).
KIND_OF_TYPE = {stat.S_IFLNK: LINK, stat.S_IFIFO: FIFO, stat.S_IFCHR: CHR, stat.S_IFBLK: BLK, stat.S_IFSOCK: SOCK}


@dataclass
class Removed:
    """A directory removed through the mount that the kernel still holds (a shell's working
    directory, an open descriptor): what fstat, fchmod and the xattr calls act on until the last
    reference goes, as ext4 keeps a removed directory's inode (nlink 0). Never stored."""

    posix: Posix
    user_meta: dict[str, str]


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
    inode_id: str = ""  # the engine's identity of a file with hard links
    names: set[str] = field(default_factory=set)  # every path the table knows this node by
    removed: Removed | None = None  # a directory rmdir took away while the kernel held it

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
        self.by_inode: dict[tuple[str, str], Node] = {}
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

    def intern(self, bucket: str, path: str, kind: str, inode_id: str = "") -> Node:
        """The node at (bucket, path): the one already there if it is still the same file, the
        node of the same hard-linked file under another name, else a new inode."""
        node = self.by_path.get((bucket, path))
        if node is not None:
            same_kind = node.kind == kind or ({node.kind, kind} <= {FILE, LINK} and node.state is None)
            if same_kind and (node.inode_id == inode_id or (not node.inode_id and not self._known(bucket, inode_id))):
                node.kind = kind
                self.set_inode(node, inode_id)
                return node
            self.unname(node, path)
        linked = self.by_inode.get((bucket, inode_id)) if inode_id else None
        if linked is not None and linked.kind == kind and not linked.detached:
            self.add_name(linked, path)
            return linked
        node = Node(self._next, bucket, path, kind)
        self._next += 1
        self.by_ino[node.ino] = node
        self.add_name(node, path)
        self.set_inode(node, inode_id)
        return node

    def _known(self, bucket: str, inode_id: str) -> bool:
        return bool(inode_id) and (bucket, inode_id) in self.by_inode

    def set_inode(self, node: Node, inode_id: str) -> None:
        """The file's hard-link identity changed (it got its first extra name, or lost them)."""
        if node.inode_id == inode_id:
            return
        if node.inode_id and self.by_inode.get((node.bucket, node.inode_id)) is node:
            del self.by_inode[(node.bucket, node.inode_id)]
        node.inode_id = inode_id
        if inode_id:
            self.by_inode[(node.bucket, inode_id)] = node

    def add_name(self, node: Node, path: str) -> None:
        other = self.by_path.get((node.bucket, path))
        if other is not None and other is not node:
            self.unname(other, path)
        self.by_path[(node.bucket, path)] = node
        node.names.add(path)

    def unname(self, node: Node, path: str, others: list[str] | None = None) -> None:
        """`path` no longer names the node. It lives on under another of its names (`others`:
        what the store still lists), or is detached when it has none left."""
        if self.by_path.get((node.bucket, path)) is node:
            del self.by_path[(node.bucket, path)]
        node.names.discard(path)
        if node.path != path:
            return
        rest = [p for p in others if p != path] if others is not None else sorted(node.names)
        if rest:
            node.path = rest[0]
            self.add_name(node, rest[0])
        else:
            self.detach(node)

    def parent_of(self, node: Node) -> Node:
        if node.kind == ROOT:
            return node
        if node.kind == BUCKET:
            return self.root
        parent, _ = split(node.path)
        return self.intern(node.bucket, parent, BUCKET if parent == "" else DIR)

    def detach(self, node: Node) -> None:
        for p in node.names:
            if self.by_path.get((node.bucket, p)) is node:
                del self.by_path[(node.bucket, p)]
        node.names.clear()
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
        for p in node.names:
            if self.by_path.get((node.bucket, p)) is node:
                del self.by_path[(node.bucket, p)]
        node.names.clear()
        if node.inode_id and self.by_inode.get((node.bucket, node.inode_id)) is node:
            del self.by_inode[(node.bucket, node.inode_id)]

    def move(self, bucket: str, old: str, new: str) -> None:
        """Re-key the name `old` and every name below it to `new` (after a rename)."""
        victim = self.by_path.get((bucket, new))
        if victim is not None and victim is not self.by_path.get((bucket, old)):
            self.unname(victim, new)
        below = old + "/"
        moving = [(p, n) for (b, p), n in self.by_path.items() if b == bucket and (p == old or p.startswith(below))]
        for p, n in moving:
            del self.by_path[(bucket, p)]
            n.names.discard(p)
        for p, n in moving:
            q = new + p[len(old):]
            if n.path == p:
                n.path = q
            self.add_name(n, q)

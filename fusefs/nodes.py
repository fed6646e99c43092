"""The mount's state and what every handler shares: resolving names to nodes, a node's
attributes (stored, staged or shown by default), committing open files, changing attributes.

The handlers live in operations.py (files, directories, attributes), namespace.py (entries
made, removed and renamed) and xattr_ops.py; they all build on NodeOps.
"""

from __future__ import annotations

import errno
import itertools
import logging
import mimetypes
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

import pyfuse3
import trio
from pyfuse3 import EntryAttributes, RequestContext

from appliance.config import Config, default_bucket_encryption
from appliance.engine import ObjectStore, ObjectVersion, PutMeta
from appliance.iam.objectkeys import ObjectKeys

from .access import BucketDefaults
from .attrs import Mutate, Posix, entry, meta_of, now_ns, posix_of
from .dirtimes import DirTimes
from .encryption import MountKeys
from .errnos import fail
from .handles import DirHandle
from .inodes import BUCKET, DIR, DIR_KINDS, ROOT, InodeTable, Node
from .paths import check_key_length, decode_name, marker_key
from .staging import FileState
from .streaming import STREAM_START, SegmentStream
from .tree import Found, Tree

log = logging.getLogger("stowage.fuse")
DIR_CONTENT_TYPE = "application/x-directory"


def guess_type(path: str) -> str:
    return mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"


def caller_groups(ctx: RequestContext) -> set[int]:
    """The calling process's groups (its fsgid and supplementary groups)."""
    groups = {ctx.gid}
    try:
        with open(f"/proc/{ctx.pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    groups.update(int(g) for g in line.split()[1:])
                    break
    except (OSError, ValueError):
        pass  # the process is gone: its fsgid is what the request says
    return groups


# (bucket, key, prefix) of the commits the current task makes for the mount (quiet_keys)
_OWN_COMMITS: ContextVar[tuple[tuple[str, str, bool], ...]] = ContextVar("stowage_mount_commits", default=())


class NodeOps(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, store: ObjectStore, cfg: Config, keys: ObjectKeys, timeout: float = 5.0) -> None:
        super().__init__()
        self.store = store
        self.keys = MountKeys(store, keys)
        self.defaults = BucketDefaults(cfg.mount)
        self.bucket_encryption = default_bucket_encryption(cfg)  # of a bucket made by mkdir
        self.tree = Tree(store, self.defaults)
        self.inodes = InodeTable()
        self.dirtimes = DirTimes()
        self.staging_dir = cfg.staging_path
        self.timeout = timeout
        self.files: dict[int, Node] = {}
        self.dirs: dict[int, DirHandle] = {}
        self._next_fh = 1
        self.pending: dict[tuple[str, str], None] = {}
        self.pending_inodes: dict[int, None] = {}
        # where files written in order are streamed to the store (service.py); None: not streamed
        self.nursery: trio.Nursery | None = None
        # directories being renamed, as (bucket, "path/"): a commit, change or stat below waits
        # for the rename to end, so that it acts under the new name (namespace.rename)
        self.renaming: dict[tuple[str, str], trio.Event] = {}
        # changes under way that name keys by nodes' paths (_using_path): the (bucket, path)s
        # each operation uses, which a directory rename above waits for
        self.in_dirs: dict[int, list[tuple[str, str]]] = {}
        self.in_dirs_left = trio.Event()
        self._op_ids = itertools.count()

    def _fh(self) -> int:
        self._next_fh += 1
        return self._next_fh

    @contextmanager
    def quiet(self, bucket: str, key: str, prefix: bool = False) -> Iterator[None]:
        """Our own commits need no kernel invalidation: the kernel already knows."""
        with self.quiet_keys(bucket, [key], prefix):
            yield

    @contextmanager
    def quiet_keys(self, bucket: str, keys: list[str], prefix: bool = False) -> Iterator[None]:
        """The mount's own commits of these keys, made in this task (and tasks it starts), are
        not outside changes. Per task, not for everyone for as long as the commit lasts: an S3
        PUT of one of the keys landing meanwhile is an outside change (a PUT to one name of a
        hard-linked file while the mount committed the file kept the two names one inode in
        the kernel's cache; found by fuzzing)."""
        token = _OWN_COMMITS.set((*_OWN_COMMITS.get(), *((bucket, k, prefix) for k in keys)))
        try:
            yield
        finally:
            _OWN_COMMITS.reset(token)

    def _on_change(self, bucket: str, key: str) -> None:
        """Store listener, called by the committing task (storecore.txn)."""
        self.tree.cache.drop(bucket, key)  # (our own changes too: it may have been kept from before)
        for b, k, prefix in _OWN_COMMITS.get():
            if b == bucket and (key == k or (prefix and key.startswith(k))):
                return
        self.tree.dirs_changed(bucket, key)
        node = self.inodes.find(bucket, key.rstrip("/"))
        if node is not None and node.inode_id:
            rec = self.store.get_inode(bucket, node.inode_id)
            if rec is None or key not in rec.links:  # replaced or deleted: one name less
                self.inodes.unname(node, key, list(rec.links) if rec is not None else [])
                self.pending_inodes[node.ino] = None
        if node is not None and node.state is not None and not node.state.changed:
            node.state.stale = True
        self.pending[(bucket, key)] = None

    # --- names ------------------------------------------------------------------------------

    def _dir(self, ino: int) -> Node:
        node = self.inodes.get(ino)
        if not node.is_dir:
            raise fail(errno.ENOTDIR)
        return node

    def _child(self, parent: Node, name: bytes) -> tuple[str, str]:
        bucket, path = self.tree.child_path(parent, decode_name(name))
        if path:
            check_key_length(path)
        return bucket, path

    def _found(self, bucket: str, path: str) -> Found:
        found = self.tree.lookup(bucket, path)
        if found is None:
            raise fail(errno.ENOENT)
        return found

    def _intern(self, bucket: str, path: str, found: Found) -> Node:
        """The node of what `found` says is at (bucket, path): hard links of one file share it."""
        v = found.version
        # (a file with one name, most of them, needs no read of an InodeRecord)
        rec = self.store.inode_of(v) if v is not None and v.inode and found.kind not in DIR_KINDS else None
        return self.inodes.intern(bucket, path, found.kind, rec.inode_id if rec is not None else "")

    def _names(self, node: Node) -> list[str]:
        """Every key that names the node's file (its hard links, or its one path)."""
        rec = self.store.get_inode(node.bucket, node.inode_id) if node.inode_id else None
        return list(rec.links) if rec is not None and rec.links else [node.path]

    # --- attributes ---------------------------------------------------------------------------

    def _stat(self, node: Node) -> tuple[Posix, int]:
        st = node.state
        if st is not None and (node.detached or st.changed or st.meta_changed):
            return st.posix, st.size
        if node.removed is not None:
            return node.removed.posix, 0
        if node.kind in (ROOT, BUCKET):
            if node.kind == BUCKET and not self.tree.bucket_exists(node.bucket):
                raise fail(errno.ENOENT)
            p, size = self.tree.posix(node, None)
            return self.dirtimes.apply(node.bucket, node.path, p), size
        # peek: the versions are only read here (a create stats its directory and its file)
        if node.kind == DIR:
            marker = self.tree.peek(node.bucket, marker_key(node.path))
            if marker is None and not self.tree.has_children(node.bucket, node.path):
                raise fail(errno.ENOENT)
            p, size = self.tree.posix(node, Found(DIR, marker))
            return self.dirtimes.apply(node.bucket, node.path, p), size
        v = self.tree.peek(node.bucket, node.path)
        if v is None:
            if st is not None:
                return st.posix, st.size
            raise fail(errno.ENOENT)
        return self.tree.posix(node, Found(node.kind, v))

    def _nlink(self, node: Node) -> int:
        """As ext4 counts: a directory 2 plus its subdirectories; a file its names; an open
        file whose last name was removed 0."""
        if node.removed is not None:
            return 0
        if node.is_dir:
            return 2 + self.tree.subdirs(node)
        if node.detached:
            return 0
        if not node.inode_id:
            return 1
        rec = self.store.get_inode(node.bucket, node.inode_id)
        return len(rec.links) if rec is not None and rec.links else 1

    def _entry(self, node: Node) -> EntryAttributes:
        p, size = self._stat(node)
        return entry(node.ino, p, size, self.timeout, self._nlink(node))

    def _posix(self, node: Node, v: ObjectVersion | None) -> Posix:
        return posix_of(v, node.ftype, self.defaults.of(node.bucket), now_ns())

    def _new_owner(self, parent: Node, mode: int, ctx: RequestContext) -> Posix:
        """A new node's mode and owner, as ext4 gives them: the caller's uid and fsgid, or the
        directory's group when it is setgid (a new directory then inherits the setgid bit)."""
        now = now_ns()
        p = Posix(mode, ctx.uid, ctx.gid, now, now, now)
        if parent.kind != ROOT:
            pp, _ = self._stat(parent)
            if pp.mode & stat.S_ISGID:
                p.gid = pp.gid
                if stat.S_ISDIR(mode):
                    p.mode |= stat.S_ISGID
        return p

    def _entries_changed(self, parent: Node, now: int | None = None) -> None:
        """An entry of `parent` was added, removed or renamed: its mtime and ctime move."""
        self.dirtimes.changed(parent.bucket, parent.path, now or now_ns())

    # --- open files ---------------------------------------------------------------------------

    def _new_state(self, node: Node, v: ObjectVersion | None) -> FileState:
        p = self._posix(node, v)
        st = FileState(self.store, self.staging_dir, v, p, v.content_type if v else guess_type(node.path),
                       self.keys.resolver)
        st.user_meta = dict(v.user_meta) if v else {}
        node.state = st
        return st

    def _refresh(self, node: Node, st: FileState) -> None:
        """Pick up a version committed from outside while nothing is pending here."""
        if st.changed or st.meta_changed or node.detached:
            return
        if self._renaming(node) is not None:
            return  # its key has moved and node.path not yet: not a deletion (the next call looks)
        v = self.tree.head(node.bucket, node.path)
        if v is None and st.base is not None:
            # deleted over S3 since: as after an unlink, the open descriptors keep the old
            # content, discarded at the last close (a write must not bring the object back)
            self.inodes.unname(node, node.path, self._names(node))
            st.stale = False
            return
        if v is not None and (st.base is None or v.seq != st.base.seq):
            st.set_base(v)
            st.posix = self._posix(node, v)
            st.user_meta = dict(v.user_meta)
            st.content_type = v.content_type
        st.stale = False

    @staticmethod
    def _meta(path: str, inode_id: str, base: ObjectVersion | None, p: Posix, user_meta: dict[str, str],
              content_type: str | None = None) -> PutMeta:
        """The metadata the mount commits for a file: the attributes it showed (and checked
        access against), now its own, reaching every hard link of the file (inode_id)."""
        m = PutMeta.of(base) if base else PutMeta()
        m.content_type = content_type or m.content_type or guess_type(path)
        m.user_meta = meta_of(p, user_meta)
        m.posix_trusted = True
        m.inode = inode_id
        return m

    async def commit(self, node: Node) -> None:
        if node.state is None or node.detached:
            return
        await self._after_renames(node)
        await self._commit_now(node)

    async def _commit_now(self, node: Node) -> None:
        """A commit that does not wait for renames above the node: for the callers inside
        _using_path of it or its directory (no rename above can start moving keys then, and one
        waiting to would wait for the caller: waiting for it in turn would never end)."""
        st = node.state
        if st is None or node.detached:
            return
        async with st.lock:
            if node.detached or not (st.changed or st.meta_changed):
                return
            protection = st.pinned or await self.keys.for_write(node.bucket, node.path, st.base)
            meta = self._meta(node.path, node.inode_id, st.base, st.posix, st.user_meta, st.content_type)
            meta.sse = protection.report()
            with self.quiet_keys(node.bucket, self._names(node)):
                v = await st.commit(node.bucket, node.path, meta, self.keys.new_key(protection))
            self.inodes.set_inode(node, v.inode)
            self.tree.listed(v)  # kept: the next listing of its directory need not read it back

    def _renaming(self, node: Node, path: str | None = None) -> trio.Event | None:
        """Set when the rename of a directory above the node (or `path`) ends; None: none under way."""
        path = node.path if path is None else path
        return next((e for (b, prefix), e in self.renaming.items()
                     if b == node.bucket and path.startswith(prefix)), None)

    @asynccontextmanager
    async def _using_path(self, *nodes: Node) -> AsyncIterator[None]:
        """Around a change that names keys by the nodes' paths (their own keys, a directory's
        marker and entries): not while a directory above one of them is being renamed (the keys
        would land at the old path and bring it back), and a rename that starts meanwhile waits
        for it to end. The paths are taken all at once, once none is being renamed: holding one
        while waiting for another could close a cycle of renames waiting for each other."""
        while pending := [e for n in nodes if (e := self._renaming(n, n.path + "/")) is not None]:
            await pending[0].wait()
        op = next(self._op_ids)
        self.in_dirs[op] = [(n.bucket, n.path) for n in nodes]
        try:
            yield
        finally:
            del self.in_dirs[op]
            self.in_dirs_left.set()
            self.in_dirs_left = trio.Event()

    @asynccontextmanager
    async def _renaming_below(self, bucket: str, path: str) -> AsyncIterator[None]:
        """Around the move of the keys below the directory `path`: later commits and changes
        below wait for it, and it waits for the changes under way below (_using_path). Entered
        inside _using_path of its directories with no wait in between: its paths and this claim
        are taken at one instant, so no rename below that it waits for can wait for it in turn."""
        prefix = path + "/"
        done = self.renaming[(bucket, prefix)] = trio.Event()
        try:
            while any(b == bucket and (p + "/").startswith(prefix) for op in self.in_dirs.values() for b, p in op):
                await self.in_dirs_left.wait()
            yield
        finally:
            del self.renaming[(bucket, prefix)]
            done.set()

    async def _after_renames(self, node: Node) -> None:
        """Wait, holding no lock, while the node or a directory above it is being renamed (the
        rename takes the locks of the commits under way, so one must not wait for it holding its
        own). Between the keys' move and the nodes' the node's path names nothing: a stat or
        lookup there answered ENOENT (or ESTALE) where ext4 answers, and a commit stored there
        brought the old directory back."""
        while self.renaming and (done := self._renaming(node, node.path + "/")) is not None:
            await done.wait()

    async def stream_if_in_order(self, node: Node, st: FileState) -> None:
        """Start storing a file written in order from its first byte once it is big enough to
        be streamed anyway (streaming.py); the caller holds st.lock."""
        if st.stream is not None or not st.in_order or st.size < STREAM_START or self.nursery is None:
            return
        try:
            protection = await self.keys.for_write(node.bucket, node.path, st.base)
        except Exception:  # (e.g. a disabled KMS key): not streamed; the commit reports the error
            st.in_order = False
            return
        stream = SegmentStream(self.store, st.read_staged, st.size, {"bucket": node.bucket, "key": node.path},
                               self.keys.new_key(protection))
        await self.nursery.start(stream.run)
        st.start_stream(stream, protection)

    # --- directories --------------------------------------------------------------------------

    async def _keep_dir(self, bucket: str, path: str) -> None:
        """A directory emptied through the mount stays (as ext4's would): give it a marker."""
        if not path or self.tree.head(bucket, marker_key(path)) is not None:
            return
        if self.tree.has_children(bucket, path):
            return
        # no attributes of its own: it keeps showing the bucket's defaults, as it did while implicit
        sse = (await self.keys.for_new(bucket, marker_key(path))).report()
        with self.quiet(bucket, marker_key(path)):
            await self.store.put_object(bucket, marker_key(path), b"", PutMeta(DIR_CONTENT_TYPE, posix_trusted=True,
                                                                                 sse=sse), long_key=True)

    async def _put_marker(self, bucket: str, path: str, p: Posix, um: dict[str, str]) -> ObjectVersion:
        sse = (await self.keys.for_new(bucket, marker_key(path))).report()
        with self.quiet(bucket, marker_key(path)):
            v = await self.store.put_object(bucket, marker_key(path), b"", PutMeta(
                DIR_CONTENT_TYPE, user_meta=meta_of(p, um), posix_trusted=True, sse=sse), long_key=True)
        self.dirtimes.forget(bucket, path)  # the marker holds the times now
        return v

    # --- attribute changes --------------------------------------------------------------------

    async def _set_meta(self, node: Node, mutate: Mutate) -> None:
        if node.removed is not None:
            mutate(node.removed.posix, node.removed.user_meta)
            return
        if node.kind in (ROOT, BUCKET):
            return  # buckets keep no POSIX attributes; accepted and not stored (SEMANTICS.md)
        async with self._using_path(node):
            if node.kind == DIR:
                marker = self.tree.head(node.bucket, marker_key(node.path))
                p, _ = self._stat(node)
                um = dict(marker.user_meta) if marker else {}
                mutate(p, um)
                await self._put_marker(node.bucket, node.path, p, um)
                return
            st = node.state
            if st is None:
                await self._store_meta(node, None, mutate)
                return
            # after a commit of the file under way (close): it built its metadata before this
            # change and then marks the metadata clean, so a chmod made meanwhile was lost
            async with st.lock:
                if st.changed or st.meta_changed or node.detached:
                    mutate(st.posix, st.user_meta)
                    st.meta_changed = True
                    return
                await self._store_meta(node, st, mutate)

    async def _store_meta(self, node: Node, st: FileState | None, mutate: Mutate) -> None:
        """The file's attributes changed in its stored version (the caller holds st.lock)."""
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            raise fail(errno.ENOENT)
        p = self._posix(node, v)
        um = dict(v.user_meta)
        mutate(p, um)
        with self.quiet_keys(node.bucket, self._names(node)):
            nv = await self.store.update_meta(node.bucket, node.path, self._meta(node.path, node.inode_id, v, p, um))
        self.inodes.set_inode(node, nv.inode)
        self.tree.listed(nv)
        if st is not None:
            if not st.changed:
                st.set_base(nv)
            st.posix, st.user_meta = p, dict(nv.user_meta)

"""The pyfuse3 Operations: thin translations of kernel requests to object-store calls.

Mapping rules are in fusefs/SEMANTICS.md; namespace queries in tree.py; open-file staging in
staging.py; errno translation in errnos.py (every handler is wrapped by `fuse_op`).
Changes committed by other frontends arrive through the store's listener and are queued for
the invalidation task (kernel cache invalidation must never run inside a request handler).
"""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pyfuse3
import trio
from pyfuse3 import EntryAttributes, RequestContext

from appliance.config import Config
from appliance.engine import ObjectStore, ObjectVersion, PutMeta

from .access import BucketDefaults
from .attrs import Mutate, Posix, entry, meta_of, now_ns, posix_of
from .errnos import fail, fuse_op
from .handles import DirHandle
from .inodes import BUCKET, DIR, FILE, LINK, ROOT, InodeTable, Node
from .invalidation import Invalidation
from .paths import check_key_length, decode_name, marker_key, split
from .staging import FileState
from .tree import Found, Tree
from .xattr_ops import XattrOps

log = logging.getLogger("stowage.fuse")
DIR_CONTENT_TYPE = "application/x-directory"


def guess_type(path: str) -> str:
    return mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"


class StowageFS(XattrOps, Invalidation, pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, store: ObjectStore, cfg: Config, timeout: float = 5.0) -> None:
        super().__init__()
        self.store = store
        self.defaults = BucketDefaults(cfg.mount)
        self.tree = Tree(store, self.defaults)
        self.inodes = InodeTable()
        self.staging_dir = cfg.staging_path
        self.timeout = timeout
        self.files: dict[int, Node] = {}
        self.dirs: dict[int, DirHandle] = {}
        self._next_fh = 1
        self._quiet: list[tuple[str, str, bool]] = []
        self.pending: dict[tuple[str, str], None] = {}
        self.last_invalidations: list[tuple[str, int, bytes]] = []
        self.mounted = False  # kernel notifications need a live session
        self.kernel_limiter = trio.CapacityLimiter(1)
        store.add_listener(self._on_change)
        store.add_commit_hook(self.on_commit)

    # --- helpers ----------------------------------------------------------------------------

    def _fh(self) -> int:
        self._next_fh += 1
        return self._next_fh

    @contextmanager
    def quiet(self, bucket: str, key: str, prefix: bool = False) -> Iterator[None]:
        """Our own commits need no kernel invalidation: the kernel already knows."""
        item = (bucket, key, prefix)
        self._quiet.append(item)
        try:
            yield
        finally:
            self._quiet.remove(item)

    def _on_change(self, bucket: str, key: str) -> None:
        for b, k, prefix in self._quiet:
            if b == bucket and (key == k or (prefix and key.startswith(k))):
                return
        node = self.inodes.find(bucket, key.rstrip("/"))
        if node is not None and node.state is not None and not node.state.changed:
            node.state.stale = True
        self.pending[(bucket, key)] = None

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

    def _stat(self, node: Node) -> tuple[Posix, int]:
        st = node.state
        if st is not None and (node.detached or st.changed or st.meta_changed):
            return st.posix, st.size
        if node.kind in (ROOT, BUCKET):
            if node.kind == BUCKET and not self.tree.bucket_exists(node.bucket):
                raise fail(errno.ENOENT)
            return self.tree.posix(node, None)
        if node.kind == DIR:
            marker = self.tree.head(node.bucket, marker_key(node.path))
            if marker is None and not self.tree.has_children(node.bucket, node.path):
                raise fail(errno.ENOENT)
            return self.tree.posix(node, Found(DIR, marker))
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            if st is not None:
                return st.posix, st.size
            raise fail(errno.ENOENT)
        return self.tree.posix(node, Found(node.kind, v))

    def _entry(self, node: Node) -> EntryAttributes:
        p, size = self._stat(node)
        return entry(node.ino, p, size, self.timeout)

    def _posix(self, node: Node, v: ObjectVersion | None) -> Posix:
        return posix_of(v, node.ftype, self.defaults.of(node.bucket), now_ns())

    def _new_state(self, node: Node, v: ObjectVersion | None) -> FileState:
        p = self._posix(node, v)
        st = FileState(self.store, self.staging_dir, v, p, v.content_type if v else guess_type(node.path))
        st.user_meta = dict(v.user_meta) if v else {}
        node.state = st
        return st

    def _refresh(self, node: Node, st: FileState) -> None:
        """Pick up a version committed from outside while nothing is pending here."""
        if st.changed or st.meta_changed or node.detached:
            return
        v = self.tree.head(node.bucket, node.path)
        if v is not None and (st.base is None or v.seq != st.base.seq):
            st.set_base(v)
            st.posix = self._posix(node, v)
            st.user_meta = dict(v.user_meta)
            st.content_type = v.content_type
        st.stale = False

    async def _state(self, node: Node) -> FileState:
        if node.kind not in (FILE, LINK):
            raise fail(errno.EISDIR)
        if node.state is None:
            v = self.tree.head(node.bucket, node.path)
            if v is None:
                raise fail(errno.ENOENT)
            return self._new_state(node, v)
        self._refresh(node, node.state)
        return node.state

    def _commit_meta(self, node: Node, st: FileState) -> PutMeta:
        m = PutMeta.of(st.base) if st.base else PutMeta()
        m.content_type = st.content_type or guess_type(node.path)
        # the attributes the mount showed (and checked access against), now its own
        m.user_meta = meta_of(st.posix, st.user_meta)
        m.posix_trusted = True
        return m

    async def commit(self, node: Node) -> None:
        st = node.state
        if st is None or node.detached:
            return
        async with st.lock:
            if node.detached or not (st.changed or st.meta_changed):
                return
            with self.quiet(node.bucket, node.path):
                await st.commit(node.bucket, node.path, self._commit_meta(node, st))

    async def _keep_dir(self, bucket: str, path: str) -> None:
        """A directory emptied through the mount stays (as ext4's would): give it a marker."""
        if not path or self.tree.head(bucket, marker_key(path)) is not None:
            return
        if self.tree.has_children(bucket, path):
            return
        # no attributes of its own: it keeps showing the bucket's defaults, as it did while implicit
        with self.quiet(bucket, marker_key(path)):
            await self.store.put_object(bucket, marker_key(path), b"", PutMeta(DIR_CONTENT_TYPE, posix_trusted=True))

    async def _put_marker(self, bucket: str, path: str, p: Posix, um: dict[str, str]) -> ObjectVersion:
        with self.quiet(bucket, marker_key(path)):
            return await self.store.put_object(bucket, marker_key(path), b"", PutMeta(
                DIR_CONTENT_TYPE, user_meta=meta_of(p, um), posix_trusted=True))

    async def _set_meta(self, node: Node, mutate: Mutate) -> None:
        if node.kind in (ROOT, BUCKET):
            return  # buckets keep no POSIX attributes; accepted and not stored (SEMANTICS.md)
        if node.kind == DIR:
            marker = self.tree.head(node.bucket, marker_key(node.path))
            p, _ = self._stat(node)
            um = dict(marker.user_meta) if marker else {}
            mutate(p, um)
            await self._put_marker(node.bucket, node.path, p, um)
            return
        st = node.state
        if st is not None and (st.changed or st.meta_changed or node.detached):
            mutate(st.posix, st.user_meta)
            st.meta_changed = True
            return
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            raise fail(errno.ENOENT)
        p = self._posix(node, v)
        um = dict(v.user_meta)
        mutate(p, um)
        m = PutMeta.of(v)
        m.user_meta = meta_of(p, um)
        m.posix_trusted = True
        with self.quiet(node.bucket, node.path):
            nv = await self.store.update_meta(node.bucket, node.path, m)
        if st is not None:
            async with st.lock:
                if not st.changed:
                    st.set_base(nv)
                st.posix, st.user_meta = p, dict(nv.user_meta)

    # --- lookup and attributes ----------------------------------------------------------------

    @fuse_op
    async def lookup(self, parent_inode: int, name: bytes, ctx: RequestContext) -> EntryAttributes:
        parent = self._dir(parent_inode)
        bucket, path = self._child(parent, name)
        known = self.inodes.find(bucket, path)
        if known is not None and known.state is not None and (known.state.changed or known.state.meta_changed):
            node = known
        else:
            found = self._found(bucket, path)
            node = self.inodes.intern(bucket, path, found.kind)
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def getattr(self, inode: int, ctx: RequestContext) -> EntryAttributes:
        return self._entry(self.inodes.get(inode))

    @fuse_op
    async def setattr(self, inode: int, attr: EntryAttributes, fields: pyfuse3.SetattrFields, fh: int | None,
                      ctx: RequestContext) -> EntryAttributes:
        node = self.inodes.get(inode)
        now = now_ns()
        if fields.update_size:
            st = await self._state(node)
            async with st.lock:
                await st.truncate(attr.st_size)
                st.posix.mtime_ns = st.posix.ctime_ns = now
            if node.opens == 0:
                await self.commit(node)
                self._drop_state(node)

        def mutate(p: Posix, um: dict[str, str]) -> None:
            if fields.update_mode:
                p.mode = stat.S_IFMT(p.mode) | (attr.st_mode & 0o7777)
            if fields.update_uid:
                p.uid = attr.st_uid
            if fields.update_gid:
                p.gid = attr.st_gid
            if fields.update_atime:
                p.atime_ns = attr.st_atime_ns
            if fields.update_mtime:
                p.mtime_ns = attr.st_mtime_ns
            p.ctime_ns = now

        if any((fields.update_mode, fields.update_uid, fields.update_gid, fields.update_atime,
                fields.update_mtime)):
            await self._set_meta(node, mutate)
        return self._entry(node)

    @fuse_op
    async def readlink(self, inode: int, ctx: RequestContext) -> bytes:
        node = self.inodes.get(inode)
        if node.kind != LINK:
            raise fail(errno.EINVAL)
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            raise fail(errno.ENOENT)
        return b"".join([piece async for piece in self.store.read_object(v)])

    @fuse_op
    async def statfs(self, ctx: RequestContext) -> pyfuse3.StatvfsData:
        cap = self.store.capacity()
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = cap.usable_total // 4096
        s.f_bfree = s.f_bavail = cap.usable_free // 4096
        s.f_files = s.f_ffree = s.f_favail = 1 << 32
        s.f_namemax = 255
        return s

    @fuse_op
    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            self.inodes.forget(ino, n)

    # --- namespace ----------------------------------------------------------------------------

    @fuse_op
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> EntryAttributes:
        parent = self._dir(parent_inode)
        bucket, path = self._child(parent, name)
        if parent.kind == ROOT:
            await self.store.create_bucket(bucket)
            node = self.inodes.intern(bucket, "", BUCKET)
        else:
            if self.tree.lookup(bucket, path) is not None:
                raise fail(errno.EEXIST)
            now = now_ns()
            await self._put_marker(bucket, path, Posix(stat.S_IFDIR | (mode & 0o7777), ctx.uid, ctx.gid,
                                                       now, now, now), {})
            node = self.inodes.intern(bucket, path, DIR)
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def rmdir(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        parent = self._dir(parent_inode)
        bucket, path = self._child(parent, name)
        found = self._found(bucket, path)
        if found.kind not in (DIR, BUCKET):
            raise fail(errno.ENOTDIR)
        node = self.inodes.find(bucket, path)
        if parent.kind == ROOT:
            await self.store.delete_bucket(bucket)
        else:
            if self.tree.has_children(bucket, path, ignore_marker=True):
                raise fail(errno.ENOTEMPTY)
            with self.quiet(bucket, marker_key(path)):
                await self.store.delete_keys(bucket, [marker_key(path)])
            await self._keep_dir(bucket, split(path)[0])
        if node is not None:
            self.inodes.detach(node)

    @fuse_op
    async def unlink(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        parent = self._dir(parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EISDIR)
        bucket, path = self._child(parent, name)
        found = self._found(bucket, path)
        if found.kind == DIR:
            raise fail(errno.EISDIR)
        node = self.inodes.find(bucket, path)
        with self.quiet(bucket, path):
            await self.store.delete_object(bucket, path)
        if node is not None:
            self.inodes.detach(node)
        await self._keep_dir(bucket, split(path)[0])

    @fuse_op
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: RequestContext) -> EntryAttributes:
        parent = self._dir(parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EPERM)
        bucket, path = self._child(parent, name)
        if self.tree.lookup(bucket, path) is not None:
            raise fail(errno.EEXIST)
        now = now_ns()
        p = Posix(stat.S_IFLNK | 0o777, ctx.uid, ctx.gid, now, now, now)
        with self.quiet(bucket, path):
            await self.store.put_object(bucket, path, bytes(target), PutMeta(user_meta=meta_of(p), posix_trusted=True))
        node = self.inodes.intern(bucket, path, LINK)
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: RequestContext) -> EntryAttributes:
        raise fail(errno.EPERM)  # objects have one name (SEMANTICS.md)

    @fuse_op
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: RequestContext) -> EntryAttributes:
        if not stat.S_ISREG(mode):
            raise fail(errno.EPERM)
        node = await self._create(parent_inode, name, mode, ctx)
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: RequestContext) -> None:
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise fail(errno.EINVAL)
        old_parent, new_parent = self._dir(parent_inode_old), self._dir(parent_inode_new)
        if ROOT in (old_parent.kind, new_parent.kind):
            raise fail(errno.EXDEV)  # buckets cannot be renamed
        bucket, src = self._child(old_parent, name_old)
        dbucket, dst = self._child(new_parent, name_new)
        if bucket != dbucket:
            raise fail(errno.EXDEV)
        sfound = self._found(bucket, src)
        dfound = self.tree.lookup(bucket, dst)
        is_dir = sfound.kind == DIR
        if src == dst:
            return
        if is_dir and dst.startswith(src + "/"):
            raise fail(errno.EINVAL)
        if dfound is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise fail(errno.EEXIST)
            if is_dir and dfound.kind != DIR:
                raise fail(errno.ENOTDIR)
            if not is_dir and dfound.kind == DIR:
                raise fail(errno.EISDIR)
            if is_dir:
                if self.tree.has_children(bucket, dst, ignore_marker=True):
                    raise fail(errno.ENOTEMPTY)
                with self.quiet(bucket, marker_key(dst)):
                    await self.store.delete_keys(bucket, [marker_key(dst)])
        st: FileState | None = None
        if is_dir:
            for n in list(self.inodes.by_path.values()):
                if n.bucket == bucket and n.path.startswith(src + "/") and n.state is not None:
                    await self.commit(n)
            with self.quiet(bucket, src + "/", prefix=True), self.quiet(bucket, dst + "/", prefix=True):
                await self.store.rename_prefix(bucket, src + "/", dst + "/")
        else:
            node = self.inodes.find(bucket, src)
            st = node.state if node is not None else None
            if st is not None:
                assert node is not None
                await self.commit(node)
            noreplace = bool(flags & pyfuse3.RENAME_NOREPLACE)
            with self.quiet(bucket, src), self.quiet(bucket, dst):
                if st is not None:
                    async with st.lock:  # no commit to the old name can slip in between
                        await self.store.rename_object(bucket, src, dst, noreplace=noreplace)
                        self.inodes.move(bucket, src, dst)
                else:
                    await self.store.rename_object(bucket, src, dst, noreplace=noreplace)
        if is_dir or st is None:
            self.inodes.move(bucket, src, dst)
        await self._keep_dir(bucket, split(src)[0])

    # --- files ------------------------------------------------------------------------------

    async def _create(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> Node:
        parent = self._dir(parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EPERM)  # only directories (buckets) live at the top level
        bucket, path = self._child(parent, name)
        if self.tree.lookup(bucket, path) is not None:
            raise fail(errno.EEXIST)
        now = now_ns()
        p = Posix(stat.S_IFREG | (mode & 0o7777), ctx.uid, ctx.gid, now, now, now)
        ctype = guess_type(path)
        with self.quiet(bucket, path):
            v = await self.store.put_object(bucket, path, b"", PutMeta(ctype, user_meta=meta_of(p), posix_trusted=True))
        node = self.inodes.intern(bucket, path, FILE)
        if node.state is None:
            self._new_state(node, v)
        return node

    def _open(self, node: Node) -> int:
        fh = self._fh()
        self.files[fh] = node
        node.opens += 1
        return fh

    @fuse_op
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: RequestContext) -> tuple[pyfuse3.FileInfo, EntryAttributes]:
        node = await self._create(parent_inode, name, mode, ctx)
        fh = self._open(node)
        e = self._entry(node)
        node.lookups += 1
        return pyfuse3.FileInfo(fh=fh), e

    @fuse_op
    async def open(self, inode: int, flags: int, ctx: RequestContext) -> pyfuse3.FileInfo:
        node = self.inodes.get(inode)
        st = await self._state(node)
        if flags & os.O_TRUNC and st.size:
            async with st.lock:
                await st.truncate(0)
                st.posix.mtime_ns = st.posix.ctime_ns = now_ns()
        return pyfuse3.FileInfo(fh=self._open(node))

    def _file(self, fh: int) -> tuple[Node, FileState]:
        node = self.files.get(fh)
        if node is None or node.state is None:
            raise fail(errno.EBADF)
        return node, node.state

    @fuse_op
    async def read(self, fh: int, off: int, size: int) -> bytes:
        node, st = self._file(fh)
        if st.stale:
            self._refresh(node, st)
        async with st.lock:
            return await st.read(off, size)

    @fuse_op
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        _, st = self._file(fh)
        async with st.lock:
            n = await st.write(off, buf)
            st.posix.mtime_ns = st.posix.ctime_ns = now_ns()
        return n

    @fuse_op
    async def flush(self, fh: int) -> None:
        node, _ = self._file(fh)
        await self.commit(node)

    @fuse_op
    async def fsync(self, fh: int, datasync: bool) -> None:
        node, _ = self._file(fh)
        await self.commit(node)

    @fuse_op
    async def release(self, fh: int) -> None:
        node = self.files.pop(fh, None)
        if node is None:
            return
        try:
            if node.opens <= 1:
                await self.commit(node)
        finally:
            self.inodes.closed(node)
            if node.opens == 0:
                self._drop_state(node)

    def _drop_state(self, node: Node) -> None:
        st = node.state
        if st is not None and node.opens == 0 and (node.detached or not (st.changed or st.meta_changed)):
            st.close_staging()
            node.state = None

    # --- directories --------------------------------------------------------------------------

    @fuse_op
    async def opendir(self, inode: int, ctx: RequestContext) -> int:
        node = self._dir(inode)
        fh = self._fh()
        self.dirs[fh] = DirHandle(node)
        return fh

    @fuse_op
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        for off, name, node, e, counted in self.dir_entries(fh, start_id):
            if not pyfuse3.readdir_reply(token, name, e, off + 1):
                if counted:
                    self.inodes.forget(node.ino, 0)
                return
            if counted:
                node.lookups += 1

    def dir_entries(self, fh: int, start_id: int) -> Iterator[tuple[int, bytes, Node, EntryAttributes, bool]]:
        """(offset, name, node, attributes, counts-as-lookup) from offset start_id on."""
        h = self.dirs.get(fh)
        if h is None:
            raise fail(errno.EBADF)
        off = start_id
        while True:
            if off < 2:
                node = h.node if off == 0 else self.inodes.parent_of(h.node)
                p, size = self._stat(node) if node.kind in (ROOT, BUCKET) else self.tree.posix(node, None)
                yield off, b"." if off == 0 else b"..", node, entry(node.ino, p, size, self.timeout), False
                off += 1
                continue
            item = h.entry(self.tree, off - 2)
            if item is None:
                return
            name, kind, v = item
            bucket, path = self.tree.child_path(h.node, name)
            node = self.inodes.intern(bucket, path, kind)
            st = node.state
            if st is not None and (st.changed or st.meta_changed):
                p, size = st.posix, st.size
            elif kind == DIR:
                p, size = self.tree.posix(node, Found(DIR, self.tree.head(bucket, marker_key(path))))
            else:
                p, size = self.tree.posix(node, Found(kind, v))
            yield off, name.encode(), node, entry(node.ino, p, size, self.timeout), True
            off += 1

    @fuse_op
    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)

    @fuse_op
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        return None  # namespace changes are committed durably before each call returns

    # --- shutdown ---------------------------------------------------------------------------

    async def commit_all(self) -> None:
        """Best effort at shutdown: commit what open files still hold."""
        for node in list(self.inodes.by_ino.values()):
            if node.state is not None and not node.detached:
                try:
                    await self.commit(node)
                except Exception:
                    log.exception("could not commit %s/%s at shutdown", node.bucket, node.path)

"""The pyfuse3 Operations: thin translations of kernel requests to object-store calls.

Mapping rules are in fusefs/SEMANTICS.md; the state and helpers shared by all handlers in
nodes.py; entries made, removed and renamed in namespace.py; namespace queries in tree.py;
open-file staging in staging.py; errno translation in errnos.py (every handler is wrapped by
`fuse_op`). Changes committed by other frontends arrive through the store's listener and are
queued for the invalidation task (kernel cache invalidation must never run inside a request
handler).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator, Sequence

import pyfuse3
import trio
from pyfuse3 import EntryAttributes, RequestContext

from appliance.config import Config
from appliance.engine import ObjectStore
from appliance.iam.objectkeys import ObjectKeys

from .attrs import Posix, entry, kill_privileges, now_ns
from .errnos import fail, fuse_op
from .handles import DirHandle
from .inodes import BUCKET, DIR, FILE, LINK, ROOT, Node
from .invalidation import Invalidation
from .namespace import NamespaceOps
from .nodes import caller_groups
from .paths import marker_key
from .staging import FileState
from .tree import Found
from .xattr_ops import XattrOps

log = logging.getLogger("stowage.fuse")
TIMES_FLUSH_SECONDS = 1.0
PATH_MAX = 4096  # Linux, its NUL included: a symlink's target is at most 4095 bytes
MAX_FILE_BYTES = 5 * 1024**4  # AWS's largest object: a longer file could not be stored as one
GROWTH_CHECK_BYTES = 64 << 20  # a file growing by more at once is checked against the free space


def _stale_if_gone(exc: pyfuse3.FUSEError) -> pyfuse3.FUSEError:
    """An inode gone over S3 since the kernel looked its name up: ESTALE, not ENOENT, makes the
    kernel look the name up again and retry (stat then answers ENOENT, and open(O_CREAT)
    creates the file, as on ext4: with ENOENT an open(O_CREAT) of a name S3 had just deleted
    failed). Any other error stays as it is."""
    return fail(errno.ESTALE) if exc.errno == errno.ENOENT else exc


class StowageFS(NamespaceOps, XattrOps, Invalidation):
    def __init__(self, store: ObjectStore, cfg: Config, keys: ObjectKeys, timeout: float = 5.0) -> None:
        super().__init__(store, cfg, keys, timeout)
        self.durability_seconds = cfg.mount.durability_seconds
        self.last_invalidations: list[tuple[str, int, bytes]] = []
        self.mounted = False  # kernel notifications need a live session
        self.kernel_limiter = trio.CapacityLimiter(1)
        store.add_listener(self._on_change)
        store.add_commit_hook(self.on_commit)

    async def _state(self, node: Node) -> FileState:
        if node.kind not in (FILE, LINK):
            raise fail(errno.EISDIR if node.is_dir else errno.EINVAL)
        if node.state is None:
            v = self.tree.head(node.bucket, node.path)
            if v is None:
                raise fail(errno.ENOENT)
            return self._new_state(node, v)
        self._refresh(node, node.state)
        return node.state

    # --- lookup and attributes ----------------------------------------------------------------

    @fuse_op
    async def lookup(self, parent_inode: int, name: bytes, ctx: RequestContext) -> EntryAttributes:
        parent = self._dir(parent_inode)
        await self._after_renames(parent)
        bucket, path = self._child(parent, name)
        known = self.inodes.find(bucket, path)
        if known is not None and known.state is not None and (known.state.changed or known.state.meta_changed):
            node = known
        else:
            node = self._intern(bucket, path, self._found(bucket, path))
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def getattr(self, inode: int, ctx: RequestContext) -> EntryAttributes:
        try:
            node = self.inodes.get(inode)
            await self._after_renames(node)
            return self._entry(node)
        except pyfuse3.FUSEError as exc:
            raise _stale_if_gone(exc) from None

    @fuse_op
    async def setattr(self, inode: int, attr: EntryAttributes, fields: pyfuse3.SetattrFields, fh: int | None,
                      ctx: RequestContext) -> EntryAttributes:
        node = self.inodes.get(inode)
        now = now_ns()
        privileged = ctx.uid == 0
        chown = fields.update_uid or fields.update_gid
        # The kernel leaves killing setuid/setgid to us (FUSE_HANDLE_KILLPRIV, libfuse's default):
        # on a write by an unprivileged process it sends a setattr that sets nothing.
        kill_only = not any((fields.update_mode, chown, fields.update_atime, fields.update_mtime,
                             fields.update_size))
        groups = set() if privileged else caller_groups(ctx)

        def mutate(p: Posix, um: dict[str, str]) -> None:
            outsider = not privileged and p.gid not in groups
            if fields.update_mode:
                p.mode = stat.S_IFMT(p.mode) | (attr.st_mode & 0o7777)
            if chown:
                kill_privileges(p, chown=True, outsider=outsider)
                if fields.update_uid:
                    p.uid = attr.st_uid
                if fields.update_gid:
                    p.gid = attr.st_gid
            if (fields.update_size and not privileged) or kill_only:
                kill_privileges(p, outsider=outsider)
            if fields.update_atime:
                p.atime_ns = attr.st_atime_ns
            if fields.update_mtime:
                p.mtime_ns = attr.st_mtime_ns
            p.ctime_ns = now

        if fields.update_size:
            st = await self._state(node)
            self.keys.check_writable(st.base)
            async with st.lock:
                self._check_growth(st, attr.st_size)
                await st.truncate(attr.st_size)
                st.posix.mtime_ns = now
                mutate(st.posix, st.user_meta)
                st.meta_changed = True
            if node.opens == 0:
                await self.commit(node)
                await self._drop_state(node)
        else:
            await self._set_meta(node, mutate)
        return self._entry(node)

    @fuse_op
    async def readlink(self, inode: int, ctx: RequestContext) -> bytes:
        node = self.inodes.get(inode)
        if node.kind != LINK:
            raise fail(errno.EINVAL)
        await self._after_renames(node)
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            raise fail(errno.ENOENT)
        if v.size >= PATH_MAX:  # the kernel takes no longer target (an S3 writer can store one)
            raise fail(errno.ENAMETOOLONG)
        return b"".join([piece async for piece in self.store.read_object(v, decrypt_with=self.keys.resolver)])

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

    # --- files ------------------------------------------------------------------------------

    def _open(self, node: Node) -> int:
        fh = self._fh()
        self.files[fh] = node
        node.opens += 1
        return fh

    @fuse_op
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: RequestContext) -> tuple[pyfuse3.FileInfo, EntryAttributes]:
        with self.store.durability_deferred():  # as close: durable at fsync or within the interval
            try:
                node = await self._create(parent_inode, name, mode, ctx)
            except pyfuse3.FUSEError as exc:
                if exc.errno == errno.EEXIST and not flags & os.O_EXCL:
                    # created over S3 since the kernel's lookup: ESTALE makes the kernel look the
                    # name up again and open what is there, as open(O_CREAT) does on ext4
                    raise fail(errno.ESTALE) from None
                raise
        fh = self._open(node)
        e = self._entry(node)
        node.lookups += 1
        return pyfuse3.FileInfo(fh=fh), e

    @fuse_op
    async def open(self, inode: int, flags: int, ctx: RequestContext) -> pyfuse3.FileInfo:
        while True:
            try:
                node = self.inodes.get(inode)
                st = await self._state(node)
            except pyfuse3.FUSEError as exc:
                raise _stale_if_gone(exc) from None
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
                self.keys.check_writable(st.base)
            if flags & os.O_TRUNC:  # the kernel passes it on (atomic O_TRUNC): truncate, as ext4 does
                async with st.lock:
                    if node.state is not st:
                        continue  # the last descriptor closed while we waited: its state is gone
                    await st.truncate(0)
                    st.posix.mtime_ns = st.posix.ctime_ns = now_ns()
                    if ctx.uid != 0:
                        kill_privileges(st.posix, outsider=st.posix.gid not in caller_groups(ctx))
                    st.meta_changed = True
            return pyfuse3.FileInfo(fh=self._open(node))

    def _check_growth(self, st: FileState, end: int) -> None:
        """A hole is stored as zeros (SEMANTICS.md), so `truncate -s 1T` or a write at a far
        offset made the close write zeros until the disks were full: EFBIG past the largest
        object, ENOSPC for a jump past the end the disks cannot hold, refused before anything."""
        if end > MAX_FILE_BYTES:
            raise fail(errno.EFBIG)
        if end - st.size > GROWTH_CHECK_BYTES and end - st.size > self.store.capacity().usable_free:
            raise fail(errno.ENOSPC)

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
        node, st = self._file(fh)
        async with st.lock:
            if st.stale:  # an S3 write since: patch that version, not the one it replaced
                self._refresh(node, st)
            self._check_growth(st, off + len(buf))
            n = await st.write(off, buf)
            st.posix.mtime_ns = st.posix.ctime_ns = now_ns()
            await self.stream_if_in_order(node, st)
        return n

    @fuse_op
    async def flush(self, fh: int) -> None:
        node, _ = self._file(fh)
        with self.store.durability_deferred():  # visible now, durable at fsync or within the interval
            await self.commit(node)

    @fuse_op
    async def fsync(self, fh: int, datasync: bool) -> None:
        node, _ = self._file(fh)
        await self.commit(node)
        await self.store.make_durable()  # the file's earlier (deferred) commits too

    @fuse_op
    async def release(self, fh: int) -> None:
        node = self.files.pop(fh, None)
        if node is None:
            return
        try:
            if node.opens <= 1:
                with self.store.durability_deferred():
                    await self.commit(node)
        finally:
            self.inodes.closed(node)
            if node.opens == 0:
                await self._drop_state(node)

    async def _drop_state(self, node: Node) -> None:
        st = node.state
        if st is not None and node.opens == 0 and (node.detached or not (st.changed or st.meta_changed)):
            node.state = None
            await st.close_staging()

    # --- directories --------------------------------------------------------------------------

    @fuse_op
    async def opendir(self, inode: int, ctx: RequestContext) -> int:
        node = self._dir(inode)
        fh = self._fh()
        self.dirs[fh] = DirHandle(node)
        return fh

    @fuse_op
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if (h := self.dirs.get(fh)) is not None:
            await self._after_renames(h.node)
        for off, name, node, e, counted in self.dir_entries(fh, start_id):
            if not pyfuse3.readdir_reply(token, name, e, off + 1):
                if counted:
                    self.inodes.forget(node.ino, 0)
                return
            if counted:
                node.lookups += 1

    def dir_entries(self, fh: int, start_id: int) -> Iterator[tuple[int, bytes, Node, EntryAttributes, bool]]:
        """(offset, name, node, attributes, counts-as-lookup) from offset start_id on. A
        subdirectory's attributes are not cached (attr_timeout 0): counting its subdirectories
        for nlink is left to the getattr that a stat makes."""
        h = self.dirs.get(fh)
        if h is None:
            raise fail(errno.EBADF)
        off = start_id
        while True:
            if off < 2:
                node = h.node if off == 0 else self.inodes.parent_of(h.node)
                p, size = self._stat(node) if node.kind in (ROOT, BUCKET) else self.tree.posix(node, None)
                yield off, b"." if off == 0 else b"..", node, entry(node.ino, p, size, self.timeout, 2, 0), False
                off += 1
                continue
            item = h.entry(self.tree, off - 2)
            if item is None:
                return
            name, kind, listed = item
            bucket, path = self.tree.child_path(h.node, name)
            node = self.inodes.intern(bucket, path, kind, listed.inode_id if listed is not None else "")
            st = node.state
            if st is not None and (st.changed or st.meta_changed):
                e = entry(node.ino, st.posix, st.size, self.timeout, self._nlink(node))
            elif kind == DIR:
                p, size = self.tree.posix(node, Found(DIR, self.tree.head(bucket, marker_key(path))))
                e = entry(node.ino, self.dirtimes.apply(bucket, path, p), size, self.timeout, 2, 0)
            elif listed is None:  # a bucket
                p, size = self.tree.posix(node, None)
                e = entry(node.ino, p, size, self.timeout, self._nlink(node))
            else:
                e = entry(node.ino, listed, listed.size, self.timeout, self._nlink(node))
            yield off, name.encode(), node, e, True
            off += 1

    @fuse_op
    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)

    @fuse_op
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.flush_times()  # entries are committed before each call returns; their times here
        await self.store.make_durable()  # and the files closed in it, durable now

    # --- background and shutdown ------------------------------------------------------------

    async def flush_times(self) -> None:
        """Directory times changed through the mount, into their markers."""
        await self.dirtimes.flush(self.store, self.quiet_keys)

    async def flush_times_forever(self) -> None:
        while True:
            await trio.sleep(TIMES_FLUSH_SECONDS)
            if self.dirtimes.dirty:
                try:
                    await self.flush_times()
                except Exception:
                    log.exception("could not store directory times")

    async def durability_forever(self) -> None:
        """Deferred commits (close) become durable within mount.durability_seconds."""
        while True:
            await trio.sleep(self.durability_seconds)
            if self.store.has_undurable:
                try:
                    await self.store.make_durable()
                except Exception:
                    log.exception("could not make the mount's latest commits durable")

    async def commit_all(self) -> None:
        """Best effort at shutdown: commit what open files still hold, and directory times."""
        for node in list(self.inodes.by_ino.values()):
            if node.state is not None and not node.detached:
                try:
                    await self.commit(node)
                except Exception:
                    log.exception("could not commit %s/%s at shutdown", node.bucket, node.path)
        try:
            await self.flush_times()
        except Exception:
            log.exception("could not store directory times at shutdown")

"""The passthrough: pyfuse3 operations over the backing tree, each one through the fault rules
and the durability journal.

Every entry is reported with zero entry and attribute timeouts, and files are opened without
keep_cache, so the kernel asks again each time and never serves what a power cut took away.
FUSE inode numbers are our own (never reused, fresh after each power cut), mapped to the
backing inodes: a backing inode number the filesystem reuses for a new file gets a new FUSE
number, so the kernel never sees an inode change its type.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import os
import stat
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from .durability import Durability, PowerCutReport
from .rules import Faults

log = logging.getLogger("faultfs")

P = ParamSpec("P")
R = TypeVar("R")


def _oserrors(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """OSError -> the same errno to the kernel; anything unexpected -> EIO, logged."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


@dataclass
class Handle:
    fd: int
    backing_ino: int
    rel: str  # the path it was opened by (what fault rules match)
    sync: bool  # opened O_SYNC/O_DSYNC: every write is durable when it returns


class FaultFS(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, durability: Durability, faults: Faults) -> None:
        super().__init__()
        self.d = durability
        self.d.on_gone = self._gone
        self.faults = faults
        self.tree = str(durability.tree)
        self.epoch = 1
        self._numbers = itertools.count(pyfuse3.ROOT_INODE + 1)
        self._reset_inodes()
        self.handles: dict[int, Handle] = {}
        self.dir_handles: dict[int, int] = {}
        self._fh = itertools.count(1)

    # --- inode numbers and paths -----------------------------------------------------------------

    def _reset_inodes(self) -> None:
        root = os.lstat(self.tree).st_ino
        self.fuse_of: dict[int, int] = {root: pyfuse3.ROOT_INODE}  # backing inode -> FUSE inode
        self.backing_of: dict[int, int] = {pyfuse3.ROOT_INODE: root}
        self.names: dict[int, tuple[int, str]] = {}  # FUSE inode -> (parent FUSE inode, name)

    def _gone(self, backing_ino: int) -> None:
        fino = self.fuse_of.pop(backing_ino, None)
        if fino is not None and fino != pyfuse3.ROOT_INODE:
            self.names.pop(fino, None)

    def _fuse(self, backing_ino: int) -> int:
        fino = self.fuse_of.get(backing_ino)
        if fino is None:
            fino = self.fuse_of[backing_ino] = next(self._numbers)
            self.backing_of[fino] = backing_ino
        return fino

    def _path(self, ino: int) -> str:
        if ino == pyfuse3.ROOT_INODE:
            return self.tree
        try:
            parent, name = self.names[ino]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        return os.path.join(self._path(parent), name)

    def _located(self, ino: int) -> tuple[str, os.stat_result]:
        """The path of an inode, checked to still be that inode."""
        path = self._path(ino)
        st = os.lstat(path)
        if st.st_ino != self.backing_of.get(ino):
            raise pyfuse3.FUSEError(errno.ENOENT)
        return path, st

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.tree) if path != self.tree else ""

    def _child(self, parent: int, name: bytes) -> str:
        return os.path.join(self._path(parent), os.fsdecode(name))

    def _entry(self, st: os.stat_result, parent: int, name: str) -> pyfuse3.EntryAttributes:
        fino = self._fuse(st.st_ino)
        if fino != pyfuse3.ROOT_INODE:
            self.names[fino] = (parent, name)
        return self._attrs(st, fino)

    def _attrs(self, st: os.stat_result, fino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = fino
        a.generation = self.epoch
        a.entry_timeout = 0
        a.attr_timeout = 0
        a.st_mode = st.st_mode
        a.st_nlink = st.st_nlink
        a.st_uid = st.st_uid
        a.st_gid = st.st_gid
        a.st_rdev = st.st_rdev
        a.st_size = st.st_size
        a.st_blksize = st.st_blksize
        a.st_blocks = st.st_blocks
        a.st_atime_ns = st.st_atime_ns
        a.st_mtime_ns = st.st_mtime_ns
        a.st_ctime_ns = st.st_ctime_ns
        return a

    def _handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:  # opened before a power cut
            raise pyfuse3.FUSEError(errno.EIO)
        return h

    # --- the power cut ---------------------------------------------------------------------------

    def power_cut(self) -> PowerCutReport:
        """Drop every open file, reset the tree to its durable state, start a new inode epoch.
        The caller has parked every operation (Faults.power)."""
        for h in self.handles.values():
            os.close(h.fd)
        self.handles.clear()
        self.dir_handles.clear()
        report = self.d.power_cut()
        self.epoch += 1
        self._reset_inodes()
        return report

    # --- entries ---------------------------------------------------------------------------------

    @_oserrors
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        await self.faults.check("lookup", self._rel(path))
        return self._entry(os.lstat(path), parent_inode, os.fsdecode(name))

    async def forget(self, inode_list: Any) -> None:
        return None  # names stay known: cheap, and a stale one is caught by _located

    @_oserrors
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        try:
            path: str | None = self._path(inode)
        except pyfuse3.FUSEError:
            path = None  # deleted: only an open handle may still reach it
        await self.faults.check("getattr", self._rel(path) if path is not None else "")
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(path)
                if st.st_ino == self.backing_of.get(inode):
                    return self._attrs(st, inode)
        bino = self.backing_of.get(inode)
        h = next((h for h in self.handles.values() if h.backing_ino == bino), None)
        if h is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(os.fstat(h.fd), inode)

    @_oserrors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: Any) -> pyfuse3.EntryAttributes:
        h = self.handles.get(fh) if fh is not None else None
        path, st = (None, os.fstat(h.fd)) if h is not None else self._located(inode)
        await self.faults.check("setattr", h.rel if h is not None else self._rel(str(path)))
        target: int | str = h.fd if h is not None else str(path)
        if fields.update_size:
            fd = h.fd if h is not None else os.open(str(path), os.O_RDWR | os.O_CLOEXEC)
            try:
                self.d.before_truncate(fd, st.st_ino, attr.st_size)
                os.ftruncate(fd, attr.st_size)
            finally:
                if h is None:
                    os.close(fd)
        if fields.update_mode:
            os.chmod(target, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            os.chown(target, attr.st_uid if fields.update_uid else -1, attr.st_gid if fields.update_gid else -1,
                     follow_symlinks=False)
        if fields.update_atime or fields.update_mtime:
            cur = os.fstat(h.fd) if h is not None else os.lstat(str(path))
            times = (attr.st_atime_ns if fields.update_atime else cur.st_atime_ns,
                     attr.st_mtime_ns if fields.update_mtime else cur.st_mtime_ns)
            if h is not None:
                os.utime(h.fd, ns=times)
            else:
                os.utime(str(path), ns=times, follow_symlinks=False)
        return self._attrs(os.fstat(h.fd) if h is not None else os.lstat(str(path)), inode)

    @_oserrors
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        path, _ = self._located(inode)
        await self.faults.check("readlink", self._rel(path))
        return os.fsencode(os.readlink(path))

    def _owned(self, path: str, ctx: Any) -> None:
        if ctx is not None and os.geteuid() == 0:
            os.chown(path, ctx.uid, ctx.gid, follow_symlinks=False)

    @_oserrors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        await self.faults.check("mknod", self._rel(path))
        self.d.touch_dir(self._path(parent_inode))
        os.mknod(path, mode & ~ctx.umask, rdev)
        self._owned(path, ctx)
        st = os.lstat(path)
        self.d.new_file(st.st_ino)
        return self._entry(st, parent_inode, os.fsdecode(name))

    @_oserrors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        await self.faults.check("mkdir", self._rel(path))
        self.d.touch_dir(self._path(parent_inode))
        os.mkdir(path, mode & ~ctx.umask & 0o7777)
        self._owned(path, ctx)
        st = os.lstat(path)
        self.d.new_dir(st.st_ino)
        return self._entry(st, parent_inode, os.fsdecode(name))

    def _remove(self, parent_inode: int, path: str, is_dir: bool) -> None:
        self.d.touch_dir(self._path(parent_inode))
        self.d.remove(path, is_dir)

    @_oserrors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        path = self._child(parent_inode, name)
        await self.faults.check("unlink", self._rel(path))
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise pyfuse3.FUSEError(errno.EISDIR)
        self._remove(parent_inode, path, False)

    @_oserrors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        path = self._child(parent_inode, name)
        await self.faults.check("rmdir", self._rel(path))
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if os.listdir(path):
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        self._remove(parent_inode, path, True)

    @_oserrors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        await self.faults.check("symlink", self._rel(path))
        self.d.touch_dir(self._path(parent_inode))
        os.symlink(os.fsdecode(target), path)
        self._owned(path, ctx)
        st = os.lstat(path)
        self.d.new_file(st.st_ino)
        return self._entry(st, parent_inode, os.fsdecode(name))

    @_oserrors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: Any) -> None:
        src = self._child(parent_inode_old, name_old)
        dst = self._child(parent_inode_new, name_new)
        await self.faults.check("rename", self._rel(src), self._rel(dst))
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        st_src = os.lstat(src)
        try:
            st_dst: os.stat_result | None = os.lstat(dst)
        except FileNotFoundError:
            st_dst = None
        src_dir = stat.S_ISDIR(st_src.st_mode)
        if st_dst is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise pyfuse3.FUSEError(errno.EEXIST)
            if st_dst.st_ino == st_src.st_ino:
                return  # two names of one file: POSIX says do nothing
            dst_dir = stat.S_ISDIR(st_dst.st_mode)
            if src_dir and not dst_dir:
                raise pyfuse3.FUSEError(errno.ENOTDIR)
            if dst_dir and not src_dir:
                raise pyfuse3.FUSEError(errno.EISDIR)
            if dst_dir and os.listdir(dst):
                raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        if src_dir and (dst + os.sep).startswith(src + os.sep):
            raise pyfuse3.FUSEError(errno.EINVAL)
        self.d.touch_dir(self._path(parent_inode_old))
        self.d.touch_dir(self._path(parent_inode_new))
        if st_dst is not None:
            self.d.remove(dst, stat.S_ISDIR(st_dst.st_mode))
        os.rename(src, dst)
        fino = self._fuse(st_src.st_ino)
        self.names[fino] = (parent_inode_new, os.fsdecode(name_new))

    @_oserrors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        src, _ = self._located(inode)
        dst = self._child(new_parent_inode, new_name)
        await self.faults.check("link", self._rel(dst))
        self.d.touch_dir(self._path(new_parent_inode))
        os.link(src, dst, follow_symlinks=False)
        return self._entry(os.lstat(dst), new_parent_inode, os.fsdecode(new_name))

    # --- files -----------------------------------------------------------------------------------

    def _new_handle(self, fd: int, st: os.stat_result, path: str, flags: int) -> pyfuse3.FileInfo:
        fh = next(self._fh)
        self.handles[fh] = Handle(fd, st.st_ino, self._rel(path), bool(flags & os.O_DSYNC))
        return pyfuse3.FileInfo(fh=fh, keep_cache=False)

    @_oserrors
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        path, _ = self._located(inode)
        await self.faults.check("open", self._rel(path))
        # always read-write underneath: the journal reads what a write is about to overwrite
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        st = os.fstat(fd)
        if flags & os.O_TRUNC:
            self.d.before_truncate(fd, st.st_ino, 0)
            os.ftruncate(fd, 0)
        return self._new_handle(fd, st, path, flags)

    @_oserrors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        path = self._child(parent_inode, name)
        await self.faults.check("create", self._rel(path))
        self.d.touch_dir(self._path(parent_inode))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & ~ctx.umask & 0o7777)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            st = os.fstat(fd)
            if flags & os.O_TRUNC:
                self.d.before_truncate(fd, st.st_ino, 0)
                os.ftruncate(fd, 0)
        else:
            self._owned(path, ctx)
            st = os.fstat(fd)
            self.d.new_file(st.st_ino)
        st = os.fstat(fd)
        return self._new_handle(fd, st, path, flags), self._entry(st, parent_inode, os.fsdecode(name))

    @_oserrors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self._handle(fh)
        await self.faults.check("read", h.rel)
        return os.pread(h.fd, size, off)

    @_oserrors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._handle(fh)
        await self.faults.check("write", h.rel)
        self.d.before_write(h.fd, h.backing_ino, off, len(buf))
        n = os.pwrite(h.fd, buf, off)
        if h.sync:
            self.d.sync_file(h.backing_ino)
        return n

    async def flush(self, fh: int) -> None:
        return None

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is not None:
            os.close(h.fd)

    @_oserrors
    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self._handle(fh)
        await self.faults.check("fsync", h.rel)
        self.d.sync_file(h.backing_ino)

    # --- directories -----------------------------------------------------------------------------

    @_oserrors
    async def opendir(self, inode: int, ctx: Any) -> int:
        path, _ = self._located(inode)
        await self.faults.check("opendir", self._rel(path))
        fh = next(self._fh)
        self.dir_handles[fh] = inode
        return fh

    @_oserrors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        inode = self.dir_handles.get(fh)
        if inode is None:
            raise pyfuse3.FUSEError(errno.EIO)
        path = self._path(inode)
        await self.faults.check("readdir", self._rel(path))
        names = sorted(os.listdir(path))
        for i in range(start_id, len(names)):
            try:
                st = os.lstat(os.path.join(path, names[i]))
            except FileNotFoundError:
                continue
            fino = self._fuse(st.st_ino)
            if not pyfuse3.readdir_reply(token, os.fsencode(names[i]), self._attrs(st, fino), i + 1):
                break
            self.names[fino] = (inode, names[i])

    async def releasedir(self, fh: int) -> None:
        self.dir_handles.pop(fh, None)

    @_oserrors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        inode = self.dir_handles.get(fh)
        if inode is None:
            raise pyfuse3.FUSEError(errno.EIO)
        path, st = self._located(inode)
        await self.faults.check("fsyncdir", self._rel(path))
        self.d.sync_dir(st.st_ino)

    @_oserrors
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        await self.faults.check("statfs", "")
        st = os.statvfs(self.tree)
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
                     "f_namemax"):
            setattr(out, name, getattr(st, name))
        if self.faults.full:
            out.f_bfree = out.f_bavail = 0
        return out

    @_oserrors
    async def access(self, inode: int, mode: int, ctx: Any) -> bool:
        return True

    # --- extended attributes ---------------------------------------------------------------------

    @_oserrors
    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        path, _ = self._located(inode)
        await self.faults.check("getxattr", self._rel(path))
        try:
            return os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                raise pyfuse3.FUSEError(pyfuse3.ENOATTR) from None
            raise

    @_oserrors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        path, _ = self._located(inode)
        await self.faults.check("setxattr", self._rel(path))
        os.setxattr(path, name, value, follow_symlinks=False)

    @_oserrors
    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        path, _ = self._located(inode)
        await self.faults.check("listxattr", self._rel(path))
        return [os.fsencode(n) for n in os.listxattr(path, follow_symlinks=False)]

    @_oserrors
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        path, _ = self._located(inode)
        await self.faults.check("removexattr", self._rel(path))
        try:
            os.removexattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                raise pyfuse3.FUSEError(pyfuse3.ENOATTR) from None
            raise

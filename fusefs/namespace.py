"""Entries made, removed and renamed: files, special files, symlinks, directories, hard links.

Every change of a directory's entries moves its mtime and ctime (dirtimes.py); every change of
a file's names moves the file's ctime, as on ext4. Rules in SEMANTICS.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import stat
from collections.abc import AsyncIterator

import pyfuse3
from pyfuse3 import EntryAttributes, RequestContext

from appliance.engine import InodeRecord, ObjectVersion, PutMeta

from .attrs import Posix, is_device, meta_of, now_ns, posix_of
from .errnos import fail, fuse_op
from .inodes import BUCKET, DIR, FILE, FILE_TYPE, KIND_OF_TYPE, ROOT, Node, Removed
from .nodes import NodeOps, guess_type
from .paths import check_key_length, marker_key, split
from .staging import FileState
from .tree import Found, kind_of_version

SPECIAL_TYPES = (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK)


class NamespaceOps(NodeOps):
    """Mixin of StowageFS: the handlers that change directory entries."""

    async def _new_object(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext,
                          body: bytes = b"", rdev: int = 0) -> tuple[Node, ObjectVersion]:
        """A file, special file or symlink: an object that exists from this moment on."""
        parent = self._dir(parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EPERM)  # only directories (buckets) live at the top level
        async with self._using_path(parent):
            bucket, path = self._child(parent, name)
            if self.tree.lookup(bucket, path) is not None:
                raise fail(errno.EEXIST)
            p = self._new_owner(parent, mode, ctx)
            p.rdev = rdev if is_device(mode) else 0
            ctype = "" if stat.S_ISLNK(mode) else guess_type(path)
            protection = await self.keys.for_new(bucket, path)
            meta = PutMeta(ctype, user_meta=meta_of(p), posix_trusted=True, sse=protection.report())
            with self.quiet(bucket, path):
                v = await self.store.put_object(bucket, path, body, meta, long_key=True,
                                                encrypt_with=self.keys.key_for(protection, body))
            self.tree.listed(v)  # kept for the next listing of the directory (listcache.py)
            node = self.inodes.intern(bucket, path, KIND_OF_TYPE.get(stat.S_IFMT(mode), FILE))
            self._entries_changed(parent, p.ctime_ns)
            return node, v

    async def _create(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> Node:
        node, v = await self._new_object(parent_inode, name, stat.S_IFREG | (mode & 0o7777), ctx)
        if node.state is None:
            self._new_state(node, v)
        return node

    def _looked_up(self, node: Node) -> EntryAttributes:
        e = self._entry(node)
        node.lookups += 1
        return e

    @fuse_op
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: RequestContext) -> EntryAttributes:
        ftype = stat.S_IFMT(mode)
        if ftype == stat.S_IFREG:
            node = await self._create(parent_inode, name, mode, ctx)
        elif ftype in SPECIAL_TYPES:
            # a FIFO or socket works between local processes (the kernel's, once the node exists);
            # a device node is never opened as one: the mount is nodev
            node, _ = await self._new_object(parent_inode, name, ftype | (mode & 0o7777), ctx, rdev=rdev)
        else:
            raise fail(errno.EINVAL)
        return self._looked_up(node)

    @fuse_op
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: RequestContext) -> EntryAttributes:
        node, _ = await self._new_object(parent_inode, name, stat.S_IFLNK | 0o777, ctx, body=bytes(target))
        return self._looked_up(node)

    @fuse_op
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> EntryAttributes:
        parent = self._dir(parent_inode)
        bucket, path = self._child(parent, name)
        if parent.kind == ROOT:
            await self.store.create_bucket(bucket, encryption=self.bucket_encryption)
            self.tree.tree_moved(bucket, "")
            node = self.inodes.intern(bucket, "", BUCKET)
        else:
            async with self._using_path(parent):
                bucket, path = self._child(parent, name)  # its path once no rename above is under way
                check_key_length(path, is_dir=True)
                if self.tree.lookup(bucket, path) is not None:
                    raise fail(errno.EEXIST)
                await self._put_marker(bucket, path, self._new_owner(parent, stat.S_IFDIR | (mode & 0o7777), ctx), {})
                self.tree.tree_moved(bucket, path)
                node = self.inodes.intern(bucket, path, DIR)
        self._entries_changed(parent)
        return self._looked_up(node)

    @fuse_op
    async def rmdir(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        parent = self._dir(parent_inode)
        async with self._using_path(parent):
            bucket, path = self._child(parent, name)
            found = self._found(bucket, path)
            if found.kind not in (DIR, BUCKET):
                raise fail(errno.ENOTDIR)
            node = self.inodes.find(bucket, path)
            gone = self._removed(node) if node is not None else None
            if parent.kind == ROOT:
                await self.store.delete_bucket(bucket)
                self.tree.tree_moved(bucket, "")
            else:
                if self.tree.has_children(bucket, path, ignore_marker=True):
                    raise fail(errno.ENOTEMPTY)
                with self.quiet(bucket, marker_key(path)):
                    await self.store.delete_keys(bucket, [marker_key(path)])
                self.tree.tree_moved(bucket, path)
                self.dirtimes.forget(bucket, path)
                await self._keep_dir(bucket, split(path)[0])
            if node is not None:
                node.removed = gone
                self.inodes.detach(node)
            self._entries_changed(parent)

    def _removed(self, node: Node) -> Removed:
        """What a directory about to be removed shows from then on (its ctime moves, as ext4's)."""
        p, _ = self._stat(node)
        p = dataclasses.replace(p, ctime_ns=now_ns())
        if node.kind != DIR:
            return Removed(p, {})
        marker = self.tree.head(node.bucket, marker_key(node.path))
        return Removed(p, dict(marker.user_meta) if marker is not None else {})

    def _file_posix(self, node: Node | None, found: Found) -> tuple[Posix, dict[str, str]]:
        """A copy of the attributes and user metadata a file shows (staged ones when pending)."""
        st = node.state if node is not None else None
        if node is not None and st is not None and (st.changed or st.meta_changed):
            return dataclasses.replace(st.posix), dict(st.user_meta)
        v = found.version
        assert v is not None
        return posix_of(v, FILE_TYPE[found.kind], self.defaults.of(v.bucket), now_ns()), dict(v.user_meta)

    @fuse_op
    async def unlink(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        parent = self._dir(parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EISDIR)
        async with self._using_path(parent):
            bucket, path = self._child(parent, name)
            node = self.inodes.find(bucket, path)
            async with _after_commits(node):
                found = self._found(bucket, path)
                if found.kind == DIR:
                    raise fail(errno.EISDIR)
                now = now_ns()
                rec = self.store.inode_of(found.version) if found.version is not None else None
                names = list(rec.links) if rec is not None else [path]
                others: PutMeta | None = None
                if rec is not None and len(rec.links) > 1:  # the file lives on under its other names, changed
                    p, um = self._file_posix(node, found)
                    p.ctime_ns = now
                    others = self._meta(path, rec.inode_id, found.version, p, um)
                with self.quiet_keys(bucket, names):
                    left = await self.store.unlink_object(bucket, path, others)
                if node is not None:
                    if left and node.state is not None:
                        node.state.posix.ctime_ns = now
                    self.inodes.unname(node, path, [n for n in names if n != path] if left else [])
            self._entries_changed(parent, now)
            await self._keep_dir(bucket, split(path)[0])

    @fuse_op
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: RequestContext) -> EntryAttributes:
        node = self.inodes.get(inode)
        if node.is_dir:
            raise fail(errno.EPERM)
        parent = self._dir(new_parent_inode)
        if parent.kind == ROOT:
            raise fail(errno.EPERM)
        # named by the file's and the directory's paths: not while a directory above either
        # is being renamed (ENOENT, or the new name stored under the directory's old path)
        async with self._using_path(node, parent):
            bucket, path = self._child(parent, new_name)
            if bucket != node.bucket:
                raise fail(errno.EXDEV)
            if node.detached:
                raise fail(errno.ENOENT)
            if self.tree.lookup(bucket, path) is not None:
                raise fail(errno.EEXIST)
            await self._commit_now(node)  # what is staged reaches every name
            v = self.tree.head(bucket, node.path)
            if v is None:
                raise fail(errno.ENOENT)
            now = now_ns()
            p, um = self._file_posix(node, Found(node.kind, v))
            p.ctime_ns = now
            with self.quiet_keys(bucket, [*self._names(node), path]):
                nv = await self.store.link_object(bucket, node.path, path,
                                                  self._meta(node.path, node.inode_id, v, p, um))
            self.inodes.set_inode(node, nv.inode)
            self.inodes.add_name(node, path)
            self._rebase(node, p)
            self._entries_changed(parent, now)
            return self._looked_up(node)

    def _rebase(self, node: Node, p: Posix) -> None:
        """The node's committed version changed under its open state (new metadata only)."""
        st: FileState | None = node.state
        if st is None:
            return
        if st.changed or st.meta_changed:
            st.posix.ctime_ns = p.ctime_ns
            return
        v = self.tree.head(node.bucket, node.path)
        if v is not None:
            st.set_base(v)
            st.user_meta = dict(v.user_meta)
        st.posix = p

    @fuse_op
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: RequestContext) -> None:
        if flags & ~pyfuse3.RENAME_NOREPLACE:
            # RENAME_EXCHANGE and RENAME_WHITEOUT (the kernel passes both on): EINVAL, as file
            # systems without them answer; a whiteout ignored would bring back what overlayfs hid
            raise fail(errno.EINVAL)
        old_parent, new_parent = self._dir(parent_inode_old), self._dir(parent_inode_new)
        if ROOT in (old_parent.kind, new_parent.kind):
            raise fail(errno.EXDEV)  # buckets cannot be renamed
        # staged writes below are stored before this rename holds back the changes there
        await self._commit_at(*self._child(old_parent, name_old))
        # Renames and links below a directory being renamed wait for it, as creates do: named
        # by their directories' old paths, they found nothing there (ENOENT) or brought the
        # old directory back. A directory's rename waits for those under way below it.
        async with self._using_path(old_parent, new_parent):
            await self._rename(old_parent, name_old, new_parent, name_new, flags)

    async def _rename(self, old_parent: Node, name_old: bytes, new_parent: Node, name_new: bytes, flags: int) -> None:
        bucket, src = self._child(old_parent, name_old)
        dbucket, dst = self._child(new_parent, name_new)
        if bucket != dbucket:
            raise fail(errno.EXDEV)
        sfound = self._found(bucket, src)
        dfound = self.tree.lookup(bucket, dst)
        is_dir = sfound.kind == DIR
        if src == dst:
            return
        if is_dir:
            check_key_length(dst, is_dir=True)
            if dst.startswith(src + "/"):
                raise fail(errno.EINVAL)
        if dfound is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise fail(errno.EEXIST)
            if is_dir and dfound.kind != DIR:
                raise fail(errno.ENOTDIR)
            if not is_dir and dfound.kind == DIR:
                raise fail(errno.EISDIR)
            if is_dir and self.tree.has_children(bucket, dst, ignore_marker=True):
                raise fail(errno.ENOTEMPTY)
        now = now_ns()
        if is_dir:
            # (entered with no wait since _using_path found the directories free: _renaming_below)
            async with self._renaming_below(bucket, src):
                if dfound is not None:
                    victim = self.inodes.find(bucket, dst)
                    gone = self._removed(victim) if victim is not None else None
                    with self.quiet(bucket, marker_key(dst)):
                        await self.store.delete_keys(bucket, [marker_key(dst)])
                    if victim is not None:
                        victim.removed = gone
                # A commit under way below would store at its old path after the keys moved (a
                # stale copy bringing the old directory back): it ends first (its lock), and
                # later ones wait until the nodes have their new paths (commit).
                below = [n for n in self.inodes.by_path.values() if n.bucket == bucket and n.path.startswith(src + "/")]
                async with _after_commits(*below):
                    with self.quiet(bucket, src + "/", prefix=True), self.quiet(bucket, dst + "/", prefix=True):
                        await self.store.rename_prefix(bucket, src + "/", dst + "/")
                    self.tree.tree_moved(bucket, src)
                    self.tree.tree_moved(bucket, dst)
                    self.inodes.move(bucket, src, dst)
            self.dirtimes.forget(bucket, dst)
            self.dirtimes.move(bucket, src, dst)
            moved = self.inodes.find(bucket, dst) or Node(0, bucket, dst, DIR)
            self.dirtimes.status_changed(bucket, dst, now, self._stat(moved)[0])
        else:
            await self._rename_file(bucket, src, dst, sfound, now, bool(flags & pyfuse3.RENAME_NOREPLACE))
        self._entries_changed(old_parent, now)
        self._entries_changed(new_parent, now)
        await self._keep_dir(bucket, split(src)[0])

    async def _commit_at(self, bucket: str, path: str) -> None:
        """Store what is staged for the file at `path`, or for the files below the directory there."""
        found = self.tree.lookup(bucket, path)
        if found is None or found.kind != DIR:
            node = self.inodes.find(bucket, path)
            if node is not None:
                await self.commit(node)
            return
        for n in [n for n in self.inodes.by_path.values() if n.bucket == bucket and n.path.startswith(path + "/")]:
            await self.commit(n)

    async def _rename_file(self, bucket: str, src: str, dst: str, found: Found, now: int, noreplace: bool) -> None:
        node = self.inodes.find(bucket, src)
        if node is not None:
            await self._commit_now(node)  # (inside _using_path of its directory)
        v = self.tree.head(bucket, src)
        if v is None:
            raise fail(errno.ENOENT)
        rec = self.store.inode_of(v)
        p, um = self._file_posix(node, Found(found.kind, v))
        p.ctime_ns = now  # the renamed file's status changed (on ext4 too)
        meta = self._meta(src, rec.inode_id if rec is not None else "", v, p, um)
        names = list(rec.links) if rec is not None else [src]
        target = self.inodes.find(bucket, dst)
        # no commit to the old name can slip in between, and the file replaced at dst finishes
        # its commit first (a close racing the rename would store it over the renamed file)
        async with _after_commits(node, target if target is not node else None):
            replaced = self.tree.head(bucket, dst)
            victim = self.store.inode_of(replaced) if replaced is not None else None
            with self.quiet_keys(bucket, [*names, dst]):
                moved = await self.store.rename_object(bucket, src, dst, noreplace=noreplace, meta=meta)
                self._moved(bucket, src, dst, victim)
        self.tree.listed(moved)
        if node is not None:
            self._rebase(node, p)
        if victim is not None and len(victim.links) > 1:  # the replaced file lives on, one name less
            others = [n for n in victim.links if n != dst]
            await self._touch_file(bucket, others[0], now)

    def _moved(self, bucket: str, src: str, dst: str, victim: InodeRecord | None) -> None:
        """The table after a file rename: a replaced file with other names keeps them."""
        gone = self.inodes.find(bucket, dst)
        if gone is not None and victim is not None and gone is not self.inodes.find(bucket, src):
            self.inodes.unname(gone, dst, [n for n in victim.links if n != dst])
        self.inodes.move(bucket, src, dst)

    async def _touch_file(self, bucket: str, key: str, now: int) -> None:
        """A file's status changed (its ctime moves) through no call of its own."""
        v = self.tree.head(bucket, key)
        rec = self.store.inode_of(v) if v is not None else None
        if v is None or rec is None:
            return
        node = self.inodes.find(bucket, key)
        p, um = self._file_posix(node, Found(kind_of_version(v), v))
        p.ctime_ns = now
        with self.quiet_keys(bucket, rec.links):
            await self.store.update_meta(bucket, key, self._meta(key, rec.inode_id, v, p, um))
        if node is not None:
            self._rebase(node, p)


@contextlib.asynccontextmanager
async def _after_commits(*nodes: Node | None) -> AsyncIterator[None]:
    """Hold the file states' locks of `nodes` (those with one): a commit of theirs under way
    (close, which the kernel does not serialize with unlink or rename) ends first, and none
    starts until the block is done; taken in one order, so two callers cannot deadlock."""
    states = {id(n.state): n.state for n in nodes if n is not None and n.state is not None}
    async with contextlib.AsyncExitStack() as stack:
        for key in sorted(states):
            await stack.enter_async_context(states[key].lock)
        yield

"""What a power cut would leave: the durable state of every file and directory of the backing tree.

The model is strict POSIX, the one SQLite's and ALICE's crash tests use:

- a file's data is durable up to its last fsync/fdatasync (or O_SYNC/O_DSYNC write); whatever
  was written, truncated or extended after it is lost;
- a directory's entries (new names, renames in and out, unlinks) are durable only after an
  fsync of that directory, and each directory on its own: a rename from A to B with only B
  synced leaves the name in both (the same inode under two names) after a power cut;
- attributes (mode, owner, times, xattrs) are durable at once (nothing here depends on them).

`ordered_names` switches to the model of a journaling filesystem (ext4 data=ordered, xfs):
every fsync, of a file or a directory, also commits every name change made so far, as their
single journal does. LevelDB relies on it (it never syncs the directory after making a new log
file), so a LevelDB that must survive power cuts runs on this model.

Every operation runs on the live tree (`base/tree`), so the live state is always exact. The
durable state is kept beside it as an undo journal, recorded only for what is not yet durable:

- per file inode: its durable size and the old bytes of every durable range overwritten or
  truncated away since its last sync (appends past the durable size cost nothing);
- per directory inode: its durable entries (name -> inode), snapshotted when it first changes
  after its last sync;
- a removed name whose inode a durable entry still names is moved to `base/limbo` rather than
  deleted, so that a power cut can put it back (and its inode number is never reused meanwhile).

`power_cut()` builds the durable tree in `base/tree.new` from the root's durable entries down
(files hard-linked, so they keep their inode and data; directories made anew), undoes each
file's journal, and swaps it in. Blocking; the caller makes sure nothing else runs meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileUndo:
    """How to bring a file's data back to its last sync."""

    durable_size: int
    saved: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, old bytes), oldest first


@dataclass
class PowerCutReport:
    names: int = 0  # names in the durable tree
    files_rolled_back: int = 0  # files whose data went back to their last sync
    dirs_rolled_back: int = 0  # directories whose entries went back to their last sync
    lost: list[str] = field(default_factory=list)  # durable entries whose inode was gone (a model bug)


class Durability:
    def __init__(self, base: Path, on_gone: Callable[[int], None] = lambda ino: None,
                 ordered_names: bool = False) -> None:
        """`on_gone(inode)`: an inode was deleted (its number may be reused from now on)."""
        self.base = base
        self.ordered_names = ordered_names
        self.on_gone = on_gone
        self.tree = base / "tree"
        self.limbo = base / "limbo"
        self.tree.mkdir(parents=True, exist_ok=True)
        # What an earlier run left in limbo is garbage: everything visible at start is durable.
        shutil.rmtree(self.limbo, ignore_errors=True)
        self.limbo.mkdir()
        for stale in ("tree.new", "tree.old", *(p.name for p in base.glob("trash.*"))):
            shutil.rmtree(base / stale, ignore_errors=True)
        self._check_dirent_inodes()
        self.files: dict[int, FileUndo] = {}
        self.dirs: dict[int, dict[str, int]] = {}
        self.refs: dict[int, int] = {}  # inode -> durable entries naming it (in snapshots)
        self.kept: dict[str, int] = {}  # limbo name -> inode
        self._names = itertools.count()

    def _check_dirent_inodes(self) -> None:
        """Snapshots take inode numbers from readdir (d_ino); the backing filesystem must report
        the same number there as stat does (ext4, xfs and tmpfs do; overlayfs may not)."""
        probe = self.limbo / "probe"
        probe.touch()
        try:
            entry = next(iter(os.scandir(self.limbo)))
            if entry.inode() != os.lstat(probe).st_ino:
                raise RuntimeError(f"{self.base}: readdir and stat disagree on inode numbers")
        finally:
            probe.unlink()

    # --- state queries -------------------------------------------------------------------------

    def dirty(self) -> dict[str, int]:
        return {"files": len(self.files), "dirs": len(self.dirs), "kept": len(self.kept)}

    # --- directories -------------------------------------------------------------------------

    def touch_dir(self, dir_path: str) -> None:
        """A directory's entries are about to change: remember its durable ones (once per sync)."""
        ino = os.lstat(dir_path).st_ino
        if ino in self.dirs:
            return
        entries = {e.name: e.inode() for e in os.scandir(dir_path)}
        self.dirs[ino] = entries
        for child in entries.values():
            self.refs[child] = self.refs.get(child, 0) + 1

    def new_dir(self, ino: int) -> None:
        """A directory just made: none of its entries is durable yet."""
        self._forget(ino)
        self.dirs[ino] = {}

    def sync_dir(self, ino: int) -> None:
        if self.ordered_names:
            self._commit_names()
            return
        entries = self.dirs.pop(ino, None)
        if entries:
            self._unref(entries.values())
            self._purge()

    def _commit_names(self) -> None:
        for entries in self.dirs.values():
            self._unref(entries.values())
        self.dirs.clear()
        self._purge()

    def remove(self, path: str, is_dir: bool) -> None:
        """Remove a name (its parent already touched): kept in limbo while a durable entry names
        its inode, deleted otherwise."""
        st = os.lstat(path)
        if self.refs.get(st.st_ino, 0) > 0:
            name = str(next(self._names))
            os.rename(path, self.limbo / name)
            self.kept[name] = st.st_ino
            return
        if is_dir:
            os.rmdir(path)
            self._forget(st.st_ino)
        else:
            os.unlink(path)
            if st.st_nlink <= 1:
                self._forget(st.st_ino)

    def _unref(self, inodes: Iterable[int]) -> None:
        for child in inodes:
            n = self.refs.get(child, 0) - 1
            if n > 0:
                self.refs[child] = n
            else:
                self.refs.pop(child, None)

    def _forget(self, ino: int) -> None:
        """An inode that no longer exists: its journal goes (the number may be reused)."""
        self.on_gone(ino)
        self.files.pop(ino, None)
        entries = self.dirs.pop(ino, None)
        if entries:
            self._unref(entries.values())

    def _purge(self) -> None:
        """Delete what limbo holds for no durable entry any more."""
        changed = True
        while changed:
            changed = False
            for name, ino in list(self.kept.items()):
                if self.refs.get(ino, 0) > 0:
                    continue
                del self.kept[name]
                path = self.limbo / name
                st = os.lstat(path)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                    self._forget(ino)
                else:
                    os.unlink(path)
                    if st.st_nlink <= 1:
                        self._forget(ino)
                changed = True

    # --- file data -----------------------------------------------------------------------------

    def new_file(self, ino: int) -> None:
        """A file just made: none of its data is durable."""
        self._forget(ino)
        self.files[ino] = FileUndo(0)

    def _undo_of(self, fd: int, ino: int) -> FileUndo:
        u = self.files.get(ino)
        if u is None:
            u = self.files[ino] = FileUndo(os.fstat(fd).st_size)
        return u

    def before_write(self, fd: int, ino: int, offset: int, length: int) -> None:
        """`fd` (readable) is about to get `length` bytes at `offset`."""
        u = self._undo_of(fd, ino)
        if offset >= u.durable_size:
            return  # past the durable data: a power cut truncates it away
        hi = min(offset + length, u.durable_size, os.fstat(fd).st_size)
        if hi > offset:
            u.saved.append((offset, os.pread(fd, hi - offset, offset)))

    def before_truncate(self, fd: int, ino: int, size: int) -> None:
        u = self._undo_of(fd, ino)
        hi = min(os.fstat(fd).st_size, u.durable_size)
        if size < hi:
            u.saved.append((size, os.pread(fd, hi - size, size)))

    def sync_file(self, ino: int) -> None:
        self.files.pop(ino, None)
        if self.ordered_names:
            self._commit_names()

    # --- the power cut -------------------------------------------------------------------------

    def power_cut(self) -> PowerCutReport:
        report = PowerCutReport(files_rolled_back=len(self.files), dirs_rolled_back=len(self.dirs))
        where: dict[int, str] = {}
        is_dir: set[int] = set()
        for top in (self.tree, self.limbo):
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    p = os.path.join(dirpath, name)
                    st = os.lstat(p)
                    where.setdefault(st.st_ino, p)
                    if os.path.isdir(p) and not os.path.islink(p):
                        is_dir.add(st.st_ino)
        root = os.lstat(self.tree).st_ino
        where[root] = str(self.tree)
        new = self.base / "tree.new"
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        placed: dict[int, str] = {}

        def build(dir_ino: int, dst: Path, ancestors: frozenset[int]) -> None:
            entries = self.dirs.get(dir_ino)
            if entries is None:
                entries = {e.name: e.inode() for e in os.scandir(where[dir_ino])}
            for name, ino in sorted(entries.items()):
                src = where.get(ino)
                target = dst / name
                if src is None:
                    report.lost.append(str(target.relative_to(new)))
                    continue
                report.names += 1
                if ino in is_dir:
                    if ino in ancestors:
                        continue  # a cycle only the per-directory model can make
                    target.mkdir()
                    build(ino, target, ancestors | {ino})
                    _copy_dir_attrs(Path(src), target)
                else:
                    os.link(src, target, follow_symlinks=False)
                    placed.setdefault(ino, str(target))

        build(root, new, frozenset({root}))
        _copy_dir_attrs(self.tree, new)
        for ino, u in self.files.items():
            path = placed.get(ino)
            if path is None or os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                for offset, data in reversed(u.saved):
                    os.pwrite(fd, data, offset)
                os.ftruncate(fd, u.durable_size)
            finally:
                os.close(fd)
        trash = self.base / f"trash.{next(self._names)}"
        trash.mkdir()
        os.rename(self.tree, trash / "tree")
        os.rename(new, self.tree)
        os.rename(self.limbo, trash / "limbo")
        self.limbo.mkdir()
        # what the cut threw away is deleted behind it: the disk is back at once
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True).start()
        self.files.clear()
        self.dirs.clear()
        self.refs.clear()
        self.kept.clear()
        return report


def _copy_dir_attrs(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    os.chmod(dst, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(dst, st.st_uid, st.st_gid)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

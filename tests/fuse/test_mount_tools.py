"""The real mount (`stowage serve` with FUSE) driven by the os module and everyday tools."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import mounted


def run(*cmd: str, cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def make_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello\n")
    (root / "blob.bin").write_bytes(os.urandom(3 << 20) + b"x")
    sub = root / "sub" / "deeper"
    sub.mkdir(parents=True)
    (sub / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(sub / "script.sh", 0o750)
    (root / "emptydir").mkdir()
    os.symlink("sub/deeper/script.sh", root / "link")
    os.utime(root / "small.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return root


@pytest.fixture
def mnt(mount_daemon: Any) -> Path:
    m = mounted(mount_daemon)
    os.mkdir(m / "work")
    return m / "work"


def test_os_level_semantics(mnt: Path) -> None:
    p = mnt / "f.txt"
    with open(p, "wb") as f:
        f.write(b"abc")
        f.seek(10)
        f.write(b"Z")
    assert p.read_bytes() == b"abc" + b"\0" * 7 + b"Z"
    with open(p, "r+b") as f:
        f.truncate(2)
    with open(p, "ab") as f:
        f.write(b"++")
    assert p.read_bytes() == b"ab++"
    os.makedirs(mnt / "a" / "b")
    with pytest.raises(OSError) as info:
        os.rmdir(mnt / "a")
    assert info.value.errno == errno.ENOTEMPTY
    os.rename(mnt / "a", mnt / "c")
    assert os.listdir(mnt / "c") == ["b"]
    with pytest.raises(FileExistsError):
        os.mkdir(mnt / "c")
    with pytest.raises(IsADirectoryError):
        open(mnt / "c", "rb").close()
    with pytest.raises(NotADirectoryError):
        os.listdir(p)
    os.chmod(p, 0o640)
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o640)
    os.utime(p, ns=(1_000_000_000, 2_000_000_000))
    assert os.stat(p).st_mtime_ns == 2_000_000_000
    os.setxattr(p, "user.tag", b"v")
    assert os.getxattr(p, "user.tag") == b"v"
    st = os.statvfs(mnt)
    assert st.f_blocks > 0 and st.f_bavail > 0
    with pytest.raises(OSError) as info:
        os.mkdir(mnt.parent / "Not_A_Bucket")
    assert info.value.errno == errno.EINVAL
    assert sorted(os.listdir(mnt)) == ["c", "f.txt"]


def renameat2(src: Path, dst: Path, flags: int) -> int:
    """renameat2(2), which the os module lacks: 0 or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, bytes(src), at_fdcwd, bytes(dst), flags) == 0:
        return 0
    return ctypes.get_errno()


def test_rename_flags_the_mount_cannot_honour_are_refused(mnt: Path) -> None:
    noreplace, exchange, whiteout = 1, 2, 4
    (mnt / "a").write_bytes(b"a")
    (mnt / "b").write_bytes(b"b")
    assert renameat2(mnt / "a", mnt / "b", noreplace) == errno.EEXIST
    assert renameat2(mnt / "a", mnt / "b", exchange) == errno.EINVAL
    # RENAME_WHITEOUT (overlayfs asks it of its upper layer) must not pass for a plain rename:
    # the whiteout it promised would be missing, and a file overlayfs deleted would reappear
    assert renameat2(mnt / "a", mnt / "c", whiteout) == errno.EINVAL
    assert sorted(os.listdir(mnt)) == ["a", "b"]
    assert renameat2(mnt / "a", mnt / "c", noreplace) == 0
    assert (mnt / "c").read_bytes() == b"a"


def test_cp_a_and_diff(mnt: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    run("cp", "-a", str(src), str(mnt / "copy"))
    run("diff", "-r", "--no-dereference", str(src), str(mnt / "copy"))
    for name in ("small.txt", "sub/deeper/script.sh"):
        a, b = os.lstat(src / name), os.lstat(mnt / "copy" / name)
        assert (a.st_mode, a.st_mtime_ns // 10**9) == (b.st_mode, b.st_mtime_ns // 10**9)
    assert os.readlink(mnt / "copy" / "link") == "sub/deeper/script.sh"
    run("cp", "-a", str(mnt / "copy"), str(tmp_path / "back"))
    run("diff", "-r", "--no-dereference", str(src), str(tmp_path / "back"))


def test_rsync_round_trip(mnt: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    run("rsync", "-a", f"{src}/", f"{mnt}/rs/")
    run("rsync", "-a", f"{mnt}/rs/", f"{tmp_path}/back/")
    run("diff", "-r", "--no-dereference", str(src), str(tmp_path / "back"))
    # a second rsync finds nothing to transfer: sizes and mtimes survived
    out = run("rsync", "-a", "--itemize-changes", f"{src}/", f"{mnt}/rs/")
    assert [line for line in out.splitlines() if line.startswith(">f")] == []


def test_tar_extract_and_create(mnt: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    run("tar", "-cf", str(tmp_path / "in.tar"), "-C", str(src), ".")
    (mnt / "x").mkdir()
    run("tar", "-xpf", str(tmp_path / "in.tar"), "-C", str(mnt / "x"))
    run("diff", "-r", "--no-dereference", str(src), str(mnt / "x"))
    run("tar", "-cf", str(mnt / "out.tar"), "-C", str(mnt / "x"), ".")
    (tmp_path / "y").mkdir()
    run("tar", "-xpf", str(mnt / "out.tar"), "-C", str(tmp_path / "y"))
    run("diff", "-r", "--no-dereference", str(src), str(tmp_path / "y"))


def test_git_clone_and_status(mnt: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    run("git", *env, "init", "-q", cwd=repo)
    make_tree(repo / "tree")
    for i in range(3):
        (repo / f"file{i}.txt").write_text(f"version {i}\n" * 100)
        run("git", "add", "-A", cwd=repo)
        run("git", *env, "commit", "-qm", f"commit {i}", cwd=repo)
    run("git", "clone", "-q", str(repo), str(mnt / "clone"))
    assert run("git", "status", "--porcelain", cwd=mnt / "clone") == ""
    assert run("git", "log", "--oneline", cwd=mnt / "clone").count("\n") == 3
    (mnt / "clone" / "file0.txt").write_text("changed\n")
    assert "file0.txt" in run("git", "status", "--porcelain", cwd=mnt / "clone")
    run("git", *env, "commit", "-qam", "in the mount", cwd=mnt / "clone")
    assert run("git", "status", "--porcelain", cwd=mnt / "clone") == ""
    run("git", "fsck", "--no-progress", cwd=mnt / "clone")


def test_sqlite_database_on_the_mount(mnt: Path) -> None:
    db = mnt / "app.db"
    con = sqlite3.connect(db)
    con.execute("create table t (id integer primary key, body text)")
    with con:
        con.executemany("insert into t (body) values (?)", [(f"row {i}" * 20,) for i in range(2000)])
    with con:
        con.execute("update t set body = 'changed' where id % 7 = 0")
        con.execute("delete from t where id % 11 = 0")
    con.close()
    out = run("sqlite3", str(db), "select count(*), sum(body = 'changed') from t; pragma integrity_check;")
    assert out.split() == ["1819|260", "ok"]


def test_sequential_reads_get_a_wide_read_ahead(mount_daemon: Any) -> None:
    """The mount's read-ahead is READ_AHEAD_KB, not the kernel's 128 KiB for FUSE (service.py)."""
    from fusefs.service import READ_AHEAD_KB

    st = os.stat(mounted(mount_daemon))
    knob = Path(f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb")
    assert int(knob.read_text()) == READ_AHEAD_KB == 1024


def test_read_ahead_left_alone_where_sysfs_is_not_writable(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from fusefs.service import widen_read_ahead

    caplog.set_level(logging.INFO, logger="stowage.fuse")
    widen_read_ahead(os.makedev(0, 4242), sysfs=tmp_path / "absent")
    assert "stays the kernel's default" in caplog.text

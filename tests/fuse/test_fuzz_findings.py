"""What fuzzing the real mount found, held fixed: a close (FUSE flush, which the kernel does not
serialize with unlink, rename or setattr) racing those calls undid them; a file could grow by a
hole the disks cannot hold, and the close then wrote zeros until they were full; a write after
an S3 PUT patched the replaced version, and one after an S3 DELETE brought the object back;
attributes any S3 writer can store (a time past 2262,
the epoch, the largest device number, a 4 KiB symlink target) broke listings or read back wrong;
a full disk inside an engine nursery was EIO, not ENOSPC."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.engine.errors import InsufficientStorage
from fusefs.errnos import errno_for

from .conftest import mounted


def _bucket(daemon: Any, name: str = "fzb") -> tuple[Path, Any]:
    s3 = daemon.s3()
    s3.create_bucket(Bucket=name)
    b = mounted(daemon) / name
    deadline = time.monotonic() + 10
    while not b.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return b, s3


def _close_racing(path: Path, other: threading.Thread) -> None:
    """Close `path` with 4 MiB staged (a commit of tens of ms) while `other` runs."""
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, os.urandom(4 << 20), 4096)
    other.start()
    os.close(fd)
    other.join()


def test_unlink_rename_and_chmod_wait_for_a_racing_close(mount_daemon: Any) -> None:
    b, s3 = _bucket(mount_daemon)
    for i in range(4):
        gone = b / f"gone{i}"
        gone.write_bytes(b"")
        _close_racing(gone, threading.Thread(target=lambda p=gone, i=i: (time.sleep(i * 0.003), os.unlink(p))))
        assert not gone.exists()

        target, new = b / f"target{i}", b / f"new{i}"
        target.write_bytes(b"")
        new.write_bytes(b"renamed in")
        _close_racing(target, threading.Thread(target=lambda t=target, n=new, i=i: (
            time.sleep(i * 0.003), os.rename(n, t))))
        assert target.read_bytes() == b"renamed in"

        moded = b / f"mode{i}"
        moded.write_bytes(b"")
        os.chmod(moded, 0o644)
        _close_racing(moded, threading.Thread(target=lambda p=moded, i=i: (time.sleep(i * 0.003),
                                                                           os.chmod(p, 0o600))))
        assert s3.head_object(Bucket="fzb", Key=f"mode{i}")["Metadata"]["mode"] == str(0o100600)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="fzb")["Contents"]}
    assert keys == {f"{k}{i}" for k in ("target", "mode") for i in range(4)}
    assert all(s3.get_object(Bucket="fzb", Key=f"target{i}")["Body"].read() == b"renamed in" for i in range(4))


def test_growth_the_disks_cannot_hold_is_refused_at_once(mount_daemon: Any) -> None:
    b, s3 = _bucket(mount_daemon)
    f = b / "sparse"
    f.write_bytes(b"start")
    with pytest.raises(OSError) as exc:
        os.truncate(f, 2**62)
    assert exc.value.errno == errno.EFBIG
    vfs = os.statvfs(b)
    far = vfs.f_bavail * vfs.f_frsize + (1 << 30)  # past everything the disks hold
    fd = os.open(f, os.O_RDWR)
    try:
        with pytest.raises(OSError) as exc:
            os.pwrite(fd, b"x", far)
        assert exc.value.errno == errno.ENOSPC
        with pytest.raises(OSError) as exc:
            os.ftruncate(fd, far)
        assert exc.value.errno == errno.ENOSPC
        os.pwrite(fd, b"!", 5 << 20)  # an ordinary hole is still fine
    finally:
        os.close(fd)
    assert f.stat().st_size == (5 << 20) + 1
    assert s3.head_object(Bucket="fzb", Key="sparse")["ContentLength"] == (5 << 20) + 1


def test_a_write_after_an_s3_put_patches_the_new_version(mount_daemon: Any) -> None:
    b, s3 = _bucket(mount_daemon)
    f = b / "k"
    f.write_bytes(b"0123456789" * 1000)
    fd = os.open(f, os.O_WRONLY)
    try:
        s3.put_object(Bucket="fzb", Key="k", Body=b"short")
        os.pwrite(fd, b"XY", 3)
    finally:
        os.close(fd)
    assert s3.get_object(Bucket="fzb", Key="k")["Body"].read() == b"shoXY"


def test_an_s3_delete_acts_on_open_clean_files_as_an_unlink(mount_daemon: Any) -> None:
    """A write through a descriptor opened before an S3 DELETE (nothing pending) goes to the
    unlinked file, as after `unlink`: it used to bring the deleted object back at close, its
    old content patched."""
    b, s3 = _bucket(mount_daemon)
    f = b / "gone"
    f.write_bytes(b"0123456789" * 1000)
    fd = os.open(f, os.O_RDWR)
    try:
        s3.delete_object(Bucket="fzb", Key="gone")
        os.pwrite(fd, b"XY", 3)
        assert os.pread(fd, 6, 0) == b"012XY5"  # the open file keeps its content
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)
    assert "Contents" not in s3.list_objects_v2(Bucket="fzb", Prefix="gone")
    assert not f.exists()
    f.write_bytes(b"new")  # the name is free for a new file
    assert s3.get_object(Bucket="fzb", Key="gone")["Body"].read() == b"new"


def _churn(seconds: float, *workers: Any) -> None:
    stop = time.monotonic() + seconds
    threads = [threading.Thread(target=w, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _repeating(op: Any, errors: list[int]) -> Any:
    """A worker for _churn: `op()` again and again until the stop time, each OSError's errno kept."""
    def work(stop: float) -> None:
        while time.monotonic() < stop:
            try:
                op()
            except OSError as exc:
                errors.append(exc.errno)
    return work


def test_open_trunc_racing_the_last_close_and_an_unlink(mount_daemon: Any) -> None:
    """open(O_TRUNC) waiting for the file's lock while the last descriptor closed kept the
    state that close dropped: the new descriptor's close (or the open) failed EBADF."""
    b, _ = _bucket(mount_daemon)
    f = b / "churn"
    errors: list[int] = []

    def write() -> None:
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(fd, b"x" * 100, 0)
        finally:
            os.close(fd)

    def unlinker(stop: float) -> None:
        while time.monotonic() < stop:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
            time.sleep(0.01)

    writer = _repeating(write, errors)
    _churn(8, writer, writer, writer, unlinker)
    assert errno.EBADF not in errors and not errors, errors


def test_open_o_creat_racing_s3_puts_and_deletes_of_the_name(mount_daemon: Any) -> None:
    """open(O_CREAT) without O_EXCL never fails EEXIST on ext4, nor ENOENT: the mount answered
    both when S3 created or deleted the name after the kernel's lookup. It now answers ESTALE
    there, and the kernel looks the name up again (once: a second change inside that window
    still fails, ESTALE)."""
    b, _ = _bucket(mount_daemon)
    f = b / "o"
    errors: list[int] = []


    def s3_churn(stop: float) -> None:
        c = mount_daemon.s3()
        while time.monotonic() < stop:
            c.put_object(Bucket="fzb", Key="o", Body=b"s3")
            c.delete_object(Bucket="fzb", Key="o")

    opener = _repeating(lambda: os.close(os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)), errors)
    _churn(5, opener, opener, s3_churn, s3_churn)
    assert set(errors) <= {errno.ESTALE}, errors  # (two changes within one open's retry)


def test_attributes_any_s3_writer_can_store(mount_daemon: Any) -> None:
    b, s3 = _bucket(mount_daemon)
    s3.put_object(Bucket="fzb", Key="dir/good", Body=b"fine")
    s3.put_object(Bucket="fzb", Key="dir/far", Body=b"x", Metadata={"mtime": "9" * 20, "atime": "9" * 1000})
    assert sorted(os.listdir(b / "dir")) == ["far", "good"]  # the listing stays whole
    assert abs(os.stat(b / "dir/far").st_mtime - time.time()) < 3600  # Last-Modified instead

    epoch = b / "epoch"
    epoch.write_bytes(b"")
    os.utime(epoch, (0, 0))
    os.mkdir(b / "epochdir")
    os.utime(b / "epochdir", (0, 5))
    time.sleep(1.2)  # past the kernel's attribute cache
    assert (os.stat(epoch).st_atime_ns, os.stat(epoch).st_mtime_ns) == (0, 0)
    assert (os.stat(b / "epochdir").st_atime_ns, os.stat(b / "epochdir").st_mtime_ns) == (0, 5_000_000_000)

    top = os.makedev(4095, 1048575)  # 0xffffffff: every bit FUSE carries
    os.mknod(b / "dev", 0o600 | 0o020000, top)
    assert os.stat(b / "dev").st_rdev == top

    link = str(0o120777)  # a symlink as a trusted S3 writer (the root key) stores one
    s3.put_object(Bucket="fzb", Key="l4095", Body=b"t" * 4095, Metadata={"mode": link})
    s3.put_object(Bucket="fzb", Key="l4096", Body=b"t" * 4096, Metadata={"mode": link})
    assert len(os.readlink(b / "l4095")) == 4095
    with pytest.raises(OSError) as exc:
        os.readlink(b / "l4096")
    assert exc.value.errno == errno.ENAMETOOLONG


def test_a_full_disk_inside_an_engine_nursery_is_enospc() -> None:
    full = InsufficientStorage("the pool is full")
    assert errno_for(full) == errno.ENOSPC
    assert errno_for(ExceptionGroup("writers", [full])) == errno.ENOSPC
    assert errno_for(ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("x"), full])])) == errno.ENOSPC
    assert errno_for(ExceptionGroup("writers", [ValueError("x")])) == errno.EIO

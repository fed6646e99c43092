"""One view: S3 (boto3 against the daemon's gateway) and the mount see the same objects."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

from tests.polling import wait_for

from .conftest import mounted


def test_s3_write_is_visible_in_the_mount_at_once(mount_daemon: Any) -> None:
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="dir/a.txt", Body=b"first")
    assert (m / "shared" / "dir" / "a.txt").read_bytes() == b"first"
    assert os.stat(m / "shared" / "dir" / "a.txt").st_size == 5  # attributes now cached
    with open(m / "shared" / "dir" / "a.txt", "rb") as held:
        s3.put_object(Bucket="shared", Key="dir/a.txt", Body=b"second version")
        assert os.stat(m / "shared" / "dir" / "a.txt").st_size == 14
        assert (m / "shared" / "dir" / "a.txt").read_bytes() == b"second version"
        held.seek(0)
        assert held.read() == b"second version"
    s3.delete_object(Bucket="shared", Key="dir/a.txt")
    assert not (m / "shared" / "dir" / "a.txt").exists()
    assert not (m / "shared" / "dir").exists()  # it was only implied by the key
    s3.put_object(Bucket="shared", Key="dir", Body=b"now a file")
    assert (m / "shared" / "dir").read_bytes() == b"now a file"


def test_mount_write_is_visible_over_s3_with_md5_etag(mount_daemon: Any) -> None:
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    os.mkdir(m / "fromfs")
    data = os.urandom(5 << 20) + b"end"
    with open(m / "fromfs" / "video.mp4", "wb") as f:
        f.write(data)
    head = s3.head_object(Bucket="fromfs", Key="video.mp4")
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "video/mp4"
    assert s3.get_object(Bucket="fromfs", Key="video.mp4")["Body"].read() == data
    os.makedirs(m / "fromfs" / "empty" / "dir")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fromfs")["Contents"]]
    assert "empty/dir/" in keys  # s3fs-compatible directory marker
    os.rename(m / "fromfs" / "video.mp4", m / "fromfs" / "empty" / "moved.mp4")
    assert s3.get_object(Bucket="fromfs", Key="empty/moved.mp4")["Body"].read() == data
    os.chmod(m / "fromfs" / "empty" / "moved.mp4", 0o600)
    meta = s3.head_object(Bucket="fromfs", Key="empty/moved.mp4")["Metadata"]
    assert int(meta["mode"]) & 0o777 == 0o600


def test_both_views_after_daemon_restart(mount_daemon: Any) -> None:
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    os.mkdir(m / "keep")
    (m / "keep" / "via-fs.txt").write_bytes(b"written in the mount")
    os.utime(m / "keep" / "via-fs.txt", ns=(1_650_000_000 * 10**9, 1_650_000_000 * 10**9))
    s3.put_object(Bucket="keep", Key="via-s3.txt", Body=b"written over S3")
    mount_daemon.restart()
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    assert (m / "keep" / "via-s3.txt").read_bytes() == b"written over S3"
    assert (m / "keep" / "via-fs.txt").read_bytes() == b"written in the mount"
    assert os.stat(m / "keep" / "via-fs.txt").st_mtime_ns == 1_650_000_000 * 10**9
    got = s3.get_object(Bucket="keep", Key="via-fs.txt")
    assert got["Body"].read() == b"written in the mount"
    assert got["ETag"].strip('"') == hashlib.md5(b"written in the mount").hexdigest()


def test_stale_mount_after_crash_is_cleaned(mount_daemon: Any) -> None:
    m = mounted(mount_daemon)
    os.mkdir(m / "crash")
    (m / "crash" / "f").write_bytes(b"durable")
    assert mount_daemon.proc is not None
    mount_daemon.proc.kill()  # SIGKILL: the mount stays behind, disconnected
    mount_daemon.proc.wait()
    try:
        os.statvfs(m)
        stale = False
    except OSError:
        stale = True
    assert stale, "a killed FUSE daemon should leave a disconnected mount"
    mount_daemon.start()
    wait_for(lambda: Path(m / "crash" / "f").exists(), timeout=30, what="the file in the new mount")
    assert (m / "crash" / "f").read_bytes() == b"durable"


def test_streamed_file_and_small_files_over_s3(mount_daemon: Any) -> None:
    """A file written in order past STREAM_START is stored while written (fusefs/streaming.py);
    small files are stored whole: both are plain S3 objects with an MD5 ETag once closed."""
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    os.mkdir(m / "stream")
    block = os.urandom(1 << 20)
    data = block * 12 + b"tail"
    with open(m / "stream" / "big.bin", "wb", buffering=0) as f:
        for _ in range(12):
            f.write(block)
        f.write(b"tail")
        os.fsync(f.fileno())
        assert s3.head_object(Bucket="stream", Key="big.bin")["ContentLength"] == len(data)
    head = s3.head_object(Bucket="stream", Key="big.bin")
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert s3.get_object(Bucket="stream", Key="big.bin")["Body"].read() == data
    assert (m / "stream" / "big.bin").read_bytes() == data
    for i in range(3):
        (m / "stream" / f"s{i}").write_bytes(b"x" * (i + 1) * 1000)
        assert s3.get_object(Bucket="stream", Key=f"s{i}")["Body"].read() == b"x" * (i + 1) * 1000
    with open(m / "stream" / "big.bin", "r+b") as f:  # an overwrite after a streamed commit
        f.write(b"HEAD")
    assert s3.get_object(Bucket="stream", Key="big.bin")["Body"].read() == b"HEAD" + data[4:]


def test_streamed_file_read_and_rewritten_while_open(mount_daemon: Any) -> None:
    """A streamed file's bytes are not staged past its first part (fusefs/streaming.py): a read
    of them through another descriptor, then a header written back at offset 0 (as zip and
    tar writers do) and more appended, all land in the one object S3 serves."""
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    os.mkdir(m / "settle")
    path = m / "settle" / "archive.bin"
    body = bytearray(os.urandom(12 << 20))
    with open(path, "wb", buffering=0) as f:
        for off in range(0, len(body), 1 << 20):
            f.write(body[off : off + (1 << 20)])
        with open(path, "rb", buffering=0) as r:
            r.seek(10 << 20)
            assert r.read(1 << 20) == body[10 << 20 : 11 << 20]
        f.seek(0)
        f.write(b"HDR!")
        body[:4] = b"HDR!"
        f.seek(len(body))
        f.write(b"trailer")
        body += b"trailer"
    assert s3.get_object(Bucket="settle", Key="archive.bin")["Body"].read() == bytes(body)
    assert path.read_bytes() == bytes(body)
    assert os.stat(path).st_blksize == 1 << 20  # cp and cat write in pieces of this size (fusefs/attrs.py)


def test_only_user_xattrs_are_supported(mount_daemon: Any) -> None:
    """Other namespaces answer ENOTSUP, so `ls -l` stops asking for SELinux labels and ACLs."""
    m = mounted(mount_daemon)
    os.mkdir(m / "xattrs")
    f = m / "xattrs" / "f"
    f.write_bytes(b"1")
    for name in ("security.selinux", "system.posix_acl_access", "trusted.x"):
        try:
            os.getxattr(f, name)
            raise AssertionError(f"{name} answered")
        except OSError as exc:
            assert exc.errno == errno.EOPNOTSUPP, (name, exc)
    os.setxattr(f, "user.k", b"v")
    assert os.getxattr(f, "user.k") == b"v"

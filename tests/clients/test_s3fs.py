"""s3fs-fuse (1.90, apt) mounting a bucket from the gateway: path-style requests, Signature V4,
Content-MD5 on uploads. Files written through the mount are read back through boto3 and objects
put with boto3 are read through the mount; large files go up as multipart uploads, and a small
write into a large file makes s3fs re-upload it as a "mix" upload (UploadPartCopy for the
unchanged ranges). The mount is always unmounted in teardown."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import AWKWARD_NAMES, bucket_contents, bucket_keys, clean_env, require

MiB = 1024 * 1024


@dataclass
class Mount:
    path: Path
    bucket: str
    log: Path

    def http_errors(self) -> list[str]:
        """Responses s3fs logged with a status other than 2xx/404 (404 is how it probes names)."""
        codes = re.findall(r"HTTP response code (\d+)", self.log.read_text(errors="replace"))
        return [c for c in codes if not c.startswith("2") and c != "404"]


def _unmount(path: Path) -> None:
    if os.path.ismount(path) and subprocess.run(["fusermount", "-u", str(path)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def mnt(cd: Any, s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    exe = require("s3fs")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    base = tmp_path_factory.mktemp("s3fs")
    s3.create_bucket(Bucket="s3fs-bucket")
    passwd = base / "passwd"
    passwd.write_text(f"{cd.access_key}:{cd.secret_key}\n")
    passwd.chmod(0o600)
    path, log = base / "mnt", base / "s3fs.log"
    path.mkdir()
    (base / "home").mkdir()
    opts = (f"url={cd.endpoint},use_path_request_style,passwd_file={passwd},sigv4,endpoint=us-east-1,"
            f"enable_content_md5,retries=1,dbglevel=info,logfile={log}")
    # -f: s3fs stays our child, so the fixture owns and reaps it.
    proc = subprocess.Popen([exe, "s3fs-bucket", str(path), "-f", "-o", opts], env=clean_env(base / "home"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(path):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"s3fs exited with {proc.returncode}: {err}\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError("s3fs did not mount")
            time.sleep(0.05)
        yield Mount(path, "s3fs-bucket", log)
    finally:
        _unmount(path)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_write_through_mount_read_through_boto3(mnt: Mount, s3: Any) -> None:
    small = b"written through s3fs\n"
    big = os.urandom(25 * MiB + 3)  # over the 10 MiB multipart_size: a multipart upload
    (mnt.path / "small.txt").write_bytes(small)
    (mnt.path / "docs").mkdir()
    (mnt.path / "docs/big.bin").write_bytes(big)
    (mnt.path / "docs/empty").touch()

    got = bucket_contents(s3, mnt.bucket)
    assert got["small.txt"] == small and got["docs/big.bin"] == big and got["docs/empty"] == b""
    assert "docs/" in got  # s3fs's directory marker object
    head = s3.head_object(Bucket=mnt.bucket, Key="docs/big.bin")
    assert re.fullmatch(r"[0-9a-f]{32}-[0-9]+", head["ETag"].strip('"')), head["ETag"]
    assert s3.head_object(Bucket=mnt.bucket, Key="small.txt")["ETag"].strip('"') == hashlib.md5(small).hexdigest()

    assert sorted(os.listdir(mnt.path)) == ["docs", "small.txt"]
    assert sorted(os.listdir(mnt.path / "docs")) == ["big.bin", "empty"]
    assert (mnt.path / "docs/big.bin").stat().st_size == len(big)
    assert (mnt.path / "docs/big.bin").read_bytes() == big
    assert mnt.http_errors() == []


def test_objects_from_boto3_visible_and_readable(mnt: Mount, s3: Any) -> None:
    data = os.urandom(3 * MiB + 1)
    # No directory markers: s3fs must find "implicit" directories from the listing's CommonPrefixes.
    s3.put_object(Bucket=mnt.bucket, Key="from-boto3/nested/obj.bin", Body=data)
    s3.put_object(Bucket=mnt.bucket, Key="from-boto3/top.txt", Body=b"top")
    assert sorted(os.listdir(mnt.path / "from-boto3")) == ["nested", "top.txt"]
    assert (mnt.path / "from-boto3/nested").is_dir()
    assert (mnt.path / "from-boto3/nested/obj.bin").read_bytes() == data
    with open(mnt.path / "from-boto3/nested/obj.bin", "rb") as f:  # ranged reads
        f.seek(2 * MiB + 17)
        assert f.read(1000) == data[2 * MiB + 17:2 * MiB + 1017]
    assert (mnt.path / "from-boto3/top.txt").read_bytes() == b"top"
    assert mnt.http_errors() == []


def test_modify_rename_delete(mnt: Mount, s3: Any) -> None:
    d = mnt.path / "work"
    d.mkdir()
    big = bytearray(os.urandom(24 * MiB))
    (d / "big.bin").write_bytes(big)
    # A small write in the middle of a large file: s3fs re-uploads it as multipart, copying the
    # unchanged parts server-side from the old object (UploadPartCopy with a range).
    fd = os.open(d / "big.bin", os.O_WRONLY)
    try:
        os.pwrite(fd, b"PATCHED!", 13 * MiB + 5)
    finally:
        os.close(fd)
    big[13 * MiB + 5:13 * MiB + 13] = b"PATCHED!"
    assert "Copy Part [tpath=/work/big.bin]" in mnt.log.read_text(errors="replace")  # the path taken
    assert s3.get_object(Bucket=mnt.bucket, Key="work/big.bin")["Body"].read() == bytes(big)

    with open(d / "log.txt", "ab") as f:
        f.write(b"line 1\n")
    with open(d / "log.txt", "ab") as f:
        f.write(b"line 2\n")
    assert s3.get_object(Bucket=mnt.bucket, Key="work/log.txt")["Body"].read() == b"line 1\nline 2\n"

    # ftruncate on an open file, as truncate(1) does. (truncate(2) on a path nothing has open
    # uploads zeros for the kept range in s3fs 1.90 - an s3fs bug, fixed upstream in
    # s3fs-fuse PR #2931; the PUT it sends carries zeros with a matching Content-MD5.)
    with open(d / "log.txt", "r+b") as f:
        f.truncate(4)
    assert s3.get_object(Bucket=mnt.bucket, Key="work/log.txt")["Body"].read() == b"line"

    # Rename: server-side copy then delete.
    (d / "big.bin").rename(d / "renamed.bin")
    assert "work/big.bin" not in bucket_keys(s3, mnt.bucket, "work/")
    assert s3.get_object(Bucket=mnt.bucket, Key="work/renamed.bin")["Body"].read() == bytes(big)
    (d / "sub").mkdir()
    (d / "sub/x").write_bytes(b"x")
    (d / "sub").rename(d / "sub2")
    assert sorted(os.listdir(d)) == ["log.txt", "renamed.bin", "sub2"]
    assert s3.get_object(Bucket=mnt.bucket, Key="work/sub2/x")["Body"].read() == b"x"

    (d / "renamed.bin").unlink()
    (d / "log.txt").unlink()
    (d / "sub2/x").unlink()
    (d / "sub2").rmdir()
    d.rmdir()
    assert bucket_keys(s3, mnt.bucket, "work") == []
    assert not d.exists()
    assert mnt.http_errors() == []


def test_awkward_names(mnt: Mount, s3: Any) -> None:
    names = {n.replace("/", "_"): size for n, size in AWKWARD_NAMES.items()}
    (mnt.path / "odd").mkdir()
    for name, size in names.items():
        (mnt.path / "odd" / name).write_bytes(name.encode() * size)
    assert bucket_contents(s3, mnt.bucket, "odd/") == {"": b""} | {n: n.encode() * s for n, s in names.items()}
    s3.put_object(Bucket=mnt.bucket, Key="odd/from boto3 + ü&=?#.txt", Body=b"boto3")
    assert sorted(os.listdir(mnt.path / "odd")) == sorted([*names, "from boto3 + ü&=?#.txt"])
    assert (mnt.path / "odd/from boto3 + ü&=?#.txt").read_bytes() == b"boto3"
    assert mnt.http_errors() == []

"""The mount's access control, with a real mount and a second local uid (nobody, via setpriv).

POSIX attributes sent over S3 count only from a principal allowed stowage:PutPosixAttributes
(root; a `stowage user add` user is not); everything else shows the bucket's configured
defaults, private to root unless the TOML opens a bucket; setuid/setgid never come from S3; and
the kernel applies to what the mount reports exactly the rules it applies on ext4.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import fuse_available, mounted

NOBODY = 65534
ATTRS = {"mode": "0777", "uid": str(NOBODY), "gid": str(NOBODY)}

# Runs as the other uid: one operation on one path, prints "ok" or the errno's name.
PROBE = r"""
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "read":
        open(path, "rb").read()
    elif op == "write":
        os.close(os.open(path, os.O_WRONLY))
    elif op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == "list":
        os.listdir(path)
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "unlink":
        os.unlink(path)
    elif op == "stat":
        os.stat(path)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def as_nobody(op: str, path: Path) -> str:
    r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                        "/usr/bin/python3", "-c", PROBE, op, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def perm(path: Path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@dataclass
class Shared:
    """A daemon whose mount lies where other local users can reach it, and two S3 clients:
    root's, and alice's (a `stowage user add` user, who may not set POSIX attributes)."""

    daemon: Any
    mnt: Path
    root: Any
    alice: Any
    scratch: Path

    def local_copy(self, paths: list[str]) -> Path:
        """The same tree on the local disk: each path made with the type, owner and mode the mount
        shows for it, so the kernel's verdicts on both can be compared."""
        ref = self.scratch / "ref"
        for rel in ["", *paths]:
            src, dst = self.mnt / rel, ref / rel
            if stat.S_ISDIR(os.stat(src).st_mode):
                dst.mkdir(exist_ok=True)
            else:
                dst.write_bytes(b"local")
            mode, uid, gid = perm(src)
            os.chown(dst, uid, gid)
            os.chmod(dst, mode)
        return ref


@pytest.fixture
def shared(daemon_factory: Any, tmp_path: Path) -> Iterator[Callable[[str], Shared]]:
    if not fuse_available():
        pytest.skip("/dev/fuse is not usable here")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    # pytest's tmp_path is private to root (0700): mount where nobody can reach
    scratch = Path(tempfile.mkdtemp(prefix="stowage-access-", dir="/tmp"))
    scratch.chmod(0o755)
    started: list[Any] = []

    def start(toml: str) -> Shared:
        (tmp_path / "stowage.toml").write_text(toml)
        d = daemon_factory(["--config", str(tmp_path / "stowage.toml"), "--mount", str(scratch / "mnt")])
        started.append(d)
        user = json.loads(d.cli("user", "add", "alice", "--json").stdout)
        return Shared(d, mounted(d), d.s3(), client(d, user["access_key"], user["secret_key"]), scratch)

    try:
        yield start
    finally:
        for d in started:
            d.stop(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


def client(daemon: Any, ak: str, sk: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=daemon.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def multipart(s3: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=body)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})


def test_posix_attributes_count_only_from_a_principal_allowed_to_set_them(shared: Callable[[str], Shared]) -> None:
    sh = shared('[mount.buckets.shared]\ndir_mode = "0755"\n')
    b = sh.mnt / "shared"
    sh.root.create_bucket(Bucket="shared")
    sh.root.put_object(Bucket="shared", Key="by-root", Body=b"root says", Metadata=ATTRS)
    sh.alice.put_object(Bucket="shared", Key="by-alice", Body=b"alice says", Metadata=ATTRS)
    assert perm(b / "by-root") == (0o777, NOBODY, NOBODY)
    assert perm(b / "by-alice") == (0o600, 0, 0)  # the bucket's defaults: root's, private
    assert as_nobody("read", b / "by-root") == "ok"
    assert as_nobody("write", b / "by-root") == "ok"
    assert as_nobody("read", b / "by-alice") == "EACCES"
    assert as_nobody("write", b / "by-alice") == "EACCES"
    # S3 still returns what alice stored; the mount just does not honour it
    assert sh.root.head_object(Bucket="shared", Key="by-alice")["Metadata"] == ATTRS

    # multipart uploads: decided when the upload is created
    multipart(sh.root, "shared", "mp-root", b"r" * 100, ATTRS)
    multipart(sh.alice, "shared", "mp-alice", b"a" * 100, ATTRS)
    assert perm(b / "mp-root") == (0o777, NOBODY, NOBODY)
    assert perm(b / "mp-alice") == (0o600, 0, 0)

    # copies: alice copying trusted attributes is alice setting them; nobody launders untrusted ones
    sh.alice.copy_object(Bucket="shared", Key="alice-copy", CopySource={"Bucket": "shared", "Key": "by-root"})
    assert perm(b / "alice-copy") == (0o600, 0, 0)
    sh.root.copy_object(Bucket="shared", Key="root-copy", CopySource={"Bucket": "shared", "Key": "by-alice"})
    assert perm(b / "root-copy") == (0o600, 0, 0)
    sh.root.copy_object(Bucket="shared", Key="root-copy-kept", CopySource={"Bucket": "shared", "Key": "by-root"})
    assert perm(b / "root-copy-kept") == (0o777, NOBODY, NOBODY)
    sh.root.copy_object(Bucket="shared", Key="root-replaced", CopySource={"Bucket": "shared", "Key": "by-alice"},
                        MetadataDirective="REPLACE", Metadata=ATTRS)
    assert perm(b / "root-replaced") == (0o777, NOBODY, NOBODY)
    sh.alice.copy_object(Bucket="shared", Key="by-root", CopySource={"Bucket": "shared", "Key": "by-root"},
                         MetadataDirective="REPLACE", Metadata={**ATTRS, "mode": "0644"})  # s3fs's chmod
    assert perm(b / "by-root") == (0o600, 0, 0)
    assert as_nobody("read", b / "by-root") == "EACCES"

    # symlinks: only trusted metadata makes one; alice's is a file holding the target's name
    link_meta = {"mode": str(stat.S_IFLNK | 0o777)}
    sh.root.put_object(Bucket="shared", Key="root-link", Body=b"by-alice", Metadata=link_meta)
    sh.alice.put_object(Bucket="shared", Key="alice-link", Body=b"/etc/shadow", Metadata=link_meta)
    assert os.readlink(b / "root-link") == "by-alice"
    assert stat.S_ISREG(os.lstat(b / "alice-link").st_mode)
    assert (b / "alice-link").read_bytes() == b"/etc/shadow"

    # what the mount writes is its own: root opening alice's file locally makes it readable
    os.chmod(b / "by-alice", 0o644)
    assert perm(b / "by-alice") == (0o644, 0, 0)
    assert as_nobody("read", b / "by-alice") == "ok"
    assert as_nobody("write", b / "by-alice") == "EACCES"


def test_defaults_are_private_to_root_and_checked_as_on_ext4(shared: Callable[[str], Shared]) -> None:
    sh = shared("")
    sh.root.create_bucket(Bucket="private")
    sh.root.put_object(Bucket="private", Key="top.txt", Body=b"secret")
    sh.root.put_object(Bucket="private", Key="dir/file.txt", Body=b"secret", Metadata={"mtime": "1700000000"})
    b = sh.mnt / "private"
    assert stat.S_IMODE(os.stat(sh.mnt).st_mode) == 0o711  # pass through to opened buckets, list nothing
    assert perm(b) == (0o700, 0, 0)
    assert perm(b / "dir") == (0o700, 0, 0)  # implicit directory
    assert perm(b / "top.txt") == (0o600, 0, 0)
    assert os.stat(b / "dir" / "file.txt").st_mtime == 1_700_000_000  # times are honoured from anyone
    assert as_nobody("list", sh.mnt) == "EACCES"
    assert as_nobody("stat", b) == "ok"
    for op, rel in [("list", "private"), ("read", "private/top.txt"), ("read", "private/dir/file.txt"),
                    ("create", "private/new"), ("mkdir", "private/dir/sub"), ("unlink", "private/top.txt")]:
        assert as_nobody(op, sh.mnt / rel) == "EACCES", (op, rel)
    ref = sh.local_copy(["private", "private/top.txt", "private/dir", "private/dir/file.txt"])
    for op, rel in [("list", ""), ("stat", "private"), ("list", "private"), ("read", "private/top.txt"),
                    ("create", "private/new"), ("mkdir", "private/dir/sub")]:
        assert as_nobody(op, sh.mnt / rel) == as_nobody(op, ref / rel), (op, rel)


def test_a_bucket_opened_to_a_local_user_in_the_toml(shared: Callable[[str], Shared]) -> None:
    sh = shared('[mount.buckets.team]\nowner = "nobody"\ngroup = "65534"\nfile_mode = "0640"\ndir_mode = "0750"\n')
    for name in ("team", "other"):
        sh.root.create_bucket(Bucket=name)
        sh.root.put_object(Bucket=name, Key="docs/a.txt", Body=b"for the team")
    team = sh.mnt / "team"
    assert perm(team) == (0o750, NOBODY, NOBODY)
    assert perm(team / "docs") == (0o750, NOBODY, NOBODY)
    assert perm(team / "docs" / "a.txt") == (0o640, NOBODY, NOBODY)
    assert as_nobody("list", team / "docs") == "ok"
    assert as_nobody("read", team / "docs" / "a.txt") == "ok"
    assert as_nobody("write", team / "docs" / "a.txt") == "ok"
    assert as_nobody("create", team / "docs" / "new.txt") == "ok"
    assert perm(team / "docs" / "new.txt") == (0o644, NOBODY, NOBODY)  # created locally: its creator's
    meta = sh.root.head_object(Bucket="team", Key="docs/new.txt")["Metadata"]
    assert (meta["uid"], meta["gid"]) == (str(NOBODY), str(NOBODY))
    # the other bucket stays private
    assert perm(sh.mnt / "other") == (0o700, 0, 0)
    assert as_nobody("list", sh.mnt / "other") == "EACCES"
    assert as_nobody("read", sh.mnt / "other" / "docs" / "a.txt") == "EACCES"
    # inside an opened bucket, POSIX rules still hold for what root keeps to itself
    os.mkdir(team / "rootonly", 0o700)
    (team / "secret").write_bytes(b"root's")
    os.chmod(team / "secret", 0o600)
    assert perm(team / "rootonly") == (0o700, 0, 0) and perm(team / "secret") == (0o600, 0, 0)
    assert as_nobody("read", team / "secret") == "EACCES"
    assert as_nobody("create", team / "rootonly" / "f") == "EACCES"
    assert as_nobody("mkdir", team / "rootonly" / "d") == "EACCES"
    ref = sh.local_copy(["team", "team/secret", "team/rootonly", "team/docs", "team/docs/a.txt"])
    for op, rel in [("read", "team/secret"), ("write", "team/secret"), ("create", "team/rootonly/f"),
                    ("list", "team/rootonly"), ("read", "team/docs/a.txt"), ("create", "team/docs/b.txt"),
                    ("unlink", "team/secret")]:
        assert as_nobody(op, sh.mnt / rel) == as_nobody(op, ref / rel), (op, rel)


def test_setuid_and_setgid_never_come_from_s3(shared: Callable[[str], Shared]) -> None:
    sh = shared('[mount.buckets.bin]\ndir_mode = "0755"\n')
    sh.root.create_bucket(Bucket="bin")
    b = sh.mnt / "bin"
    sh.root.put_object(Bucket="bin", Key="tool", Body=b"#!/bin/sh\nid\n",
                       Metadata={"mode": str(stat.S_IFREG | 0o6755), "uid": "0"})
    assert sh.root.head_object(Bucket="bin", Key="tool")["Metadata"]["mode"] == str(stat.S_IFREG | 0o755)
    assert perm(b / "tool") == (0o755, 0, 0)
    sh.root.put_object(Bucket="bin", Key="rclone-style", Body=b"x", Metadata={"mode": "104755"})
    assert perm(b / "rclone-style") == (0o755, 0, 0)
    # local chmod keeps POSIX rules (the mount is nosuid: the bit is never executed) ...
    (b / "local").write_bytes(b"x")
    os.chmod(b / "local", 0o4755)
    assert perm(b / "local") == (0o4755, 0, 0)
    # ... but a copy over S3 is an S3 write
    sh.root.copy_object(Bucket="bin", Key="copied", CopySource={"Bucket": "bin", "Key": "local"})
    assert perm(b / "copied") == (0o755, 0, 0)
    with open("/proc/mounts") as f:
        opts = next(line.split()[3] for line in f if line.split()[1] == str(sh.mnt))
    assert {"nosuid", "nodev", "default_permissions", "allow_other"} <= set(opts.split(","))


def test_an_unknown_owner_stops_the_start_as_a_config_error(daemon_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[mount.buckets.b]\nowner = "no-such-user"\n')
    d = daemon_factory(["--config", str(tmp_path / "c.toml"), "--mount", str(tmp_path / "mnt")], start=False)
    with pytest.raises(RuntimeError, match="exited with 78"):
        d.start()
    assert "mount.buckets.b.owner: no such user 'no-such-user'" in d.log_tail()

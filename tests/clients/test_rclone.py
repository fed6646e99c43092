"""rclone (v1.60.1, apt) with an S3 remote defined only by environment variables, as a user of
a non-AWS provider sets it up: copy (one file large enough to go multipart), sync, and `check`,
which compares sizes and MD5s (the ETag for single-part objects, rclone's own X-Amz-Meta-Md5chksum
for multipart ones). No --size-only or --download: an ETag that is not the MD5 must fail the check.
Listings are paged small so that rclone's ListObjects marker handling is exercised."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import AWKWARD_NAMES, bucket_contents, clean_env, make_tree, read_tree, require, run

MiB = 1024 * 1024

Rclone = Callable[..., Any]

TREE = {"a.txt": 10, "empty": 0, "d/b.bin": 300_000, "d/e/c.bin": 70_001, "d/big.bin": 12 * MiB,
        "with space/ünï.txt": 21} | AWKWARD_NAMES


def rclone_env(d: Any, base: Path) -> dict[str, str]:
    (base / "home").mkdir(exist_ok=True)
    return clean_env(base / "home", {
        "RCLONE_CONFIG": str(base / "rclone.conf"),  # absent: the remote comes from the variables below
        "RCLONE_CONFIG_STW_TYPE": "s3", "RCLONE_CONFIG_STW_PROVIDER": "Other",
        "RCLONE_CONFIG_STW_ENDPOINT": d.endpoint, "RCLONE_CONFIG_STW_REGION": "us-east-1",
        "RCLONE_CONFIG_STW_ACCESS_KEY_ID": d.access_key, "RCLONE_CONFIG_STW_SECRET_ACCESS_KEY": d.secret_key,
        "RCLONE_CONFIG_STW_FORCE_PATH_STYLE": "true",
    })


# No retries: an error rclone would paper over by retrying must fail the test.
NO_RETRIES = ["--retries", "1", "--low-level-retries", "1"]


@pytest.fixture(scope="module")
def rclone(cd: Any, tmp_path_factory: pytest.TempPathFactory) -> Rclone:
    exe = require("rclone")
    env = rclone_env(cd, tmp_path_factory.mktemp("rclone"))

    def call(*args: str, check: bool = True) -> Any:
        return run([exe, "--s3-list-chunk", "2", *NO_RETRIES, *args], env, check=check)

    return call


def test_copy_multipart_and_check(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, TREE)
    rclone("mkdir", "stw:rc-copy")
    # Cut-off and chunk size of 5 MiB: d/big.bin goes up as three parts.
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(src), "stw:rc-copy/t")
    assert bucket_contents(s3, "rc-copy", "t/") == files
    head = s3.head_object(Bucket="rc-copy", Key="t/d/big.bin")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["md5chksum"]  # rclone's MD5 for multipart objects, kept as user metadata
    small = s3.head_object(Bucket="rc-copy", Key="t/d/b.bin")
    assert small["ETag"].strip('"') == hashlib.md5(files["d/b.bin"]).hexdigest()

    r = rclone("check", str(src), "stw:rc-copy/t")
    assert f"{len(files)} matching files" in r.stderr and "0 differences found" in r.stderr, r.stderr
    sums = dict(reversed(line.split("  ", 1)) for line in rclone("md5sum", "stw:rc-copy/t").stdout.splitlines())
    assert sums == {k: hashlib.md5(v).hexdigest() for k, v in files.items()}

    # Back down into an empty directory.
    dst = tmp_path / "dst"
    rclone("copy", "stw:rc-copy/t", str(dst))
    assert read_tree(dst) == files
    # Nothing left to do: a second copy transfers nothing.
    again = rclone("copy", "-v", str(src), "stw:rc-copy/t")
    assert "Copied" not in again.stderr, again.stderr

    # Server-side copy (CopyObject) keeps the bytes and the hash check still passes.
    rclone("copyto", "stw:rc-copy/t/d/b.bin", "stw:rc-copy/t2/b.bin")
    assert s3.get_object(Bucket="rc-copy", Key="t2/b.bin")["Body"].read() == files["d/b.bin"]
    rclone("check", str(src / "d"), "stw:rc-copy/t2", "--one-way", "--include", "b.bin")
    # Above --s3-copy-cutoff rclone copies server-side in parts (UploadPartCopy with source ranges).
    out = rclone("copyto", "-vv", "--s3-copy-cutoff", "5M", "stw:rc-copy/t/d/big.bin", "stw:rc-copy/t3/big.bin")
    assert "multipart copy with 3 parts" in out.stderr, out.stderr
    assert s3.get_object(Bucket="rc-copy", Key="t3/big.bin")["Body"].read() == files["d/big.bin"]
    assert s3.head_object(Bucket="rc-copy", Key="t3/big.bin")["ETag"].strip('"').endswith("-3")
    rclone("check", str(src / "d"), "stw:rc-copy/t3", "--one-way", "--include", "big.bin")


def test_check_detects_same_size_change(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    """The check is real: a same-size change made behind rclone's back is reported by its MD5."""
    src = tmp_path / "src"
    files = make_tree(src, {"x.bin": 4096, "y.bin": 100})
    s3.create_bucket(Bucket="rc-check")
    rclone("copy", str(src), "stw:rc-check")
    rclone("check", str(src), "stw:rc-check")
    s3.put_object(Bucket="rc-check", Key="x.bin", Body=os.urandom(len(files["x.bin"])))
    r = rclone("check", str(src), "stw:rc-check", check=False)
    assert r.returncode != 0
    assert "1 differences found" in r.stderr and "x.bin" in r.stderr, r.stderr


def test_sync_then_modify_and_resync(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, TREE)
    rclone("mkdir", "stw:rc-sync")
    args = ("--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M")
    rclone("sync", *args, str(src), "stw:rc-sync/s")
    assert bucket_contents(s3, "rc-sync", "s/") == files
    rclone("check", str(src), "stw:rc-sync/s")

    # Change one file (and its size), replace the big one, delete one, add one: sync mirrors it.
    (src / "d/b.bin").write_bytes(b"changed")
    (src / "d/big.bin").write_bytes(big := os.urandom(11 * MiB))
    (src / "a.txt").unlink()
    (src / "new/file.txt").parent.mkdir()
    (src / "new/file.txt").write_bytes(b"new")
    out = rclone("sync", "-v", *args, str(src), "stw:rc-sync/s").stderr
    assert "Deleted" in out and out.count(": Copied") == 3, out
    expect = {k: v for k, v in files.items() if k != "a.txt"} | {"d/b.bin": b"changed", "d/big.bin": big,
                                                                   "new/file.txt": b"new"}
    assert bucket_contents(s3, "rc-sync", "s/") == expect
    r = rclone("check", str(src), "stw:rc-sync/s")
    assert f"{len(expect)} matching files" in r.stderr, r.stderr

    # And a sync down mirrors the bucket into a directory that holds a stray file.
    dst = tmp_path / "dst"
    make_tree(dst, {"stray": 5})
    rclone("sync", "stw:rc-sync/s", str(dst))
    assert read_tree(dst) == expect
    rclone("purge", "stw:rc-sync")
    assert "rc-sync" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_versions(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    """rclone's view of a versioned bucket (ListObjectVersions): old versions appear as name-vTIME
    entries with --s3-versions and read back exactly; cleanup-hidden removes them."""
    rclone("mkdir", "stw:rc-versions")
    assert rclone("backend", "versioning", "stw:rc-versions", "Enabled").stdout.strip() == "Enabled"
    assert s3.get_bucket_versioning(Bucket="rc-versions")["Status"] == "Enabled"
    f = tmp_path / "v.txt"
    for body in (b"first", b"second!", b"third..."):
        f.write_bytes(body)
        rclone("copyto", str(f), "stw:rc-versions/v.txt")
    names = rclone("lsf", "--s3-versions", "stw:rc-versions").stdout.split()
    assert len(names) == 3 and "v.txt" in names
    got = {rclone("cat", "--s3-versions", f"stw:rc-versions/{n}").stdout for n in names}
    assert got == {"first", "second!", "third..."}
    assert rclone("lsf", "stw:rc-versions").stdout.split() == ["v.txt"]
    versions = s3.list_object_versions(Bucket="rc-versions")["Versions"]
    assert sorted(v["Size"] for v in versions) == [5, 7, 8]

    rclone("backend", "cleanup-hidden", "stw:rc-versions")
    assert rclone("lsf", "--s3-versions", "stw:rc-versions").stdout.split() == ["v.txt"]
    assert s3.get_object(Bucket="rc-versions", Key="v.txt")["Body"].read() == b"third..."
    assert len(s3.list_object_versions(Bucket="rc-versions")["Versions"]) == 1


def test_daemon_killed_mid_copy_then_rerun_converges(daemon_factory: Any, tmp_path: Path) -> None:
    """kill -9 of the daemon while rclone is in the middle of a multipart upload: afterwards every
    object the gateway shows is complete (no torn or partial object), the interrupted upload is
    still listed (as AWS keeps it) until rclone's cleanup aborts it, and re-running the copy
    converges to a passing check."""
    exe = require("rclone")
    d = daemon_factory(["--no-mount"], name="crash")
    src = tmp_path / "src"
    files = make_tree(src, {"a-big.bin": 16 * MiB} | {f"f{i:02d}.bin": 100_000 + i for i in range(8)})
    s3 = d.s3()
    s3.create_bucket(Bucket="rc-crash")
    env = rclone_env(d, tmp_path)
    # Slowed down and one file at a time, so the kill lands between the parts of a-big.bin.
    proc = subprocess.Popen([exe, "copy", "--bwlimit", "8M", "--transfers", "1", "--s3-upload-cutoff", "5M",
                             "--s3-chunk-size", "5M", "--s3-upload-concurrency", "1", *NO_RETRIES, str(src),
                             "stw:rc-crash"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            assert proc.poll() is None, "rclone finished before the daemon could be killed"
            uploads = s3.list_multipart_uploads(Bucket="rc-crash").get("Uploads", [])
            if uploads and s3.list_parts(Bucket="rc-crash", Key=uploads[0]["Key"],
                                         UploadId=uploads[0]["UploadId"]).get("Parts"):
                break
            time.sleep(0.05)
        d.kill()
    finally:
        # Like a power cut, rclone goes too (left alone it backs off for ~30 s before giving up).
        proc.kill()
        proc.wait()
    d.start()
    s3 = d.s3()
    partial = bucket_contents(s3, "rc-crash")
    assert "a-big.bin" not in partial
    assert all(files[k] == v for k, v in partial.items())  # whatever is visible is whole
    uploads = s3.list_multipart_uploads(Bucket="rc-crash").get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["a-big.bin"]
    assert s3.list_parts(Bucket="rc-crash", Key="a-big.bin", UploadId=uploads[0]["UploadId"])["Parts"]

    env = rclone_env(d, tmp_path)  # the restarted daemon listens on a new port
    run([exe, "copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", *NO_RETRIES, str(src), "stw:rc-crash"],
        env)
    run([exe, "check", *NO_RETRIES, str(src), "stw:rc-crash"], env)
    assert bucket_contents(s3, "rc-crash") == files
    run([exe, "backend", "cleanup", "-o", "max-age=0s", *NO_RETRIES, "stw:rc-crash"], env)
    assert s3.list_multipart_uploads(Bucket="rc-crash").get("Uploads", []) == []
    assert bucket_contents(s3, "rc-crash") == files


@pytest.mark.parametrize("version", ["1", "2"])
def test_listing_versions_and_encodings_agree(rclone: Rclone, s3: Any, version: str) -> None:
    """ListObjects v1 (markers) and v2 (continuation tokens), with and without encoding-type=url,
    recursive with a delimiter per level and flat (--fast-list), pages of 2: all the same keys."""
    bucket = f"rc-list-v{version}"
    s3.create_bucket(Bucket=bucket)
    keys = sorted({f"{d}/{n}" for d in ("a", "a b", "ü", "z+z") for n in AWKWARD_NAMES} | {"top", "a/x/y/z"})
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for encode in ("true", "false"):
        for fast in ([], ["--fast-list"]):
            out = rclone("lsf", "-R", "--files-only", *fast, "--s3-list-version", version,
                         "--s3-list-url-encode", encode, f"stw:{bucket}").stdout
            assert sorted(out.splitlines()) == keys, (encode, fast)

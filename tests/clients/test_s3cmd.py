"""s3cmd (2.3.0, apt) with a config file as a user writes it: path-style (host_bucket without a
%(bucket)s), plain HTTP, Signature V4 with signed payload hashes. mb, put (single and multipart),
get, ls, la, info, del, sync both ways (second run idempotent, --delete-removed), rb; content is
checked through boto3."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import AWKWARD_NAMES, bucket_contents, bucket_keys, clean_env, make_tree, read_tree, require, run

MiB = 1024 * 1024

S3cmd = Callable[..., str]


@pytest.fixture(scope="module")
def s3cmd(cd: Any, tmp_path_factory: pytest.TempPathFactory) -> S3cmd:
    exe = require("s3cmd")
    base = tmp_path_factory.mktemp("s3cmd")
    hostport = cd.endpoint.split("://", 1)[1]
    cfg = base / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {cd.access_key}\nsecret_key = {cd.secret_key}\n"
        f"host_base = {hostport}\nhost_bucket = {hostport}\n"
        "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
        "max_retries = 0\n"  # a failure s3cmd would retry must fail the test
    )
    (base / "home").mkdir()
    env = clean_env(base / "home")

    def call(*args: str) -> str:
        return run([exe, "-c", str(cfg), "--no-progress", *args], env).stdout

    return call


def test_mb_put_get_ls_la_del(s3cmd: S3cmd, s3: Any, tmp_path: Path) -> None:
    assert "created" in s3cmd("mb", "s3://s3cmd-one")
    small = tmp_path / "small.txt"
    small.write_bytes(b"s3cmd says hi\n")
    s3cmd("put", "--mime-type=text/x-s3cmd", "--add-header=x-amz-meta-color:green", str(small),
          "s3://s3cmd-one/dir/small.txt")
    got = s3.get_object(Bucket="s3cmd-one", Key="dir/small.txt")
    assert got["Body"].read() == small.read_bytes()
    assert got["ContentType"] == "text/x-s3cmd" and got["Metadata"]["color"] == "green"

    # 12 MiB in 5 MiB chunks: three parts, so a "-3" multipart ETag.
    big = tmp_path / "big.bin"
    data = os.urandom(12 * MiB)
    big.write_bytes(data)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), "s3://s3cmd-one/big.bin")
    head = s3.head_object(Bucket="s3cmd-one", Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3") and head["ContentLength"] == len(data)
    assert s3.get_object(Bucket="s3cmd-one", Key="big.bin")["Body"].read() == data

    dl = tmp_path / "dl.bin"
    s3cmd("get", "s3://s3cmd-one/big.bin", str(dl))
    assert dl.read_bytes() == data  # s3cmd also checks the md5 it stored in s3cmd-attrs
    s3cmd("get", "s3://s3cmd-one/dir/small.txt", str(tmp_path / "small.dl"))
    assert (tmp_path / "small.dl").read_bytes() == small.read_bytes()

    info = s3cmd("info", "s3://s3cmd-one/big.bin")
    assert f"File size: {len(data)}" in info and hashlib.md5(data).hexdigest() in info

    ls = s3cmd("ls", "s3://s3cmd-one")
    rows = [line.split() for line in ls.splitlines()]
    assert ["DIR", "s3://s3cmd-one/dir/"] in rows
    assert [str(len(data)), "s3://s3cmd-one/big.bin"] in [r[2:] for r in rows]
    rec = s3cmd("ls", "--recursive", "s3://s3cmd-one")
    assert "s3://s3cmd-one/dir/small.txt" in rec and "s3://s3cmd-one/big.bin" in rec
    assert "s3://s3cmd-one" in s3cmd("ls")
    la = s3cmd("la")
    assert "s3://s3cmd-one/big.bin" in la and "s3://s3cmd-one/dir/" in la  # la: every bucket, one level

    s3cmd("del", "s3://s3cmd-one/big.bin")
    assert bucket_keys(s3, "s3cmd-one") == ["dir/small.txt"]
    s3cmd("del", "--recursive", "--force", "s3://s3cmd-one/dir/")
    assert bucket_keys(s3, "s3cmd-one") == []
    s3cmd("rb", "s3://s3cmd-one")
    assert "s3cmd-one" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_sync_up_down_idempotent(s3cmd: S3cmd, s3: Any, tmp_path: Path) -> None:
    s3cmd("mb", "s3://s3cmd-sync")
    src = tmp_path / "src"
    files = make_tree(src, {"a": 1, "empty": 0, "d/b.bin": 250_000, "d/e/c.bin": 3 * MiB, "d/e/f/g.txt": 12,
                            "spaced name/ü.txt": 9} | AWKWARD_NAMES)
    up = s3cmd("sync", f"{src}/", "s3://s3cmd-sync/t/")
    assert up.count("upload: ") == len(files), up
    assert bucket_contents(s3, "s3cmd-sync", "t/") == files

    dst = tmp_path / "dst"
    dst.mkdir()
    down = s3cmd("sync", "s3://s3cmd-sync/t/", f"{dst}/")
    assert down.count("download: ") == len(files), down
    assert read_tree(dst) == files

    # s3cmd compares sizes and MD5s (ETags): nothing to transfer either way now.
    again = s3cmd("sync", f"{src}/", "s3://s3cmd-sync/t/")
    assert "upload: " not in again, again
    again = s3cmd("sync", "s3://s3cmd-sync/t/", f"{dst}/")
    assert "download: " not in again, again

    (src / "d/b.bin").write_bytes(b"new content")
    (src / "a").unlink()
    out = s3cmd("sync", "--delete-removed", f"{src}/", "s3://s3cmd-sync/t/")
    assert out.count("upload: ") == 1 and out.count("delete: ") == 1, out
    expect = {k: v for k, v in files.items() if k != "a"} | {"d/b.bin": b"new content"}
    assert bucket_contents(s3, "s3cmd-sync", "t/") == expect

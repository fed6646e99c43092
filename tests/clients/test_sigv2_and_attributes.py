"""Real clients on what they still sign with SigV2 and on GetObjectAttributes: `s3cmd signurl`
and s3cmd with signature_v2 = True (put, multipart, get, ls, info, del), `aws s3api
get-object-attributes`, and UTF-8 user metadata as s3cmd sends it (the bytes it signs)."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import clean_env, require, run

MiB = 1024 * 1024
S3cmd = Callable[..., str]


def fetch(url: str) -> tuple[int, bytes]:
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.netloc, timeout=30)
    try:
        c.request("GET", f"{u.path}?{u.query}")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def make_s3cmd(cd: Any, base: Path, *, v2: bool) -> S3cmd:
    exe = require("s3cmd")
    hostport = cd.endpoint.split("://", 1)[1]
    cfg = base / ("s3cfg-v2" if v2 else "s3cfg-v4")
    cfg.write_text(
        "[default]\n"
        f"access_key = {cd.access_key}\nsecret_key = {cd.secret_key}\n"
        f"host_base = {hostport}\nhost_bucket = {hostport}\n"
        f"use_https = False\nsignature_v2 = {v2}\nbucket_location = us-east-1\nmax_retries = 0\n")
    (base / "home").mkdir(exist_ok=True)
    env = clean_env(base / "home")

    def call(*args: str) -> str:
        return run([exe, "-c", str(cfg), "--no-progress", *args], env).stdout

    return call


@pytest.fixture(scope="module")
def s3cmd_v2(cd: Any, tmp_path_factory: pytest.TempPathFactory) -> S3cmd:
    return make_s3cmd(cd, tmp_path_factory.mktemp("s3cmd-v2"), v2=True)


@pytest.fixture(scope="module")
def s3cmd_v4(cd: Any, tmp_path_factory: pytest.TempPathFactory) -> S3cmd:
    return make_s3cmd(cd, tmp_path_factory.mktemp("s3cmd-v4"), v2=False)


@pytest.fixture(scope="module")
def aws(cd: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    exe = require("aws")
    base = tmp_path_factory.mktemp("aws")
    (base / "home").mkdir()
    (base / "aws.cfg").write_text("[default]\ns3 =\n    addressing_style = path\n")
    env = clean_env(base / "home", {
        "AWS_ACCESS_KEY_ID": cd.access_key, "AWS_SECRET_ACCESS_KEY": cd.secret_key, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(base / "aws.cfg"), "AWS_SHARED_CREDENTIALS_FILE": str(base / "none"),
        "AWS_MAX_ATTEMPTS": "1"})

    def call(*args: str) -> Any:
        out = run([exe, "--endpoint-url", cd.endpoint, *args, "--output", "json"], env).stdout
        return json.loads(out) if out.strip() else {}

    return call


def test_s3cmd_signurl(s3cmd_v4: S3cmd, s3: Any, bucket: str) -> None:
    data = os.urandom(20_000)
    s3.put_object(Bucket=bucket, Key="shared/ü file.bin", Body=data)
    url = s3cmd_v4("signurl", f"s3://{bucket}/shared/ü file.bin", "+300").strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    assert fetch(url) == (200, data)
    past = s3cmd_v4("signurl", f"s3://{bucket}/shared/ü file.bin", str(int(time.time()) - 10)).strip()
    status, body = fetch(past)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_s3cmd_with_signature_v2(s3cmd_v2: S3cmd, s3: Any, bucket: str, tmp_path: Path) -> None:
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"signed with v2\n")
    big.write_bytes(os.urandom(12 * MiB))
    s3cmd_v2("put", str(small), f"s3://{bucket}/dir/small.txt")
    s3cmd_v2("put", "--multipart-chunk-size-mb=5", str(big), f"s3://{bucket}/dir/big.bin")
    assert s3.get_object(Bucket=bucket, Key="dir/big.bin")["Body"].read() == big.read_bytes()
    assert s3.head_object(Bucket=bucket, Key="dir/big.bin")["ETag"].endswith('-3"')
    listing = s3cmd_v2("ls", f"s3://{bucket}/dir/")
    assert "dir/small.txt" in listing and "dir/big.bin" in listing
    assert "MD5 sum" in s3cmd_v2("info", f"s3://{bucket}/dir/small.txt")
    s3cmd_v2("get", f"s3://{bucket}/dir/small.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == small.read_bytes()
    s3cmd_v2("del", f"s3://{bucket}/dir/small.txt")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/big.bin"]


@pytest.mark.parametrize("v2", [False, True], ids=["sigv4", "sigv2"])
def test_s3cmd_utf8_metadata(s3cmd_v2: S3cmd, s3cmd_v4: S3cmd, aws: Callable[..., Any], bucket: str,
                             tmp_path: Path, v2: bool) -> None:
    s3cmd = s3cmd_v2 if v2 else s3cmd_v4
    f = tmp_path / "doc.txt"
    f.write_text("x")
    s3cmd("put", "--add-header=x-amz-meta-title:日本語 ü", str(f), f"s3://{bucket}/doc.txt")
    meta = aws("s3api", "head-object", "--bucket", bucket, "--key", "doc.txt")["Metadata"]
    assert str(make_header(decode_header(meta["title"]))) == "日本語 ü"  # RFC 2047 on the way out, as AWS


def test_aws_get_object_attributes(aws: Callable[..., Any], s3: Any, bucket: str) -> None:
    data = [os.urandom(5 * MiB), os.urandom(1234)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", ChecksumAlgorithm="CRC32C")["UploadId"]
    parts = []
    for n, d in enumerate(data, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=uid, PartNumber=n, Body=d, ChecksumAlgorithm="CRC32C")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32C": r["ChecksumCRC32C"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=uid, MultipartUpload={"Parts": parts})
    got = aws("s3api", "get-object-attributes", "--bucket", bucket, "--key", "mp.bin", "--object-attributes",
              "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
    assert got["ETag"] == done["ETag"].strip('"') and got["ObjectSize"] == sum(map(len, data))
    assert got["StorageClass"] == "STANDARD"
    assert got["Checksum"] == {"ChecksumCRC32C": done["ChecksumCRC32C"].partition("-")[0], "ChecksumType": "COMPOSITE"}
    assert got["ObjectParts"]["TotalPartsCount"] == 2
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32C"]) for p in got["ObjectParts"]["Parts"]] == [
        (n, len(d), parts[n - 1]["ChecksumCRC32C"]) for n, d in enumerate(data, 1)]
    page = aws("s3api", "get-object-attributes", "--bucket", bucket, "--key", "mp.bin", "--object-attributes",
               "ObjectParts", "--max-parts", "1")["ObjectParts"]
    assert (page["IsTruncated"], page["NextPartNumberMarker"], len(page["Parts"])) == (True, 1, 1)

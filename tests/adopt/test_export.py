"""`stowage export --offline`: a real appliance written through S3 (versions, delete markers,
multipart, SSE-S3, SSE-KMS, SSE-C, awkward keys), stopped, then exported with its metadata DB,
with --versions, and with the DB lost (rebuilt from the data disks); every file byte-compared."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from appliance.cli.export import encode_component, key_path
from tests.conftest import REPO, DaemonProc

KEYS = ["plain.txt", "a", "a/b", "a/b/c.bin", "dir/./x", "../up", "sp ace/%25 pct", "ünï/cödé", "trail/", "x//y"]


def test_key_encoding_is_safe() -> None:
    for key in [*KEYS, "a" * 1000, "/".join(["."] * 5), "..", ""]:
        for comp in key_path(key):
            assert comp not in ("", ".", "..") and "/" not in comp and "\0" not in comp
            assert len(comp.encode()) <= 255
            assert not comp.endswith("%meta.json")
    assert encode_component("%") == "%25"
    assert key_path("a/b") != key_path("a%2Fb")
    assert len({"/".join(key_path(k)) for k in ["a" * 300, "a" * 301]}) == 2  # shortened names stay distinct


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("export")
    config = base / "stowage.toml"
    config.write_text('[tls]\nmode = "on"\n')  # SSE-C needs HTTPS
    d = DaemonProc(base / "data", ["--no-mount", "--config", str(config)])
    d.start()
    s3 = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                      aws_secret_access_key=d.secret_key, region_name="us-east-1",
                      verify=str(base / "data" / "tls" / "cert.pem"),
                      config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    want: dict[tuple[str, str], bytes] = {}
    s3.create_bucket(Bucket="docs")
    s3.put_bucket_versioning(Bucket="docs", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket="docs", Tagging={"TagSet": [{"Key": "team", "Value": "ops"}]})
    for key in KEYS:
        body = f"content of {key}".encode()
        s3.put_object(Bucket="docs", Key=key, Body=body, ContentType="text/plain", Metadata={"origin": "test"},
                      Tagging="k=v")
        want[("docs", key)] = body
    old = [s3.put_object(Bucket="docs", Key="versioned", Body=f"v{i}".encode())["VersionId"] for i in range(3)]
    want[("docs", "versioned")] = b"v2"
    s3.put_object(Bucket="docs", Key="gone", Body=b"deleted later")
    s3.delete_object(Bucket="docs", Key="gone")  # a delete marker: no current file
    big = os.urandom(11 * 1024 * 1024 + 5)
    up = s3.create_multipart_upload(Bucket="docs", Key="big.bin")
    parts = []
    for n, off in enumerate(range(0, len(big), 5 * 1024 * 1024), 1):
        r = s3.upload_part(Bucket="docs", Key="big.bin", UploadId=up["UploadId"], PartNumber=n,
                           Body=big[off : off + 5 * 1024 * 1024])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket="docs", Key="big.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    want[("docs", "big.bin")] = big
    s3.create_bucket(Bucket="secret")
    s3.put_object(Bucket="secret", Key="s3", Body=b"sse-s3 data", ServerSideEncryption="AES256")
    s3.put_object(Bucket="secret", Key="kms", Body=b"sse-kms data", ServerSideEncryption="aws:kms")
    s3.put_object(Bucket="secret", Key="customer", Body=b"sse-c data", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=os.urandom(32))
    want[("secret", "s3")] = b"sse-s3 data"
    want[("secret", "kms")] = b"sse-kms data"
    d.stop()
    return d, want, old


def _export(d: DaemonProc, dest: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "appliance", "export", "--offline", str(d.data_dir), str(dest), *extra],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def _file_of(dest: Path, bucket: str, key: str) -> Path:
    rel = "/".join(key_path(key))
    p = dest / bucket / rel
    return p if p.is_file() else dest / bucket / (rel + "%")


def _check_current(dest: Path, want: dict[tuple[str, str], bytes]) -> dict[str, Any]:
    report = json.loads((dest / "%export.json").read_text())
    for (bucket, key), body in want.items():
        f = _file_of(dest, bucket, key)
        assert f.read_bytes() == body, key
        meta = json.loads(f.with_name(f.name + "%meta.json").read_text())
        assert meta["key"] == key and meta["bucket"] == bucket and meta["is_latest"]
        assert meta["sha256"] == hashlib.sha256(body).hexdigest()
        if key in KEYS:
            assert meta["user_metadata"] == {"origin": "test"} and meta["tags"] == {"k": "v"}
            assert meta["content_type"] == "text/plain"
    assert not (dest / "docs" / "gone").exists()
    assert [s["key"] for s in report["skipped"]] == ["customer"] and "SSE-C" in report["skipped"][0]["reason"]
    assert report["failed"] == []
    assert report["objects"] == len(want)
    assert json.loads((dest / "docs%bucket.json").read_text())["tags"] == {"team": "ops"}
    # nothing but what the export wrote: no scratch files, no partial data
    assert not [p for p in dest.rglob("*") if p.name.endswith("%partial")]
    return report


def test_export_with_the_metadata_db(written: Any, tmp_path: Path) -> None:
    d, want, _ = written
    before = sorted(p.relative_to(d.data_dir) for p in d.data_dir.rglob("*") if p.is_file())
    r = _export(d, tmp_path / "out")
    assert "metadata: metadata DB" in r.stdout
    report = _check_current(tmp_path / "out", want)
    assert report["source"] == "metadata DB"
    after = sorted(p.relative_to(d.data_dir) for p in d.data_dir.rglob("*") if p.is_file())
    assert after == before  # the appliance is only read


def test_export_every_version(written: Any, tmp_path: Path) -> None:
    d, _, old = written
    dest = tmp_path / "out"
    _export(d, dest, "--versions")
    vdir = dest / "docs" / "versioned%versions"
    files = sorted(p.name for p in vdir.iterdir() if not p.name.endswith("%meta.json"))
    assert [n.split("-", 1)[0] for n in files] == ["1", "2", "3"]
    assert [(vdir / n).read_bytes() for n in files] == [b"v0", b"v1", b"v2"]
    assert [json.loads((vdir / f"{n}%meta.json").read_text())["version_id"] for n in files] == old
    gone = sorted((dest / "docs" / "gone%versions").iterdir())
    markers = [json.loads(p.read_text()) for p in gone if p.name.endswith("%meta.json")]
    assert [m["delete_marker"] for m in markers] == [False, True]
    assert markers[1]["is_latest"]


def test_export_without_the_metadata_db(written: Any, tmp_path: Path) -> None:
    d, want, _ = written
    meta = d.data_dir / "meta"
    shutil.move(meta, tmp_path / "meta-aside")
    try:
        r = _export(d, tmp_path / "out")
        assert "rebuilt from the data disks" in r.stdout
        _check_current(tmp_path / "out", want)
        assert not meta.exists()  # rebuilt in a scratch directory, not in place
    finally:
        shutil.move(tmp_path / "meta-aside", meta)


def test_export_refuses_a_running_daemon_and_a_full_destination(written: Any, tmp_path: Path) -> None:
    d, _, _ = written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = _export(d, tmp_path / "full", check=False)
    assert r.returncode == 1 and "not empty" in r.stderr
    d.start()
    try:
        r = _export(d, tmp_path / "out", check=False)
        assert r.returncode == 1 and "daemon is running" in r.stderr
    finally:
        d.stop()


def test_export_of_a_bucket_that_does_not_exist_fails(written: Any, tmp_path: Path) -> None:
    """A mistyped --bucket exported nothing, said "0 buckets" and exited 0."""
    d, _, _ = written
    r = _export(d, tmp_path / "out", "--bucket", "docs", "--bucket", "DOCS-typo", check=False)
    assert r.returncode != 0 and "no such bucket: DOCS-typo" in r.stderr and "Traceback" not in r.stderr, r.stderr

"""A data directory written by round 1 (before the package layout changed) starts and reads
back byte-exact under the current code; its plain-text user secret is wrapped at the first start and
leaves the metadata files and the snapshots. The fixture and how it was made:
tests/fixtures/make_datadir.py."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.polling import wait_for

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "round1-datadir.tar.xz"


def _unpack(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURE, "r:xz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "data"


def _files_holding(data: Path, needle: bytes) -> list[str]:
    """The top-level directories (meta, disks) with a file containing `needle`."""
    return sorted({p.relative_to(data).parts[0] for sub in ("meta", "disks") for p in (data / sub).rglob("*")
                   if p.is_file() and needle in p.read_bytes()})


def _get(s3: Any, obj: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"Bucket": obj["bucket"], "Key": obj["key"]}
    if obj.get("version_id"):
        kw["VersionId"] = obj["version_id"]
    return s3.get_object(**kw)  # type: ignore[no-any-return]


def test_round1_data_dir_reads_byte_exact(daemon_factory: Any, tmp_path: Path) -> None:
    data = _unpack(tmp_path)
    expected = json.loads((data / "expected.json").read_text())
    d = daemon_factory(name="data", start=False)
    assert d.data_dir == data
    secret = expected["user"]["secret_key"].encode()
    assert _files_holding(data, secret) == ["disks", "meta"]  # round 1 kept it in plain text, snapshot included
    # a short GC grace, so that the snapshots dropped at the upgrade are collected while we wait
    config = tmp_path / "gc.toml"
    config.write_text("[gc]\ngrace_seconds = 0.5\ninterval_seconds = 0.2\n")
    d.extra_args = ["--mount", str(tmp_path / "mnt")] if os.path.exists("/dev/fuse") else ["--no-mount"]
    d.extra_args += ["--config", str(config)]
    d.start()
    # the secret was wrapped at start, the DB compacted, the snapshot holding it replaced and collected
    assert "meta" not in _files_holding(data, secret)
    wait_for(lambda: not _files_holding(data, secret), timeout=30, what="the old snapshot to be collected")
    s3 = d.s3()
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"plain", "versioned"}
    checked = 0
    for obj in expected["objects"]:
        if "delete_marker" in obj:
            with pytest.raises(ClientError) as exc:
                s3.get_object(Bucket=obj["bucket"], Key=obj["key"])
            assert exc.value.response["Error"]["Code"] == "NoSuchKey"
            versions = s3.list_object_versions(Bucket=obj["bucket"], Prefix=obj["key"])
            assert [m["VersionId"] for m in versions["DeleteMarkers"]] == [obj["delete_marker"]]
            continue
        if "symlink" in obj:
            if d.mount:
                assert os.readlink(Path(d.mount) / obj["bucket"] / obj["key"]) == obj["symlink"]
            continue
        r = _get(s3, obj)
        body = r["Body"].read()
        assert len(body) == obj["size"], obj["key"]
        assert hashlib.sha256(body).hexdigest() == obj["sha256"], obj["key"]
        if "content_type" in obj:
            assert r["ContentType"] == obj["content_type"]
            assert r["Metadata"] == obj["metadata"]
            assert r["CacheControl"] == obj["cache_control"]
            tags = s3.get_object_tagging(Bucket=obj["bucket"], Key=obj["key"])["TagSet"]
            assert {t["Key"]: t["Value"] for t in tags} == obj["tags"]
        if "etag_suffix" in obj:
            assert r["ETag"].strip('"').endswith(obj["etag_suffix"])
        if "mode" in obj and d.mount:
            st = os.stat(Path(d.mount) / obj["bucket"] / obj["key"])
            assert stat.S_IMODE(st.st_mode) == obj["mode"]
            assert hashlib.sha256((Path(d.mount) / obj["bucket"] / obj["key"]).read_bytes()).hexdigest() == \
                obj["sha256"]
        checked += 1
    assert checked >= 10
    # the user and key created by round 1 still authenticate
    user = expected["user"]
    alice = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=user["access_key"],
                         aws_secret_access_key=user["secret_key"], region_name="us-east-1",
                         config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    alice.list_buckets()
    # the round-1 snapshot and scrub cursor are understood: status and a scrub pass work
    st = json.loads(d.cli("status", "--json").stdout)
    assert st["services"]["snapshot"]["count"] == 1  # the fresh one, taken after the secrets were wrapped
    r = d.cli("scrub", "--json")
    scrub = json.loads(r.stdout)
    assert scrub["unrecoverable"] == 0 and scrub["found"] == 0


def test_round1_secrets_wrapped_by_an_offline_command(daemon_factory: Any, tmp_path: Path) -> None:
    """With the daemon stopped, the first identity command wraps the secrets and compacts them out of
    meta/; the daemon's next start replaces the snapshots that still hold them."""
    data = _unpack(tmp_path)
    expected = json.loads((data / "expected.json").read_text())
    secret = expected["user"]["secret_key"].encode()
    d = daemon_factory(name="data", start=False)
    listed = json.loads(d.cli("user", "list", "--json").stdout)
    assert [u["user"] for u in listed] == ["alice"] and len(listed[0]["keys"]) == 2
    assert _files_holding(data, secret) == ["disks"]  # meta/ is clean; the old snapshot is not yet
    config = tmp_path / "gc.toml"
    config.write_text("[gc]\ngrace_seconds = 0.5\ninterval_seconds = 0.2\n")
    d.extra_args = ["--no-mount", "--config", str(config)]
    d.start()
    wait_for(lambda: not _files_holding(data, secret), timeout=30, what="the old snapshot to be collected")
    assert json.loads(d.cli("status", "--json").stdout)["services"]["snapshot"]["count"] == 1
    user = expected["user"]
    boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=user["access_key"],
                 aws_secret_access_key=user["secret_key"], region_name="us-east-1",
                 config=BotoConfig(retries={"max_attempts": 1})).list_buckets()

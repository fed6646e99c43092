"""`stowage import s3` from a real S3 server: moto in server mode, and Ceph RGW (rgw-up.sh).

The source gets versions and delete markers, user metadata and content headers, tags, checksums,
a multipart object, a storage class, object lock (retention and legal hold), a bucket policy,
bucket tags and default encryption. After the import every version is in Stowage in the same
order with the same data and attributes; a dry run reports and writes nothing; a second run
copies only what changed since (new versions, an overwrite, a deletion)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.importer.source import versions_by_key
from tests.conftest import REPO, DaemonProc

from .s3servers import S3Server, moto_command, moto_server, rgw_server, stop_rgw

POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "read", "Effect": "Allow", "Principal": {"AWS": ["*"]},
                                                   "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*"]}]}
BIG = os.urandom(11 * 1024 * 1024 + 7)


@dataclass(frozen=True)
class Names:
    """Bucket names of one run: RGW outlives a test, and a COMPLIANCE-locked object cannot be
    removed before its date, so every run has its own buckets."""

    docs: str
    plain: str
    locked: str

    @classmethod
    def fresh(cls) -> Names:
        tag = uuid.uuid4().hex[:8]
        return cls(f"docs-{tag}", f"plain-{tag}", f"locked-{tag}")

    def args(self) -> list[str]:
        return [a for b in (self.docs, self.plain, self.locked) for a in ("--bucket", b)]


def populate(src: Any, n: Names, *, lock: bool = True) -> dict[str, Any]:
    """Fill the source; returns what the checks expect."""
    src.create_bucket(Bucket=n.docs)
    src.put_bucket_versioning(Bucket=n.docs, VersioningConfiguration={"Status": "Enabled"})
    src.put_bucket_tagging(Bucket=n.docs, Tagging={"TagSet": [{"Key": "team", "Value": "ops"}]})
    history = []
    for i in range(3):
        src.put_object(Bucket=n.docs, Key="report.txt", Body=f"draft {i}".encode(), ContentType="text/plain",
                       ContentDisposition='attachment; filename="report.txt"', CacheControl="max-age=60",
                       Metadata={"author": f"a{i}"}, Tagging=f"rev={i}")
        history.append(f"draft {i}".encode())
    src.delete_object(Bucket=n.docs, Key="report.txt")
    src.put_object(Bucket=n.docs, Key="report.txt", Body=b"final", ContentType="text/plain")
    history += [None, b"final"]
    src.put_object(Bucket=n.docs, Key="summed.bin", Body=b"checksummed", ChecksumAlgorithm="SHA256")
    up = src.create_multipart_upload(Bucket=n.docs, Key="big.bin", ContentType="application/x-big",
                                     Metadata={"kind": "multipart"})
    parts, size = [], 5 * 1024 * 1024
    for number, off in enumerate(range(0, len(BIG), size), 1):
        r = src.upload_part(Bucket=n.docs, Key="big.bin", UploadId=up["UploadId"], PartNumber=number,
                            Body=BIG[off : off + size])
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    src.complete_multipart_upload(Bucket=n.docs, Key="big.bin", UploadId=up["UploadId"],
                                  MultipartUpload={"Parts": parts})
    big_etag = src.head_object(Bucket=n.docs, Key="big.bin")["ETag"]  # RGW 16 answers the completion with ""
    try:
        src.put_object(Bucket=n.docs, Key="cold/archive.txt", Body=b"rarely read", StorageClass="STANDARD_IA")
        storage_class = "STANDARD_IA"
    except ClientError:  # RGW without such a placement target refuses the class
        src.put_object(Bucket=n.docs, Key="cold/archive.txt", Body=b"rarely read")
        storage_class = "STANDARD"

    src.create_bucket(Bucket=n.plain)
    src.put_bucket_policy(Bucket=n.plain, Policy=json.dumps(POLICY))
    for i in range(5):
        src.put_object(Bucket=n.plain, Key=f"dir/file{i}", Body=f"plain {i}".encode())
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    if lock:
        src.create_bucket(Bucket=n.locked, ObjectLockEnabledForBucket=True)
        src.put_object_lock_configuration(Bucket=n.locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        src.put_object(Bucket=n.locked, Key="held", Body=b"held", ObjectLockLegalHoldStatus="ON")
        src.put_object(Bucket=n.locked, Key="kept", Body=b"kept", ObjectLockMode="COMPLIANCE",
                       ObjectLockRetainUntilDate=until)
    # RGW 16.2 predates flexible checksums: it stores none, so there is none to carry over
    checksum = src.head_object(Bucket=n.docs, Key="summed.bin", ChecksumMode="ENABLED").get("ChecksumSHA256")
    return {"history": history, "big_etag": big_etag, "until": until, "storage_class": storage_class,
            "checksum": checksum}


def run_import(d: DaemonProc, server: S3Server, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "appliance", "import", "s3", "--data", str(d.data_dir),
                        "--endpoint", server.endpoint, "--access-key", server.access_key,
                        "--secret-key", server.secret_key, "--json", *extra],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def report_of(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(r.stdout[r.stdout.index("{"):])


def check_imported(dst: Any, n: Names, expect: dict[str, Any], *, lock: bool = True, exact_order: bool = True) -> None:
    """exact_order: the source lists delete markers among the versions in order, as S3 and RGW
    do. moto lists every marker after the versions, with times in whole seconds, so from it
    only the order of the versions with data, and the current one, can be carried over."""
    [(_, versions)] = list(versions_by_key(dst, n.docs, "report.txt"))  # oldest first, as Stowage lists them
    got = [None if v.delete_marker else
           dst.get_object(Bucket=n.docs, Key="report.txt", VersionId=v.version_id)["Body"].read() for v in versions]
    if exact_order:
        assert got == expect["history"]
    else:
        assert [g for g in got if g is not None] == [h for h in expect["history"] if h is not None]
        assert got.count(None) == expect["history"].count(None) and got[-1] == expect["history"][-1]
    first = versions[0]
    head = dst.head_object(Bucket=n.docs, Key="report.txt", VersionId=first.version_id)
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"author": "a0"}
    assert head["CacheControl"] == "max-age=60" and head["ContentDisposition"] == 'attachment; filename="report.txt"'
    tags = dst.get_object_tagging(Bucket=n.docs, Key="report.txt", VersionId=first.version_id)["TagSet"]
    assert tags == [{"Key": "rev", "Value": "0"}]
    assert dst.get_bucket_versioning(Bucket=n.docs)["Status"] == "Enabled"
    assert dst.get_bucket_tagging(Bucket=n.docs)["TagSet"] == [{"Key": "team", "Value": "ops"}]

    summed = dst.head_object(Bucket=n.docs, Key="summed.bin", ChecksumMode="ENABLED")
    if expect["checksum"] is not None:
        assert expect["checksum"] == base64.b64encode(hashlib.sha256(b"checksummed").digest()).decode()
        assert summed["ChecksumSHA256"] == expect["checksum"]
    big = dst.get_object(Bucket=n.docs, Key="big.bin")
    assert big["ETag"] == expect["big_etag"]  # the same part boundaries
    assert big["Body"].read() == BIG and big["Metadata"] == {"kind": "multipart"}
    assert dst.head_object(Bucket=n.docs, Key="cold/archive.txt").get("StorageClass", "STANDARD") == \
        expect["storage_class"]

    assert json.loads(dst.get_bucket_policy(Bucket=n.plain)["Policy"])["Statement"][0]["Sid"] == "read"
    plain = sorted(o["Key"] for o in dst.list_objects_v2(Bucket=n.plain)["Contents"])
    assert plain == [f"dir/file{i}" for i in range(5)]
    if lock:
        conf = dst.get_object_lock_configuration(Bucket=n.locked)["ObjectLockConfiguration"]
        assert conf["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
        assert dst.get_object_legal_hold(Bucket=n.locked, Key="held")["LegalHold"]["Status"] == "ON"
        kept = dst.get_object_retention(Bucket=n.locked, Key="kept")["Retention"]
        assert kept["Mode"] == "COMPLIANCE" and kept["RetainUntilDate"] == expect["until"]


def import_round_trip(daemon: DaemonProc, server: S3Server, *, lock: bool = True, exact_order: bool = True) -> None:
    src = server.client()
    n = Names.fresh()
    expect = populate(src, n, lock=lock)
    dry = report_of(run_import(daemon, server, "--dry-run", *n.args()))
    assert dry["dry_run"] and dry["versions"] >= 10 and dry["delete_markers"] == 1
    dst = daemon.s3()
    assert dst.list_buckets()["Buckets"] == []  # a dry run writes nothing

    first = report_of(run_import(daemon, server, "--parallel", "3", "--rate-limit", "200M", *n.args()))
    assert first["failed"] == [], first
    assert first["delete_markers"] == 1 and first["bytes"] >= len(BIG)
    check_imported(dst, n, expect, lock=lock, exact_order=exact_order)

    # changes since: a new version, an overwrite in an unversioned bucket, a deletion
    src.put_object(Bucket=n.docs, Key="report.txt", Body=b"after the first run")
    src.put_object(Bucket=n.plain, Key="dir/file0", Body=b"overwritten")
    src.delete_object(Bucket=n.plain, Key="dir/file1")
    again = report_of(run_import(daemon, server, *n.args()))
    assert again["failed"] == [] and again["versions"] == 2 and again["deleted"] == 1, again
    assert again["unchanged"] >= first["versions"] - 1
    assert dst.get_object(Bucket=n.docs, Key="report.txt")["Body"].read() == b"after the first run"
    assert dst.get_object(Bucket=n.plain, Key="dir/file0")["Body"].read() == b"overwritten"
    assert "dir/file1" not in [o["Key"] for o in dst.list_objects_v2(Bucket=n.plain)["Contents"]]
    cursor = list((daemon.data_dir / "import").iterdir())
    assert len(cursor) == 1 and cursor[0].stat().st_mode & 0o777 == 0o600
    assert server.secret_key not in cursor[0].read_text()
    assert report_of(run_import(daemon, server, *n.args()))["versions"] == 0  # nothing changed since


@pytest.mark.skipif(moto_command() is None, reason="moto[server] is not installed (pip install -e '.[dev]')")
def test_import_from_moto(daemon: DaemonProc, tmp_path: Path) -> None:
    with moto_server(tmp_path / "moto.log") as server:
        import_round_trip(daemon, server, exact_order=False)


@pytest.fixture(scope="module")
def rgw() -> Iterator[S3Server]:
    server, why = rgw_server()
    if server is None:
        pytest.skip(why)
    yield server
    if why == "started":  # this run started it: leave the machine as it was
        stop_rgw()


def test_import_from_ceph_rgw(rgw: S3Server, daemon: DaemonProc) -> None:
    import_round_trip(daemon, rgw)

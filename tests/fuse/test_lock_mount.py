"""Object lock through the mount: a bucket with object lock is versioned, so writes make new
versions, unlink only adds a delete marker, and every locked version stays, through a restart;
the engine's refusal to remove a protected version reaches the mount as EPERM."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.engine.lock import COMPLIANCE, LockConfig

from .conftest import CTX, FS, mounted
from .test_operations import expect_errno

FAR = datetime(2099, 1, 1, tzinfo=UTC)
COMPLIANCE_DAY = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}


def _denied(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    return str(exc.value.response["Error"]["Code"])


def _versions(s3: Any, bucket: str, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return ([v for v in out.get("Versions", []) if v["Key"] == key],
            [m for m in out.get("DeleteMarkers", []) if m["Key"] == key])


def test_locked_versions_survive_the_mount_and_a_restart(mount_daemon: Any) -> None:
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="vault", ObjectLockConfiguration=COMPLIANCE_DAY)
    path = m / "vault" / "ledger.txt"
    path.write_bytes(b"first entry")
    head = s3.head_object(Bucket="vault", Key="ledger.txt")
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default reaches what the mount writes
    first = head["VersionId"]
    path.write_bytes(b"rewritten")  # a write makes a new version; the old one stays
    assert s3.get_object(Bucket="vault", Key="ledger.txt", VersionId=first)["Body"].read() == b"first entry"
    os.unlink(path)  # only a delete marker
    assert not path.exists()
    versions, markers = _versions(s3, "vault", "ledger.txt")
    assert len(markers) == 1 and first in {v["VersionId"] for v in versions}
    assert _denied(s3.delete_object, Bucket="vault", Key="ledger.txt", VersionId=first,
                   BypassGovernanceRetention=True) == "AccessDenied"
    os.mkdir(m / "vault" / "dir")
    (m / "vault" / "dir" / "f").write_bytes(b"in a directory")
    os.rename(m / "vault" / "dir" / "f", m / "vault" / "moved")
    assert (m / "vault" / "moved").read_bytes() == b"in a directory"
    with pytest.raises(OSError) as exc:
        os.rmdir(m / "vault")
    assert exc.value.errno == errno.ENOTEMPTY

    mount_daemon.restart()
    m = mounted(mount_daemon)
    s3 = mount_daemon.s3()
    assert (m / "vault" / "moved").read_bytes() == b"in a directory"
    assert not (m / "vault" / "ledger.txt").exists()
    assert s3.get_object(Bucket="vault", Key="ledger.txt", VersionId=first)["Body"].read() == b"first entry"
    assert _denied(s3.delete_object, Bucket="vault", Key="ledger.txt", VersionId=first) == "AccessDenied"
    assert _denied(s3.put_bucket_versioning, Bucket="vault",
                   VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"
    versions, _ = _versions(s3, "vault", "moved")
    for v in versions:
        assert s3.head_object(Bucket="vault", Key="moved", VersionId=v["VersionId"])["ObjectLockMode"] == "COMPLIANCE"
        assert _denied(s3.delete_object, Bucket="vault", Key="moved", VersionId=v["VersionId"]) == "AccessDenied"


async def test_the_engines_refusal_is_eperm_in_the_mount(fs: FS) -> None:
    """A protected version the mount would remove outright (only possible in an unversioned
    bucket, which object lock excludes: here a bucket record forced back to unversioned) is EPERM,
    and nothing committed changes."""
    await fs.write_file("bkt/held.txt", b"held")
    await fs.store.set_versioning("bkt", "Enabled")
    await fs.store.set_object_lock("bkt", LockConfig())
    await fs.store.set_retention("bkt", "held.txt", "null", COMPLIANCE, int(FAR.timestamp()) * 10**9)
    rec = fs.store.get_bucket("bkt")
    rec.versioning = ""
    await fs.store.put_bucket_record(rec)
    bkt = await fs.ino("bkt")
    await expect_errno(errno.EPERM, fs.ops.unlink(bkt, b"held.txt", CTX))
    await expect_errno(errno.EPERM, fs.ops.rename(bkt, b"held.txt", bkt, b"other.txt", 0, CTX))
    fh = await fs.open("bkt/held.txt")
    await fs.ops.write(fh, 0, b"overwritten")
    await expect_errno(errno.EPERM, fs.ops.flush(fh))
    await expect_errno(errno.EPERM, fs.ops.release(fh))  # close(2) retries the commit
    v = fs.store.head_object("bkt", "held.txt")
    assert v.version_id == "null" and b"".join([p async for p in fs.store.read_object(v)]) == b"held"

"""Archive classes and RestoreObject through S3 and the mount (lifecycle day 0.2 s, restores
taking at least 1 s): GET refused before a restore, the restore in progress, readable after,
the restored copy expiring, a restore extended; the mount answering ENODATA meanwhile; listings
reporting RestoreStatus when asked (x-amz-optional-object-attributes)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc
from tests.fuse.conftest import fuse_available

from .conftest import lifecycle_config, wait_for

BODY = os.urandom(300 * 1024)


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def listed_restores(s3: Any) -> dict[str, Any]:
    """Key -> the RestoreStatus ListObjectsV2 gives it when asked (None: none)."""
    got = s3.list_objects_v2(Bucket="vault", OptionalObjectAttributes=["RestoreStatus"])["Contents"]
    return {o["Key"]: o.get("RestoreStatus") for o in got}


@pytest.fixture
def archive_daemon(tmp_path: Path) -> Any:
    config = lifecycle_config(tmp_path / "lc.toml")
    config.write_text(config.read_text().replace("[lifecycle]\n", "[lifecycle]\nrestore_min_seconds = 1.0\n"))
    args = ["--config", str(config)]
    args += ["--mount", str(tmp_path / "mnt")] if fuse_available() else ["--no-mount"]
    d = DaemonProc(tmp_path / "data", args).start()
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


def test_archive_get_restore_expiry_and_extension(archive_daemon: DaemonProc) -> None:
    d = archive_daemon
    s3 = d.s3()
    s3.create_bucket(Bucket="vault")
    s3.put_object(Bucket="vault", Key="cold.bin", Body=BODY, StorageClass="DEEP_ARCHIVE")
    s3.put_object(Bucket="vault", Key="hot.bin", Body=b"x")
    head = s3.head_object(Bucket="vault", Key="cold.bin")  # HEAD works, and says nothing is restored
    assert head["StorageClass"] == "DEEP_ARCHIVE" and "Restore" not in head
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="vault", Key="cold.bin")
    assert code(e) == (403, "InvalidObjectState")
    with pytest.raises(ClientError) as e:  # nor can it be copied before it is restored
        s3.copy_object(Bucket="vault", Key="copy", CopySource={"Bucket": "vault", "Key": "cold.bin"})
    assert code(e) == (403, "InvalidObjectState")
    with pytest.raises(ClientError) as e:
        s3.restore_object(Bucket="vault", Key="hot.bin", RestoreRequest={"Days": 1})
    assert code(e) == (403, "InvalidObjectState")
    if d.mount:
        with pytest.raises(OSError) as oe:
            (Path(d.mount) / "vault" / "cold.bin").read_bytes()
        assert oe.value.errno == errno.ENODATA  # the documented errno of a file not restored

    r = s3.restore_object(Bucket="vault", Key="cold.bin",
                          RestoreRequest={"Days": 100, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket="vault", Key="cold.bin")["Restore"] == 'ongoing-request="true"'
    assert listed_restores(s3) == {"cold.bin": {"IsRestoreInProgress": True}, "hot.bin": None}
    with pytest.raises(ClientError) as e:
        s3.restore_object(Bucket="vault", Key="cold.bin", RestoreRequest={"Days": 5})
    assert code(e) == (409, "RestoreAlreadyInProgress")

    wait_for(lambda: 'ongoing-request="false"' in s3.head_object(Bucket="vault", Key="cold.bin").get("Restore", ""),
             "the restore")
    restored = s3.head_object(Bucket="vault", Key="cold.bin")
    assert 'expiry-date="' in restored["Restore"] and restored["StorageClass"] == "DEEP_ARCHIVE"
    assert s3.get_object(Bucket="vault", Key="cold.bin")["Body"].read() == BODY
    listed = listed_restores(s3)
    assert listed["hot.bin"] is None and listed["cold.bin"]["IsRestoreInProgress"] is False
    assert set(listed["cold.bin"]) == {"IsRestoreInProgress", "RestoreExpiryDate"}
    assert listed["cold.bin"]["RestoreExpiryDate"].strftime("%a, %d %b %Y %H:%M:%S GMT") in restored["Restore"]
    versions = s3.list_object_versions(Bucket="vault", OptionalObjectAttributes=["RestoreStatus"])["Versions"]
    assert {v["Key"]: v.get("RestoreStatus") for v in versions} == listed
    assert all("RestoreStatus" not in o for o in s3.list_objects_v2(Bucket="vault")["Contents"])  # not asked
    if d.mount:
        assert (Path(d.mount) / "vault" / "cold.bin").read_bytes() == BODY
    status = d.cli("status", "--json").stdout
    assert '"restore"' in status

    # a second request extends the expiry (200, not 202)
    r = s3.restore_object(Bucket="vault", Key="cold.bin", RestoreRequest={"Days": 400})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_object(Bucket="vault", Key="cold.bin")["Restore"] != restored["Restore"]

    # a 1-day restore expires within a lifecycle day or two: the copy goes, GET is refused again
    s3.put_object(Bucket="vault", Key="brief", Body=BODY, StorageClass="GLACIER")
    s3.restore_object(Bucket="vault", Key="brief", RestoreRequest={"Days": 1})
    wait_for(lambda: 'ongoing-request="false"' in s3.head_object(Bucket="vault", Key="brief").get("Restore", ""),
             "the second restore")
    wait_for(lambda: "Restore" not in s3.head_object(Bucket="vault", Key="brief"), "the copy's expiry")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="vault", Key="brief")
    assert code(e) == (403, "InvalidObjectState")
    assert s3.get_object(Bucket="vault", Key="cold.bin")["Body"].read() == BODY  # still restored for 400 days

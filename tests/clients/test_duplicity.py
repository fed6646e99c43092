"""Duplicity (Debian 12's 0.8.22, its boto3 S3 backend) backing up to the gateway into a bucket
with object lock and a default retention: a full backup, an incremental one, verify, a restore
compared byte for byte with the source, and each backup volume stored under the retention (which
duplicity itself knows nothing about: the bucket's default applies to every volume it uploads).
`make setup` installs duplicity and python3-boto3 (Makefile APT_PACKAGES)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import clean_env, make_tree, read_tree, require, run

MiB = 1024 * 1024


def test_duplicity_backup_verify_restore(cd: Any, s3: Any, tmp_path: Path) -> None:
    exe = require("duplicity")
    bucket = "duplicity-locked"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    (tmp_path / "home").mkdir()
    env = clean_env(tmp_path / "home", {"AWS_ACCESS_KEY_ID": cd.access_key, "AWS_SECRET_ACCESS_KEY": cd.secret_key})
    url = f"boto3+s3://{bucket}/backups"
    common = ["--no-encryption", "--s3-endpoint-url", cd.endpoint, "--s3-region-name", "us-east-1",
              "--archive-dir", str(tmp_path / "archive"), "--name", "stowage-test", "--volsize", "2"]

    src = tmp_path / "src"
    make_tree(src, {f"dir{i}/f{j}.bin": (i + 1) * 300_000 + j for i in range(3) for j in range(3)}
              | {"big.bin": 5 * MiB, "empty": 0, "deep/a/b/tiny.txt": 5})
    run([exe, "full", *common, str(src), url], env, timeout=300)
    (src / "dir0/f0.bin").write_bytes(os.urandom(250_000))  # incremental: changed, added, removed
    (src / "added.bin").write_bytes(os.urandom(MiB))
    (src / "dir2/f2.bin").unlink()
    run([exe, "incremental", *common, str(src), url], env, timeout=300)
    expected = read_tree(src)

    status = run([exe, "collection-status", *common, url], env).stdout
    assert "Full" in status and "Incremental" in status
    run([exe, "verify", "--compare-data", *common, url, str(src)], env, timeout=300)
    restored = tmp_path / "restored"
    run([exe, "restore", *common, url, str(restored)], env, timeout=300)
    assert read_tree(restored) == expected

    volumes = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="backups/")["Contents"]]
    assert any(".vol" in k for k in volumes) and any("manifest" in k for k in volumes)
    for key in volumes:
        assert s3.get_object_retention(Bucket=bucket, Key=key)["Retention"]["Mode"] == "GOVERNANCE"
    # a backup volume cannot be removed while retained (what protects it from a compromised client)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=volumes[0])["Versions"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key=volumes[0], VersionId=versions[0]["VersionId"])
    assert exc.value.response["Error"]["Code"] == "AccessDenied"

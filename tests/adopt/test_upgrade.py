"""Upgrading the round-1 data directory (tests/fixtures/round1-datadir.tar.xz, written by the
previous release) and rolling back: `stowage upgrade --check` names the migrations, the first
start snapshots the metadata before migrating, `stowage version` reports the formats,
`stowage rollback` restores the pre-upgrade metadata and the previous software, and the
restored data directory upgrades again and reads back byte-exact; a committed upgrade cannot
be rolled back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.admin.test_round1_datadir import _files_holding, _get, _unpack

MIGRATIONS = {"wrap-secrets", "account-record", "master-key-mark"}


def _check_round1_objects(s3: Any, expected: dict[str, Any]) -> None:
    checked = 0
    for obj in expected["objects"]:
        if "delete_marker" in obj or "symlink" in obj:
            continue
        assert hashlib.sha256(_get(s3, obj)["Body"].read()).hexdigest() == obj["sha256"], obj["key"]
        checked += 1
    assert checked >= 10


def test_upgrade_round1_data_dir_and_roll_back(daemon_factory: Any, tmp_path: Path) -> None:
    data = _unpack(tmp_path)
    expected = json.loads((data / "expected.json").read_text())
    secret = expected["user"]["secret_key"].encode()
    d = daemon_factory(["--no-mount"], name="data", start=False)

    check = json.loads(d.cli("upgrade", "--check", "--json").stdout)
    assert not check["current"] and {p["name"] for p in check["pending"]} == MIGRATIONS
    assert check["data_version"] is None and check["upgrade"] is None
    text = d.cli("upgrade", "--check").stdout
    assert "will take a metadata snapshot, then migrate" in text and "wrap-secrets" in text
    assert "NOT current" in d.cli("version").stdout

    d.start()
    assert "pre-upgrade metadata snapshot" in d.log_tail(200)
    s3 = d.s3()
    s3.put_object(Bucket="plain", Key="written-after-the-upgrade", Body=b"new")
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    locked = s3.put_object(Bucket="vault", Key="ledger", Body=b"kept", ObjectLockMode="GOVERNANCE",
                           ObjectLockRetainUntilDate=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))["VersionId"]
    d.stop()
    version = json.loads(d.cli("version", "--json").stdout)
    assert version["current"] and version["data_version"] == version["version"]
    upgrade = version["upgrade"]
    assert not upgrade["committed"] and set(upgrade["migrations"]) == MIGRATIONS
    snapshot = Path(upgrade["snapshot"])
    assert (snapshot / "meta" / "CURRENT").exists() and snapshot.stat().st_mode & 0o777 == 0o700
    assert "meta" not in _files_holding(data, secret)  # migrated: wrapped
    assert "NOT committed" in d.cli("version").stdout

    install = tmp_path / "opt"  # what the package keeps: the new venv and the previous one
    (install / "venv").mkdir(parents=True)
    (install / "venv" / "VERSION").write_text("new")
    (install / "venv.previous").mkdir()
    (install / "venv.previous" / "VERSION").write_text("previous")
    # a rollback would lose a version written since under object lock (the orphan sweep deletes
    # its data): refused, naming it, and nothing changes, until asked to discard it
    r = d.cli("rollback", "--yes", "--install-dir", str(install), check=False)
    assert r.returncode == 1 and "protected by object lock" in r.stderr and f"vault/ledger {locked}" in r.stderr
    assert snapshot.exists() and (install / "venv" / "VERSION").read_text() == "new"
    assert "NOT committed" in d.cli("version").stdout
    r = d.cli("rollback", "--yes", "--discard-locked-versions", "--install-dir", str(install))
    assert "restored from the pre-upgrade snapshot" in r.stdout and "journal moved aside" in r.stdout
    assert (install / "venv" / "VERSION").read_text() == "previous"
    assert not snapshot.exists()
    assert "meta" in _files_holding(data, secret)  # the round-1 metadata, exactly as it was
    again = json.loads(d.cli("upgrade", "--check", "--json").stdout)
    assert {p["name"] for p in again["pending"]} == MIGRATIONS and again["upgrade"] is None
    assert d.cli("rollback", "--yes", check=False).returncode == 1  # nothing left to roll back

    d.start()  # upgrades again from the restored state; the post-upgrade write is gone
    s3 = d.s3()
    _check_round1_objects(s3, expected)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="plain", Key="written-after-the-upgrade")
    assert exc.value.response["Error"]["Code"] == "NoSuchKey"
    d.stop()
    committed = d.cli("upgrade", "--commit").stdout
    assert "committed" in committed
    assert not Path(json.loads(d.cli("version", "--json").stdout)["upgrade"]["snapshot"] or "/nonexistent").exists()
    r = d.cli("rollback", "--yes", check=False)
    assert r.returncode == 1 and "no uncommitted upgrade" in r.stderr
    d.start()
    _check_round1_objects(d.s3(), expected)
    d.stop()
    # a start of the same version migrates nothing and takes no new snapshot
    assert json.loads(d.cli("version", "--json").stdout)["upgrade"]["committed"]


def test_a_rollback_never_discards_compliance_retention(daemon_factory: Any, tmp_path: Path) -> None:
    """COMPLIANCE retention gives way to nobody before its date (AWS: root included), so a
    rollback that would lose a version under it is refused even with --discard-locked-versions,
    and changes nothing; GOVERNANCE retention is what the flag may discard."""
    _unpack(tmp_path)
    d = daemon_factory(["--no-mount"], name="data", start=False)
    d.start()
    s3 = d.s3()
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    until = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    kept = s3.put_object(Bucket="vault", Key="ledger", Body=b"kept", ObjectLockMode="COMPLIANCE",
                         ObjectLockRetainUntilDate=until)["VersionId"]
    governed = s3.put_object(Bucket="vault", Key="draft", Body=b"draft", ObjectLockMode="GOVERNANCE",
                             ObjectLockRetainUntilDate=until)["VersionId"]
    d.stop()
    snapshot = Path(json.loads(d.cli("version", "--json").stdout)["upgrade"]["snapshot"])
    install = tmp_path / "opt"
    (install / "venv").mkdir(parents=True)
    (install / "venv" / "VERSION").write_text("new")
    (install / "venv.previous").mkdir()
    (install / "venv.previous" / "VERSION").write_text("previous")
    for flags in (("--discard-locked-versions",), ()):
        r = d.cli("rollback", "--yes", *flags, "--install-dir", str(install), check=False)
        assert r.returncode == 1 and "COMPLIANCE" in r.stderr and f"vault/ledger {kept}" in r.stderr, flags
        assert f"vault/draft {governed}" not in r.stderr
        assert snapshot.exists() and (install / "venv" / "VERSION").read_text() == "new"
        assert "NOT committed" in d.cli("version").stdout
    d.start()
    assert d.s3().get_object(Bucket="vault", Key="ledger", VersionId=kept)["Body"].read() == b"kept"
    d.stop()


def test_fresh_data_dir_needs_no_snapshot(daemon: Any) -> None:
    daemon.s3().create_bucket(Bucket="fresh")
    daemon.stop()
    v = json.loads(daemon.cli("version", "--json").stdout)
    assert v["current"] and v["upgrade"] is None and v["pending"] == []
    assert not (daemon.data_dir / "upgrade").exists()
    assert "nothing to migrate" in daemon.cli("upgrade", "--check").stdout

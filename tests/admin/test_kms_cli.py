"""`stowage kms ...` and `recover-metadata --master-key` against the real daemon and offline.

Encrypted objects are written in-process with the KMS (the S3 surface of server-side encryption
is another change), on the data directory the daemon then serves."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import boto3
import trio
from botocore.config import Config as BotoConfig

from appliance.engine.metasnap import take_snapshot
from appliance.engine.objectstore import ObjectStore
from appliance.iam.kms import Kms, sse_c_key
from appliance.iam.masterkey import load_or_create, open_for
from tests.engine.conftest import open_store

Objects = dict[str, tuple[bytes, bytes | None]]


def _populate(data: Path, snapshot: bool = False) -> Objects:
    async def work() -> Objects:
        store = open_store(data)
        try:
            kms = Kms(store.db, open_for(store.cfg, store.db))
            await store.create_bucket("enc")
            kms.create_key("backup")
            objs: Objects = {}
            for i in range(6):
                body = random.Random(i).randbytes(150_000 + i)
                ck = bytes(range(32)) if i == 5 else None
                key = sse_c_key(ck) if ck else kms.sse_kms_key("backup", {}) if i % 2 else kms.sse_s3_key()
                await store.put_object("enc", f"o{i}", body, encrypt_with=key)
                objs[f"o{i}"] = (body, ck)
            if snapshot:
                await take_snapshot(store, 3)
            return objs
        finally:
            store.db.close()

    return trio.run(work)


def _check(data: Path, objs: Objects) -> None:
    async def work() -> None:
        store: ObjectStore = open_store(data)
        try:
            kms = Kms(store.db, load_or_create(store.cfg.master_key_path, create=False))
            for key, (body, ck) in objs.items():
                v = store.head_object("enc", key)
                got = b"".join([p async for p in store.read_object(v, decrypt_with=kms.resolver(ck))])
                assert got == body, key
        finally:
            store.db.close()

    trio.run(work)


def test_kms_keys_online_and_offline(daemon: Any) -> None:
    made = json.loads(daemon.cli("kms", "key", "create", "photos", "--description", "camera", "--json").stdout)
    assert made["name"] == "photos" and made["enabled"] and made["versions"] == 1
    assert json.loads(daemon.cli("kms", "key", "disable", "photos", "--json").stdout)["enabled"] is False
    assert "enabled" in daemon.cli("kms", "key", "enable", "alias/photos").stdout
    assert json.loads(daemon.cli("kms", "key", "rotate", made["key_id"], "--json").stdout)["versions"] == 2
    r = daemon.cli("kms", "key", "create", "photos", check=False)
    assert r.returncode == 1 and "exists already" in r.stderr
    r = daemon.cli("kms", "key", "disable", "nope", check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr

    daemon.stop()  # offline: the same commands on the metadata DB
    daemon.cli("kms", "key", "create", "offline")
    listing = json.loads(daemon.cli("kms", "key", "list", "--json").stdout)
    assert [(k["name"], k["versions"]) for k in listing] == [("offline", 1), ("photos", 2)]
    daemon.start()
    assert "offline" in daemon.cli("kms", "key", "list").stdout


def test_rotate_master_export_and_import(daemon_factory: Any, tmp_path: Path) -> None:
    d = daemon_factory(["--no-mount"], start=False)
    objs = _populate(d.data_dir)
    key_file = d.data_dir / "keys" / "master.key"
    old = load_or_create(key_file, create=False).current
    d.start()
    backup_old = tmp_path / "before.key"
    d.cli("kms", "export-master", str(backup_old))
    assert backup_old.stat().st_mode & 0o777 == 0o600
    assert d.cli("kms", "export-master", str(backup_old), check=False).returncode == 1  # never overwritten

    alice = json.loads(d.cli("user", "add", "alice", "--policy", "readonly", "--json").stdout)
    res = json.loads(d.cli("kms", "rotate-master", "--json").stdout)
    assert res["phase"] == "done" and res["retired"] == [old] and res["rewrapped"] >= 5  # 3 SSE-S3, KMS, alice
    ring = load_or_create(key_file, create=False)
    assert list(ring.entries) == [res["new_key"]]
    d.restart()  # alice's secret opens with the new key alone
    s3 = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=alice["access_key"],
                      aws_secret_access_key=alice["secret_key"], region_name="us-east-1",
                      config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["enc"]
    r = d.cli("kms", "import-master", str(backup_old), check=False)
    assert r.returncode == 1 and "stop it first" in r.stderr
    d.stop()
    _check(d.data_dir, objs)  # everything opens with the new key alone

    backup_new = tmp_path / "after.key"
    d.cli("kms", "export-master", str(backup_new))
    key_file.unlink()
    r = d.cli("serve", "--no-mount", check=False)  # the DB knows it had a key: no silent new one
    assert r.returncode != 0 and "import-master" in r.stderr
    out = d.cli("kms", "import-master", str(backup_new)).stdout
    assert res["new_key"] in out
    d.cli("kms", "import-master", str(backup_old))  # merging an older backup adds its key, keeps current
    ring = load_or_create(key_file, create=False)
    assert ring.current == res["new_key"] and set(ring.entries) == {old, res["new_key"]}
    d.start()
    assert "backup" in d.cli("kms", "key", "list").stdout


def test_recover_metadata_with_a_master_key_backup(daemon_factory: Any, tmp_path: Path) -> None:
    d = daemon_factory(["--no-mount"], start=False)
    objs = _populate(d.data_dir, snapshot=True)  # the snapshot keeps the KMS key records
    backup = tmp_path / "master.backup"
    d.cli("kms", "export-master", str(backup))
    shutil.rmtree(d.data_dir / "meta")
    (d.data_dir / "keys" / "master.key").unlink()

    r = d.cli("recover-metadata", check=False)
    assert r.returncode == 1 and "no master key" in r.stderr and "--master-key" in r.stderr
    assert not (d.data_dir / "meta").exists() or not any((d.data_dir / "meta").iterdir())
    wrong = tmp_path / "wrong.key"
    load_or_create(wrong)
    r = d.cli("recover-metadata", "--master-key", str(wrong), check=False)
    assert r.returncode == 1 and "does not open" in r.stderr

    r = d.cli("recover-metadata", "--master-key", str(backup), "--json")
    report = json.loads(r.stdout)
    assert report["snapshot"] is not None
    assert (d.data_dir / "keys" / "master.key").exists()  # the backup went back to its place
    _check(d.data_dir, objs)
    d.start()
    assert "backup" in d.cli("kms", "key", "list").stdout

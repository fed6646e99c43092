"""restic (0.14.0, apt; minio-go underneath) backing up to the gateway over plain HTTP, where
minio-go signs every upload as STREAMING-AWS4-HMAC-SHA256-PAYLOAD (signed aws-chunked bodies).

init, backup, a second (incremental) backup, a daemon restart, check --read-data, restore
byte-compared with the source, forget --prune (deletes and repacks). The second path: restic
names every file under data/, index/, snapshots/ and keys/ by the SHA-256 of its content, so
reading them back through boto3 proves each stored object is exactly what restic sent."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .conftest import bucket_contents, clean_env, make_tree, read_tree, require, run

MiB = 1024 * 1024


def test_backup_check_restore(cd: Any, tmp_path: Path) -> None:
    exe = require("restic")
    (tmp_path / "home").mkdir()
    env = clean_env(tmp_path / "home", {
        "RESTIC_REPOSITORY": f"s3:{cd.endpoint}/restic-repo", "RESTIC_PASSWORD": "correct horse",
        "AWS_ACCESS_KEY_ID": cd.access_key, "AWS_SECRET_ACCESS_KEY": cd.secret_key,
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    })

    def restic(*args: str) -> str:
        r = run([exe, "--quiet", *args], env, timeout=180)
        assert "retrying" not in r.stderr, r.stderr  # restic retries failed requests by itself
        return r.stdout

    src = tmp_path / "src"
    files = make_tree(src, {f"dir{i}/f{j}.bin": (i + 1) * 150_000 + j for i in range(4) for j in range(3)}
                      | {"big.bin": 3 * MiB, "empty": 0, "deep/a/b/c/tiny.txt": 5})
    (src / "link").symlink_to("big.bin")

    run([exe, "init"], env)
    restic("backup", str(src))
    # Incremental: one changed file, one new, one removed.
    (src / "dir0/f0.bin").write_bytes(os.urandom(200_000))
    (src / "added.bin").write_bytes(os.urandom(1 * MiB))
    (src / "dir3/f2.bin").unlink()
    restic("backup", str(src))
    files = read_tree(src)

    # What restic stored survives a daemon restart (the endpoint's port may change: port 0).
    cd.restart()
    env["RESTIC_REPOSITORY"] = f"s3:{cd.endpoint}/restic-repo"
    snaps = json.loads(restic("snapshots", "--json"))
    assert len(snaps) == 2
    restic("check", "--read-data")

    restored = tmp_path / "restored"
    restic("restore", "latest", "--target", str(restored))
    back = restored / src.relative_to("/")
    assert read_tree(back) == files
    assert os.readlink(back / "link") == "big.bin"

    # The repository as boto3 sees it: every content-addressed file hashes to its own name.
    stored = bucket_contents(cd.s3(), "restic-repo")
    assert "config" in stored
    named = {k: v for k, v in stored.items() if k.split("/")[0] in ("data", "index", "snapshots", "keys")}
    assert {k.split("/")[0] for k in named} == {"data", "index", "snapshots", "keys"}
    for key, content in named.items():
        assert hashlib.sha256(content).hexdigest() == key.rsplit("/", 1)[1], key

    # Forget the first snapshot and prune: restic deletes and rewrites packs, and the repository
    # (re-read in full) still restores the latest snapshot exactly.
    restic("forget", "--keep-last", "1", "--prune")
    assert len(json.loads(restic("snapshots", "--json"))) == 1
    restic("check", "--read-data")
    again = tmp_path / "again"
    restic("restore", "latest", "--target", str(again))
    assert read_tree(again / src.relative_to("/")) == files

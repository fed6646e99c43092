"""The metadata DB lost at an arbitrary moment: clients write, overwrite, tag, delete and version
objects concurrently; the daemon is killed (SIGKILL) once a random number of requests were
acknowledged, its metadata DB deleted, and `stowage recover-metadata` run. Every acknowledged
change is back exactly and nothing deleted came back; a request in flight at the kill is either
entirely done or not at all."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

WORKERS = 3

# a key's state: None (absent) or (sha256 of the body, user metadata, tags)
State = tuple[str, dict[str, str], dict[str, str]] | None


@dataclass
class Worker:
    n: int
    model: dict[str, State] = field(default_factory=dict)  # acknowledged state per key (unversioned bucket)
    versions: dict[str, list[str]] = field(default_factory=dict)  # acknowledged version ids, oldest first
    pending: tuple[str, Any] | None = None  # (key, the state the request in flight would leave)
    acked: int = 0
    error: str = ""


def _state(body: bytes, meta: dict[str, str], tags: dict[str, str]) -> State:
    return hashlib.sha256(body).hexdigest(), meta, tags


def _work(d: Any, w: Worker, stop: threading.Event, progress: threading.Condition, seed: int) -> None:
    rnd = random.Random(seed * 100 + w.n)
    s3 = d.s3()
    while not stop.is_set():
        key = f"w{w.n}/k{rnd.randrange(6)}"
        op = rnd.choice(["put", "put", "put", "delete", "tag", "meta", "version", "unversion"])
        cur = w.model.get(key)
        try:
            if op == "put" or (op in ("tag", "meta") and cur is None):
                body = rnd.randbytes(rnd.choice([0, 1, 100, 5000, 70000]))
                meta = {"n": str(rnd.randrange(1000))}
                w.pending = (key, _state(body, meta, {}))
                s3.put_object(Bucket="crash", Key=key, Body=body, Metadata=meta)
            elif op == "delete":
                w.pending = (key, None)
                s3.delete_object(Bucket="crash", Key=key)
            elif op == "tag":
                assert cur is not None
                tags = {"t": str(rnd.randrange(1000))}
                w.pending = (key, (cur[0], cur[1], tags))
                s3.put_object_tagging(Bucket="crash", Key=key, Tagging={"TagSet": [{"Key": "t", "Value": tags["t"]}]})
            elif op == "meta":
                assert cur is not None
                meta = {"m": str(rnd.randrange(1000))}
                w.pending = (key, (cur[0], meta, cur[2]))
                s3.copy_object(Bucket="crash", Key=key, CopySource={"Bucket": "crash", "Key": key},
                               MetadataDirective="REPLACE", Metadata=meta, TaggingDirective="COPY")
            elif op == "version":
                vkey = f"w{w.n}/v{rnd.randrange(2)}"
                w.pending = (vkey, "new version")
                vid = s3.put_object(Bucket="crashv", Key=vkey, Body=rnd.randbytes(rnd.randrange(0, 3000)))["VersionId"]
                w.versions.setdefault(vkey, []).append(vid)
                w.pending, w.acked = None, w.acked + 1
                with progress:
                    progress.notify_all()
                continue
            else:  # remove a version for good
                vkey = f"w{w.n}/v{rnd.randrange(2)}"
                ids = w.versions.get(vkey, [])
                if not ids:
                    continue
                vid = rnd.choice(ids)
                w.pending = (vkey, ("gone", vid))
                s3.delete_object(Bucket="crashv", Key=vkey, VersionId=vid)
                ids.remove(vid)
                w.pending, w.acked = None, w.acked + 1
                with progress:
                    progress.notify_all()
                continue
        except Exception as exc:  # the kill: the request in flight stays pending
            if not stop.is_set():
                w.error = repr(exc)
            return
        w.model[key] = w.pending[1]
        w.pending, w.acked = None, w.acked + 1
        with progress:
            progress.notify_all()


def _read(s3: Any, key: str) -> State:
    try:
        got = s3.get_object(Bucket="crash", Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey", exc
        return None
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket="crash", Key=key)["TagSet"]}
    return hashlib.sha256(got["Body"].read()).hexdigest(), got["Metadata"], tags


@pytest.mark.parametrize("seed", [1, 2])
def test_recovery_after_a_kill_at_an_arbitrary_moment(daemon: Any, seed: int) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="crash")
    s3.create_bucket(Bucket="crashv")
    s3.put_bucket_versioning(Bucket="crashv", VersioningConfiguration={"Status": "Enabled"})
    workers = [Worker(n) for n in range(WORKERS)]
    stop, progress = threading.Event(), threading.Condition()
    threads = [threading.Thread(target=_work, args=(daemon, w, stop, progress, seed)) for w in workers]
    for t in threads:
        t.start()
    target = random.Random(seed).randrange(40, 160)
    with progress:
        assert progress.wait_for(lambda: sum(w.acked for w in workers) >= target or any(w.error for w in workers),
                                 timeout=300), "the workload stalled"
    stop.set()
    daemon.kill()
    for t in threads:
        t.join()
    assert not [w.error for w in workers if w.error]

    shutil.rmtree(daemon.data_dir / "meta")
    report = json.loads(daemon.cli("recover-metadata", "--json").stdout)
    assert report["journal"]["complete"] and report["not_restored"] == [], report
    daemon.start()
    s3 = daemon.s3()
    for w in workers:
        for key, state in w.model.items():
            got = _read(s3, key)
            if w.pending is not None and w.pending[0] == key:
                assert got in (state, w.pending[1]), key
            else:
                assert got == state, key
        for vkey, ids in w.versions.items():
            listed = [v["VersionId"] for v in s3.list_object_versions(Bucket="crashv", Prefix=vkey).get("Versions", [])
                      if v["Key"] == vkey][::-1]  # oldest first
            if w.pending is not None and w.pending[0] == vkey and w.pending[1] == "new version":
                assert listed[:len(ids)] == ids and len(listed) - len(ids) in (0, 1), vkey  # committed or not
            elif w.pending is not None and w.pending[0] == vkey:
                assert listed in (ids, [v for v in ids if v != w.pending[1][1]]), vkey
            else:
                assert listed == ids, vkey

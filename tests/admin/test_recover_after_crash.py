"""The metadata DB lost at an arbitrary moment: clients write, overwrite, tag, delete and version
objects over S3 and write, rename and remove files through the mount, concurrently; the daemon is
killed (SIGKILL) once a random number of requests were acknowledged, its metadata DB deleted, and
`stowage recover-metadata` run. Every acknowledged change is back exactly and nothing deleted
came back; a request in flight at the kill is either entirely done or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fuse.conftest import fuse_available

S3_WORKERS = 3

# a key's state: None (absent) or (sha256 of the body, user metadata, tags)
State = tuple[str, dict[str, str], dict[str, str]] | None


@dataclass
class Worker:
    n: int
    model: dict[str, State] = field(default_factory=dict)  # acknowledged state per key (unversioned bucket)
    versions: dict[str, list[str]] = field(default_factory=dict)  # acknowledged version ids, oldest first
    # what the request in flight may have left: key -> its state if done (or partly done, or the
    # special values of the version operations)
    pending: dict[str, Any] = field(default_factory=dict)
    also: dict[str, State] = field(default_factory=dict)  # another state a half-done request leaves
    # every state a mount file has had: a close is durable at fsync or within the mount's
    # interval (fusefs/SEMANTICS.md), so a kill with the metadata SSD lost may undo recent ones
    history: dict[str, list[State]] = field(default_factory=dict)
    acked: int = 0
    error: str = ""


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Run:
    def __init__(self, d: Any, seed: int) -> None:
        self.d = d
        self.seed = seed
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def ack(self, w: Worker, changes: dict[str, State]) -> None:
        for key, state in changes.items():
            if key.startswith("m/"):
                w.history.setdefault(key, [None]).extend([state, *([w.also[key]] if key in w.also else [])])
        w.model.update(changes)
        w.pending, w.also, w.acked = {}, {}, w.acked + 1
        with self.progress:
            self.progress.notify_all()

    def loop(self, w: Worker, step: Callable[[Worker, random.Random], None]) -> None:
        rnd = random.Random(self.seed * 100 + w.n)
        while not self.stop.is_set():
            try:
                step(w, rnd)
            except Exception as exc:  # the kill: the request in flight stays pending
                if not self.stop.is_set():
                    w.error = repr(exc)
                return

    def s3_step(self, w: Worker, rnd: random.Random) -> None:
        s3 = self.d.s3()
        key = f"w{w.n}/k{rnd.randrange(6)}"
        op = rnd.choice(["put", "put", "put", "delete", "tag", "meta", "version", "unversion"])
        cur = w.model.get(key)
        if op == "put" or (op in ("tag", "meta") and cur is None):
            body = rnd.randbytes(rnd.choice([0, 1, 100, 5000, 70000]))
            meta = {"n": str(rnd.randrange(1000))}
            w.pending = {key: (_sha(body), meta, {})}
            s3.put_object(Bucket="crash", Key=key, Body=body, Metadata=meta)
        elif op == "delete":
            w.pending = {key: None}
            s3.delete_object(Bucket="crash", Key=key)
        elif op == "tag":
            assert cur is not None
            tags = {"t": str(rnd.randrange(1000))}
            w.pending = {key: (cur[0], cur[1], tags)}
            s3.put_object_tagging(Bucket="crash", Key=key, Tagging={"TagSet": [{"Key": "t", "Value": tags["t"]}]})
        elif op == "meta":
            assert cur is not None
            meta = {"m": str(rnd.randrange(1000))}
            w.pending = {key: (cur[0], meta, cur[2])}
            s3.copy_object(Bucket="crash", Key=key, CopySource={"Bucket": "crash", "Key": key},
                           MetadataDirective="REPLACE", Metadata=meta, TaggingDirective="COPY")
        elif op == "version":
            vkey = f"w{w.n}/v{rnd.randrange(2)}"
            w.pending = {vkey: "new version"}
            vid = s3.put_object(Bucket="crashv", Key=vkey, Body=rnd.randbytes(rnd.randrange(0, 3000)))["VersionId"]
            w.versions.setdefault(vkey, []).append(vid)
            self.ack(w, {})
            return
        else:  # remove a version for good
            vkey = f"w{w.n}/v{rnd.randrange(2)}"
            ids = w.versions.get(vkey, [])
            if not ids:
                return
            vid = rnd.choice(ids)
            w.pending = {vkey: ("gone", vid)}
            s3.delete_object(Bucket="crashv", Key=vkey, VersionId=vid)
            ids.remove(vid)
            self.ack(w, {})
            return
        self.ack(w, dict(w.pending))

    def mount_step(self, w: Worker, rnd: random.Random) -> None:
        """Files in crash/m/ through the mount: an acknowledged write is a close() that returned."""
        d = Path(self.d.mount) / "crash" / "m"
        i, j = rnd.randrange(5), rnd.randrange(5)
        src, dst = f"m/f{i}", f"m/f{j}"
        op = rnd.choice(["write", "write", "rename", "unlink"])
        if op == "write" or w.model.get(src) is None:
            body = rnd.randbytes(rnd.choice([0, 10, 4096, 100_000]))
            w.pending = {src: (_sha(body), {}, {})}
            w.also = {src: (_sha(b""), {}, {})}  # open(O_TRUNC) returned, the kill came before close()
            with open(d / f"f{i}", "wb") as f:
                f.write(body)
        elif op == "rename" and i != j:
            w.pending = {src: None, dst: w.model[src]}
            os.rename(d / f"f{i}", d / f"f{j}")
        elif op == "unlink":
            w.pending = {src: None}
            os.unlink(d / f"f{i}")
        else:
            return
        self.ack(w, dict(w.pending))


def _read(s3: Any, key: str, content_only: bool) -> State:
    try:
        got = s3.get_object(Bucket="crash", Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey", exc
        return None
    sha = _sha(got["Body"].read())
    if content_only:  # written through the mount: the POSIX attributes are not the point here
        return sha, {}, {}
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket="crash", Key=key)["TagSet"]}
    return sha, got["Metadata"], tags


@pytest.mark.parametrize("seed", [1, 2])
def test_recovery_after_a_kill_at_an_arbitrary_moment(daemon_factory: Any, seed: int) -> None:
    mount = fuse_available()
    d = daemon_factory([] if mount else ["--no-mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket="crash")
    s3.create_bucket(Bucket="crashv")
    s3.put_bucket_versioning(Bucket="crashv", VersioningConfiguration={"Status": "Enabled"})
    run = Run(d, seed)
    workers = [Worker(n) for n in range(S3_WORKERS + (1 if mount else 0))]
    steps = [run.s3_step] * S3_WORKERS + ([run.mount_step] if mount else [])
    if mount:
        (Path(d.mount) / "crash" / "m").mkdir()
    threads = [threading.Thread(target=run.loop, args=(w, step)) for w, step in zip(workers, steps, strict=True)]
    for t in threads:
        t.start()
    target = random.Random(seed).randrange(40, 160)
    with run.progress:
        assert run.progress.wait_for(lambda: sum(w.acked for w in workers) >= target
                                     or any(w.error for w in workers), timeout=300), "the workload stalled"
    run.stop.set()
    d.kill()
    for t in threads:
        t.join()
    assert not [w.error for w in workers if w.error]

    shutil.rmtree(d.data_dir / "meta")
    report = json.loads(d.cli("recover-metadata", "--json").stdout)
    assert report["journal"]["complete"] and report["not_restored"] == [], report
    d.start()
    s3 = d.s3()
    for w in workers:
        for key in w.model.keys() | {k for k in w.pending if k.startswith(("m/", f"w{w.n}/k"))}:
            allowed = [w.model.get(key)] + [m[key] for m in (w.pending, w.also) if key in m] + w.history.get(key, [])
            assert _read(s3, key, key.startswith("m/")) in allowed, key
        for vkey, ids in w.versions.items():
            listed = [v["VersionId"] for v in s3.list_object_versions(Bucket="crashv", Prefix=vkey).get("Versions", [])
                      if v["Key"] == vkey][::-1]  # oldest first
            inflight = w.pending.get(vkey)
            if inflight == "new version":  # committed or not
                assert listed[:len(ids)] == ids and len(listed) - len(ids) in (0, 1), vkey
            elif inflight is not None:  # a version removal: done or not
                assert listed in (ids, [v for v in ids if v != inflight[1]]), vkey
            else:
                assert listed == ids, vkey

"""A test appliance on fault disks: its six data disks and its metadata directory are each a
fault-injecting FUSE mount (tests/faultfs), and a workload that drives it over S3 and the
mount from threads, recording what was acknowledged."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import DaemonProc
from tests.faultfs import FaultDisk

DATA_DISKS = 6  # the embedded appliance's: k=4, m=2
BUCKET = "faults"


@dataclass
class FaultAppliance:
    daemon: DaemonProc
    data: list[FaultDisk]
    meta: FaultDisk

    @property
    def disks(self) -> list[FaultDisk]:
        return [*self.data, self.meta]

    def power_cut(self) -> None:
        """All disks lose power at one moment, the daemon dies with them, the disks come back
        holding what was durable; then the daemon starts again."""
        for disk in self.disks:
            disk.control.power_off()
        if self.daemon.proc is not None:
            self.daemon.proc.kill()
        with ThreadPoolExecutor(len(self.disks)) as pool:  # fails what the killed daemon still waits for
            list(pool.map(lambda disk: disk.control.power_cut(), self.disks))
        if self.daemon.proc is not None:
            self.daemon.proc.wait(60)
        if self.daemon.info.get("mount"):
            subprocess.run(["umount", "-l", self.daemon.info["mount"]], capture_output=True)
        self.daemon.info = {}
        self.daemon.start()

    def ctl_status(self) -> dict[str, Any]:
        import json
        return dict(json.loads(self.daemon.cli("status", "--json").stdout))

    def disk_states(self) -> dict[str, str]:
        """Fault disk mount point -> the state `stowage disks` gives it."""
        return {d["path"]: d["state"] for d in self.ctl_status()["disks"]}


@contextlib.contextmanager
def fault_appliance(tmp: Path, *, mount: bool = False, config: str = "",
                    env: dict[str, str] | None = None) -> Iterator[FaultAppliance]:
    data_dir = tmp / "data"
    disks: list[FaultDisk] = []
    daemon = DaemonProc(data_dir, [] if mount else ["--no-mount"], dict(env or {}))
    try:
        for i in range(DATA_DISKS):
            # one by one: those spawned are stopped if a later one fails
            disks.append(FaultDisk.spawn(tmp / "fault" / f"disk{i}", data_dir / "disks" / f"disk{i}"))  # noqa: PERF401
        meta = FaultDisk.spawn(tmp / "fault" / "meta", data_dir / "meta")
        disks.append(meta)
        for disk in disks:  # the seven processes start side by side
            disk.wait_ready()
        # LevelDB needs a journaling filesystem's ordered metadata: under the strict POSIX model
        # a power cut corrupts it ("no meta-nextfile entry in descriptor"; it never syncs the
        # directory after a rename of CURRENT or a new log). The data disks stay strict POSIX.
        meta.control.ordered_names()
        # the mount points' own directory entries must be there after a power cut (an installer's job)
        for parent in (data_dir / "disks", data_dir):
            fd = os.open(parent, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        cfg = tmp / "stowage.toml"
        cfg.write_text(config)
        daemon.extra_args += ["--config", str(cfg)]
        daemon.start()
        yield FaultAppliance(daemon, disks[:DATA_DISKS], meta)
    finally:
        try:
            daemon.stop(timeout=30)
        except Exception:
            daemon.kill()
        for d in disks:
            d.stop()


@dataclass
class Workload:
    """Writers over S3 (PUT, multipart, overwrite, delete) and, when the mount is on, in it
    (write, fsync, rename); each records what was acknowledged. A failed write is expected
    under faults: it is only never counted as acknowledged."""

    s3_factory: Callable[[], Any]
    mount: Path | None = None
    seed: int = 0
    acked: dict[str, bytes] = field(default_factory=dict)  # bucket-relative key -> body
    maybe: dict[str, list[bytes]] = field(default_factory=dict)  # unacknowledged writes per key
    deleted: set[str] = field(default_factory=set)
    ops: int = 0
    failures: int = 0
    reads: int = 0
    why_failed: Counter[str] = field(default_factory=Counter)  # error code or errno -> failures
    wrong_reads: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def _record(self, key: str, body: bytes | None, ok: bool, why: str = "") -> None:
        with self.lock:
            self.ops += 1
            if not ok:
                self.failures += 1
                self.why_failed[why] += 1
                if body is not None:
                    self.maybe.setdefault(key, []).append(body)
                return
            if body is None:
                self.acked.pop(key, None)
                self.deleted.add(key)
            else:
                self.acked[key] = body
                self.deleted.discard(key)

    def _s3_writer(self, w: int) -> None:
        rnd = random.Random(self.seed * 100 + w)
        s3 = self.s3_factory()
        i = 0
        while not self.stop.is_set():
            i += 1
            op = rnd.random()
            key = f"s3/{self.seed}/{w}/{rnd.randrange(12)}"
            try:
                if op < 0.6:
                    body = rnd.randbytes(rnd.choice([0, 1, 5000, 200_000, 1_100_000]))
                    self._pending(key, body)
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                    self._record(key, body, True)
                elif op < 0.7:
                    body = rnd.randbytes(5 << 20) + rnd.randbytes(3000)
                    self._pending(key, body)
                    up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                    parts = []
                    for n, piece in ((1, body[: 5 << 20]), (2, body[5 << 20:])):
                        etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=n, Body=piece)["ETag"]
                        parts.append({"PartNumber": n, "ETag": etag})
                    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up,
                                                 MultipartUpload={"Parts": parts})
                    self._record(key, body, True)
                elif op < 0.8:
                    # copy from this writer's own keys: another writer could overwrite its key
                    # while the copy runs, and the copy would then hold a body never put here
                    mine = f"s3/{self.seed}/{w}/"
                    with self.lock:  # not onto itself: S3 refuses that copy (InvalidRequest)
                        src = rnd.choice([k for k in self.acked if k.startswith(mine) and k != key] or [key])
                        body_src = self.acked.get(src) if src != key else None
                    if body_src is None:
                        continue
                    self._pending(key, body_src)
                    s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": src})
                    self._record(key, body_src, True)
                elif op < 0.9:
                    self._pending(key, None)
                    s3.delete_object(Bucket=BUCKET, Key=key)
                    self._record(key, None, True)
                else:
                    with self.lock:
                        want = self.acked.get(key)
                    if want is not None:
                        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                        with self.lock:
                            self.reads += 1
                            if got != want and got not in self.maybe.get(key, []):
                                self.wrong_reads.append(key)
            except ClientError as exc:
                self._record(key, None, False, str(exc.response["Error"]["Code"]))
            except BotoCoreError as exc:
                self._record(key, None, False, type(exc).__name__)

    def _pending(self, key: str, body: bytes | None) -> None:
        """A write in flight: until it is acknowledged, the key may hold either value."""
        with self.lock:
            self.maybe.setdefault(key, []).append(body if body is not None else b"<deleted>")

    def _mount_writer(self) -> None:
        assert self.mount is not None
        rnd = random.Random(self.seed * 100 + 99)
        root = self.mount / BUCKET
        i = 0
        while not self.stop.is_set():
            i += 1
            key = f"fs/{self.seed}/{rnd.randrange(10)}"
            tmp = f"fs/{self.seed}/tmp-{i}"
            body = rnd.randbytes(rnd.choice([10, 70_000, 600_000]))
            self._pending(key, body)
            self._pending(tmp, b"")  # created (acknowledged), its data not yet synced
            self._pending(tmp, body)
            try:
                (root / "fs" / str(self.seed)).mkdir(parents=True, exist_ok=True)
                with open(root / tmp, "wb") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(root / tmp, root / key)
                dirfd = os.open(root / "fs" / str(self.seed), os.O_RDONLY)
                try:  # the rename is acknowledged by the directory's fsync (fusefs/SEMANTICS.md)
                    os.fsync(dirfd)
                finally:
                    os.close(dirfd)
                self._record(key, body, True)
            except OSError as exc:
                self._record(key, None, False, f"mount {errno.errorcode.get(exc.errno or 0, exc.errno)}")

    def start(self, s3_writers: int = 2) -> Workload:
        self.threads = [threading.Thread(target=self._s3_writer, args=(w,), daemon=True) for w in range(s3_writers)]
        if self.mount is not None:
            self.threads.append(threading.Thread(target=self._mount_writer, daemon=True))
        for t in self.threads:
            t.start()
        return self

    def finish(self, timeout: float = 120) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "a workload thread hangs"

    def problems(self, s3: Any) -> list[str]:
        """What `check` finds wrong: acknowledged writes lost or altered, half-visible objects."""
        out = [f"{key}: a read during the run returned wrong bytes" for key in self.wrong_reads]
        for key, body in self.acked.items():
            try:
                got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except ClientError as exc:
                if key in self.maybe and b"<deleted>" in self.maybe[key]:
                    continue  # an unacknowledged delete may have landed
                out.append(f"{key}: acknowledged, now {exc.response['Error']['Code']}")
                continue
            if got != body and got not in self.maybe.get(key, []):
                out.append(f"{key}: {len(got)} bytes read back, {len(body)} acknowledged (content differs)")
        pages = [page for prefix in (f"s3/{self.seed}/", f"fs/{self.seed}/")
                 for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)]
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue  # a directory the mount made
                got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                if len(got) != obj["Size"] or (got != self.acked.get(key) and got not in self.maybe.get(key, [])):
                    out.append(f"{key}: {len(got)} bytes, none of the bodies written to it")
        return out

    def check(self, s3: Any) -> None:
        """Every acknowledged write reads back byte-exact; every other key in the bucket holds
        exactly one body written to it (or is absent): nothing half-written is visible."""
        problems = self.problems(s3)
        assert not problems, "\n".join(problems)

"""Power cuts at named moments: the machinery the power-cut case (test_power_cuts.py) and the
long run (`python -m bench.soak --power-cuts 20`) share.

A moment is a crash point (diskmgr/crashpoints.py) armed at run time for its n-th passage (n
drawn from the seed): the daemon kills itself there, and the disks then drop every write that
was not made durable, as a power cut at that instant leaves them. After each restart every write
acknowledged in that round reads back byte-exact (S3 writes by their response, mount writes by
fsync of the file and of its directory) and nothing unacknowledged is half-visible; `check_all`
does the same for every round at the end.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from appliance.engine.shardfile import read_header
from appliance.engine.volumes import scan
from diskmgr.crashpoints import ENV
from tests.faultfs import FaultDisk
from tests.polling import wait_for

from .appliance import BUCKET, FaultAppliance, Workload, fault_appliance
from .checks import read_back

COLD = "cold"  # the bucket whose lifecycle rule transitions every object
SRC, DST = "repl-src", "repl-dst"  # replicated to the same daemon, through its own S3 endpoint
REPLICA_DEADLINE = 60.0
CONFIG = ("[gc]\ngrace_seconds = 0\ninterval_seconds = 0.2\n[snapshot]\ninterval_seconds = 1\n"
          "[lifecycle]\ndebug_day_seconds = 0.2\n")


class Run:
    """The appliance, the arming file of its crash points, and everything acknowledged so far."""

    def __init__(self, a: FaultAppliance, arm: Path, rnd: random.Random) -> None:
        self.a, self.arm, self.rnd = a, arm, rnd
        self.workloads: list[Workload] = []
        self.acked: dict[tuple[str, str], bytes] = {}  # explicit writes of the moments' drivers
        self.n = 0

    def s3(self) -> Any:
        return self.a.daemon.s3()

    def put(self, bucket: str, key: str, size: int) -> None:
        body = self.rnd.randbytes(size)
        self.s3().put_object(Bucket=bucket, Key=key, Body=body)
        self.acked[(bucket, key)] = body

    def check_all(self) -> None:
        self.check(self.workloads)

    def check(self, workloads: list[Workload]) -> None:
        s3 = self.s3()
        for w in workloads:
            w.check(s3)
        for bucket in (BUCKET, COLD, SRC):
            read_back(s3, bucket, {k: v for (b, k), v in self.acked.items() if b == bucket})
        self.check_replicas()

    def check_replicas(self) -> None:
        """Every acknowledged write to SRC reaches DST byte-exact and is COMPLETED at the source,
        whatever cut fell between the target's answer and the source's commit (sent twice is fine)."""
        s3 = self.s3()
        for key, body in ((k, v) for (b, k), v in self.acked.items() if b == SRC):
            def replicated(key: str = key, body: bytes = body) -> bool:
                if s3.head_object(Bucket=SRC, Key=key).get("ReplicationStatus") != "COMPLETED":
                    return False
                return bool(s3.get_object(Bucket=DST, Key=key)["Body"].read() == body)
            wait_for(replicated, timeout=REPLICA_DEADLINE, what=f"the replica of {SRC}/{key}")

    def cut_at(self, point: str | None, drive: Callable[[Run], None]) -> None:
        """Arm `point`, run the workload and `drive` until the daemon dies there (or, with no
        point, until a random count of operations), cut the power, restart, check."""
        self.n += 1
        t0 = time.monotonic()
        if point is not None:
            self.arm.write_text(f"{point}@{self.rnd.randint(1, 2) if drive is nothing else 1}")
        mount = self.a.daemon.info.get("mount")
        w = Workload(self.a.daemon.s3, Path(mount) if mount else None, seed=self.n).start(s3_writers=1)
        self.workloads.append(w)
        proc = self.a.daemon.proc
        assert proc is not None
        try:
            if point is None:
                target = self.rnd.randrange(3, 30)
                wait_for(lambda: w.ops >= target, timeout=60, what="workload progress")
            else:
                try:
                    drive(self)
                except Exception:
                    if proc.poll() is None:
                        raise  # else the point was reached during the drive (by the service)
                wait_for(lambda: proc.poll() is not None, timeout=60, what=f"the daemon to reach {point}")
                assert f"crash point {point}" in self.a.daemon.log_tail(300)
        finally:
            w.stop.set()
            self.arm.unlink(missing_ok=True)
            t1 = time.monotonic()
            self.a.power_cut()
            w.finish()
        t2 = time.monotonic()
        self.check([w])  # the earlier workloads' writes: checked at the end
        print(f"cut {self.n}: {point or 'a random moment'}: {w.ops} operations, {len(w.acked)} acknowledged "
              f"(run {t1 - t0:.1f} s, cut and restart {t2 - t1:.1f} s, check {time.monotonic() - t2:.1f} s)")


def nothing(r: Run) -> None:
    """The workload alone reaches the point (PUTs, GC, snapshots, renames)."""


def multipart(r: Run) -> None:
    s3 = r.s3()
    body = r.rnd.randbytes(5 << 20) + r.rnd.randbytes(1000)
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp")["UploadId"]
    parts = []
    for n, piece in ((1, body[: 5 << 20]), (2, body[5 << 20:])):
        parts.append({"PartNumber": n, "ETag": s3.upload_part(Bucket=BUCKET, Key="mp", UploadId=up,
                                                              PartNumber=n, Body=piece)["ETag"]})
    try:
        s3.complete_multipart_upload(Bucket=BUCKET, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    except Exception:
        return  # cut before the answer: either body may be there
    r.acked[(BUCKET, "mp")] = body


def heal(r: Run) -> None:
    """A shard of a fresh object is lost; the degraded read reports it, `stowage heal` rebuilds it
    (a small object's shard is a packed record: rebuilt as a file, the record marked dead)."""
    key = f"heal/{r.n}"
    since = time.time() - 1
    r.put(BUCKET, key, 300_000 if r.rnd.random() < 0.5 else 1_500_000)  # k=4, m=2 on six disks: a shard on each
    lose_first_shard(r.a.data, key, since)  # a data shard: the read notices it
    assert r.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read() == r.acked[(BUCKET, key)]
    r.a.daemon.cli("heal", check=False)


def lose_first_shard(disks: list[FaultDisk], key: str, since: float) -> None:
    """Make `key`'s shard 0, written after `since`, unreadable (other files come and go
    meanwhile: GC runs): its shard file unlinked, or a byte of its packed record's chunk flipped.
    Found in the disks' backing trees (fast, no FUSE round trips); changed through the mount."""
    for disk in disks:
        for sub in sorted((disk.tree / "shards").iterdir()):
            for f in sub.glob("*.0"):
                with contextlib.suppress(FileNotFoundError):
                    if f.stat().st_mtime >= since and read_header(str(f)).identity.get("key") == key:
                        (disk.mountpoint / f.relative_to(disk.tree)).unlink()
                        return
        for v in sorted((disk.tree / "volumes").glob("*.vol")):
            for rec in scan(str(v), int(v.stem)):
                if rec.live and rec.header.shard == 0 and rec.header.identity.get("key") == key:
                    with open(disk.mountpoint / v.relative_to(disk.tree), "r+b") as fh:
                        fh.seek(rec.data_start)
                        b = fh.read(1)
                        fh.seek(rec.data_start)
                        fh.write(bytes([b[0] ^ 0xFF]))
                    return
    raise AssertionError(f"no shard 0 of {key}")


def transition(r: Run) -> None:
    for i in range(3):
        r.put(COLD, f"t/{r.n}/{i}", 200_000)  # transitions skip objects under 128 KiB


def replicate(r: Run) -> None:
    for i in range(3):
        r.put(SRC, f"r/{r.n}/{i}", 50_000)


MOMENTS: dict[str, Callable[[Run], None]] = {
    "write.data_stored": nothing,
    "write.committed": nothing,
    "multipart.completed": multipart,
    "rename.committed": nothing,
    "gc.record_dropped": nothing,
    "heal.committed": heal,
    "transition.committed": transition,
    "snapshot.committed": nothing,
    "replication.sent": replicate,
}




def plan(rnd: random.Random, cuts: int) -> list[str | None]:
    """`cuts` moments, shuffled: every named one once (while they last), then by turns a random
    moment of the workload (None) and a named one drawn again."""
    named: list[str | None] = list(MOMENTS)
    if cuts < len(named):
        return rnd.sample(named, cuts)
    out = named + [None if j % 2 == 0 else rnd.choice(list(MOMENTS)) for j in range(cuts - len(named))]
    rnd.shuffle(out)
    return out


def replicate_to_self(a: FaultAppliance) -> None:
    """SRC replicates to DST on the same daemon: a target of kind stowage at its own endpoint with
    its root keys. The daemon restarts on the same port after each cut, where the target points."""
    d = a.daemon
    d.extra_args += ["--listen", d.endpoint.removeprefix("http://")]
    s3 = d.s3()
    for bucket in (SRC, DST):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    d.cli("replication", "target", "add", "self", "--endpoint", d.endpoint, "--access-key", d.access_key,
          "--secret-key", d.secret_key, "--kind", "stowage")
    rule = {"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "Destination": {"Bucket": f"arn:stowage:s3::self:{DST}"}}
    s3.put_bucket_replication(Bucket=SRC, ReplicationConfiguration={"Role": "", "Rules": [rule]})


@contextlib.contextmanager
def power_cut_run(tmp: Path, seed: int) -> Iterator[Run]:
    arm = tmp / "crash-arm"
    with fault_appliance(tmp, mount=True, config=CONFIG, env={ENV: f"file:{arm}"}) as a:
        s3 = a.daemon.s3()
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=COLD)
        rule = {"ID": "cold", "Status": "Enabled", "Filter": {},
                "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}
        s3.put_bucket_lifecycle_configuration(Bucket=COLD, LifecycleConfiguration={"Rules": [rule]})
        replicate_to_self(a)
        yield Run(a, arm, random.Random(seed))

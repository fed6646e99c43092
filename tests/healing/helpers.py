"""Shared helpers of the healing tests: populate a real daemon over S3, damage its disks, check."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.control import call
from appliance.engine.shardfile import HEADER_SIZE, ShardHeader, read_header
from appliance.engine.volumes import PackedRecord, mark_dead, scan
from tests import polling

BUCKET = "heal"


def vanish(disk: Path, graveyard: Path) -> None:
    """A disk's directory gone at once, as a pulled disk is: renamed out of the data dir in one
    step, then deleted. rmtree in place raced the running daemon, which may create a file in it
    meanwhile (ENOTEMPTY); what it writes through descriptors still open lands in the moved tree."""
    graveyard.mkdir(parents=True, exist_ok=True)
    gone = graveyard / disk.name
    os.rename(disk, gone)
    shutil.rmtree(gone, ignore_errors=True)


def ctl(d: Any, op: str, args: dict[str, Any] | None = None, progress: list[dict[str, Any]] | None = None) -> Any:
    """Call a control op of a running DaemonProc (collecting progress lines)."""
    return call(Path(d.info["control_socket"]), op, args or {},
                on_progress=progress.append if progress is not None else None, timeout=300)


def populate(d: Any, n: int = 20, seed: int = 1, max_size: int = 3 << 20, prefix: str = "obj/") -> dict[str, bytes]:
    rnd = random.Random(seed)
    s3 = d.s3()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    objs: dict[str, bytes] = {}
    sizes = [1, 4096, 1 << 20, (1 << 20) + 7] + [rnd.randrange(1, max_size) for _ in range(n - 4)]
    for i, size in enumerate(sizes[:n]):
        body = rnd.randbytes(size)
        key = f"{prefix}{i:03d}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        objs[key] = body
    return objs


def check_all(d: Any, objs: dict[str, bytes]) -> None:
    s3 = d.s3()
    for key, body in objs.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert got == body, f"{key}: {len(got)} bytes read, {len(body)} expected (content differs)"


def shard_files(data_dir: Path) -> dict[str, list[Path]]:
    """segment id -> its shard files, over every disk directory."""
    out: dict[str, list[Path]] = {}
    for p in sorted(data_dir.glob("disks/*/shards/*/*")):
        seg, _, idx = p.name.rpartition(".")
        if idx.isdigit():
            out.setdefault(seg, []).append(p)
    return out


def packed_shards(data_dir: Path) -> dict[str, list[tuple[Path, PackedRecord]]]:
    """segment id -> its live packed records (engine/volumes.py), over every disk directory."""
    out: dict[str, list[tuple[Path, PackedRecord]]] = {}
    for p in sorted(data_dir.glob("disks/*/volumes/*.vol")):
        for r in scan(str(p), int(p.stem)):
            if r.live:
                out.setdefault(r.header.segment_id, []).append((p, r))
    return out


@dataclass(frozen=True)
class Shard:
    """One shard of a segment on a disk directory: a shard file, or a live packed record in a
    volume file (small objects, engine/volumes.py)."""

    path: Path
    header: ShardHeader
    record: PackedRecord | None = None

    @property
    def disk(self) -> str:
        return self.path.parts[-4 if self.record is None else -3]

    def destroy(self, rnd: random.Random, unlink: bool = True) -> None:
        """Make the shard unreadable: a file unlinked (or one chunk byte flipped), a record's
        chunk byte flipped (records share their volume file: it is never removed here)."""
        if self.record is None:
            if unlink:
                self.path.unlink()
            else:
                corrupt_chunk(self.path, rnd)
            return
        r = self.record
        _flip(self.path, rnd.randrange(r.data_start, r.offset + r.size))


    def remove(self) -> None:
        """Take the shard away: a file unlinked, a record marked dead (as a deleted object's:
        recover-metadata no longer finds it)."""
        if self.record is None:
            self.path.unlink()
        else:
            mark_dead(str(self.path), self.record.offset)


def shards_on(disk_path: str | Path) -> int:
    """How many shards a disk directory holds: shard files and live packed records."""
    root = Path(disk_path)
    files = sum(1 for _ in root.glob("shards/*/*"))
    return files + sum(r.live for p in root.glob("volumes/*.vol") for r in scan(str(p), int(p.stem)))


def all_shards(data_dir: Path) -> dict[str, list[Shard]]:
    """segment id -> its shards (shard files and live packed records) on every disk directory."""
    out: dict[str, list[Shard]] = {}
    for seg, files in shard_files(data_dir).items():
        shards = []
        for p in files:
            try:
                shards.append(Shard(p, read_header(str(p))))
            except FileNotFoundError:  # collected since it was listed: a running daemon's GC
                continue
        if shards:
            out[seg] = shards
    for seg, records in packed_shards(data_dir).items():
        out.setdefault(seg, []).extend(Shard(p, r.header, r) for p, r in records)
    return out


def data_segments(data_dir: Path) -> dict[str, list[Shard]]:
    """all_shards without metadata-snapshot segments."""
    return {seg: shards for seg, shards in all_shards(data_dir).items()
            if not shards[0].header.identity.get("meta_snapshot")}


def _flip(path: Path, off: int) -> None:
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def corrupt_chunk(path: Path, rnd: random.Random) -> None:
    """Flip a byte inside the chunk area (past the header) of a shard file."""
    _flip(path, rnd.randrange(HEADER_SIZE, path.stat().st_size))


def full_redundancy(data_dir: Path, moved_records: bool = False) -> bool:
    """Every data segment has all k+m shards (geometry from its header; small objects may use
    another one than 4+2), each on a distinct disk. `moved_records`: a live packed record of a
    shard that is also a file elsewhere is not counted (a kill -9 between a move's commit and
    marking its old record dead leaves it live; nothing places it, compaction reclaims it)."""
    for shards in data_segments(data_dir).values():
        if moved_records:
            files = {s.header.shard for s in shards if s.record is None}
            shards = [s for s in shards if s.record is None or s.header.shard not in files]
        n = shards[0].header.k + shards[0].header.m
        if {s.header.shard for s in shards} != set(range(n)) or len({s.disk for s in shards}) != n \
                or len(shards) != n:
            return False
    return True


def wait_for(pred: Any, timeout: float = 120.0, what: str = "condition") -> None:
    polling.wait_for(pred, timeout, what, interval=0.2)

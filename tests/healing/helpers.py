"""Shared helpers of the healing tests: populate a real daemon over S3, damage its disks, check."""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

from appliance.control import call
from appliance.engine.shardfile import HEADER_SIZE, read_header
from appliance.engine.volumes import PackedRecord, scan
from tests import polling

BUCKET = "heal"


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


def data_segments(data_dir: Path) -> dict[str, list[Path]]:
    """segment id -> the files holding its shards (shard files, or the volumes its packed
    records lie in), without metadata-snapshot segments."""
    out = {seg: files for seg, files in shard_files(data_dir).items()
           if not read_header(str(files[0])).identity.get("meta_snapshot")}
    for seg, records in packed_shards(data_dir).items():
        if not records[0][1].header.identity.get("meta_snapshot"):
            out.setdefault(seg, []).extend(p for p, _ in records)
    return out


def corrupt_chunk(path: Path, rnd: random.Random) -> None:
    """Flip a byte inside the chunk area (past the header) of a shard file."""
    size = path.stat().st_size
    off = rnd.randrange(HEADER_SIZE, size)
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def full_redundancy(data_dir: Path) -> bool:
    """Every data segment has all k+m shard files (geometry from its header; small objects
    may use another one than 4+2), each on a distinct disk."""
    for files in data_segments(data_dir).values():
        hdr = read_header(str(files[0]))
        n = hdr.k + hdr.m
        idx = {int(p.name.rpartition(".")[2]) for p in files}
        disks = {p.parts[-4] for p in files}
        if idx != set(range(n)) or len(disks) != n or len(files) != n:
            return False
    return True


def wait_for(pred: Any, timeout: float = 120.0, what: str = "condition") -> None:
    polling.wait_for(pred, timeout, what, interval=0.2)

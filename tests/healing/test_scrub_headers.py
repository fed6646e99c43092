"""Shard headers are what `recover-metadata` places shards by, though no read needs them past
their owner prefix: a scrub finds a header that no longer decodes, or whose checksum fails (a
shard file's, a packed record's), as damage and heal rewrites it, so a later metadata loss still
finds every shard; recovery restores nothing from such a header."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from appliance.config import embedded_config
from appliance.engine.recover import find_disks
from appliance.engine.shardfile import HEADER_SIZE, read_header
from appliance.engine.volumes import scan

from .helpers import BUCKET, check_all, ctl, data_segments


def _zero(path: Path, offset: int, n: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes(n))


def _owner_end(path: Path) -> int:
    """Where a shard file's owner prefix ({"segment_id":...,"shard":N,) ends: reads check it."""
    with open(path, "rb") as f:
        raw = f.read(HEADER_SIZE)
    return raw.index(b'"shard":') + 16


def _flip_key(path: Path) -> None:
    """One bit of the first letter of the object key in a shard file's header: the JSON still
    decodes, and names another key."""
    with open(path, "r+b") as f:
        at = f.read(HEADER_SIZE).index(b'"key":"') + 7
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x01]))


def _recover(daemon: Any) -> dict[str, Any]:
    daemon.stop()
    shutil.rmtree(daemon.data_dir / "meta")
    report: dict[str, Any] = json.loads(daemon.cli("recover-metadata", "--json").stdout)
    daemon.start()
    return report


def _stored(daemon: Any, objs: dict[str, bytes]) -> dict[str, bytes]:
    """The objects PUT into a new bucket, then the daemon stopped (its files can be damaged)."""
    s3 = daemon.s3()
    s3.create_bucket(Bucket=BUCKET)
    for key, body in objs.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    daemon.stop()
    return objs


def test_scrub_rewrites_shard_headers_that_do_not_decode(daemon: Any) -> None:
    objs = _stored(daemon, {"big": os.urandom(3 << 20), "small": os.urandom(4096)})
    segs = data_segments(daemon.data_dir)
    (big,) = [s for s in segs.values() if s[0].record is None]
    (small,) = [s for s in segs.values() if s[0].record is not None]
    k, m = big[0].header.k, big[0].header.m
    damaged = big[: m + 1]  # more than m: recovery would have lost the object
    inodes = {}
    for shard in damaged:
        _zero(shard.path, _owner_end(shard.path) + 10, 40)  # inside the JSON, past the owner prefix
        inodes[shard.path] = shard.path.stat().st_ino
    rec = small[0].record
    assert rec is not None
    with open(small[0].path, "r+b") as f:  # one byte of a packed record's JSON (its CRC fails)
        at = rec.data_start - 5
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xFF]))
    daemon.start()
    check_all(daemon, objs)  # reads never looked past the owner prefix

    first = ctl(daemon, "scrub.start", {"wait": True})
    assert first["found"] == 2 and first["repaired"] == 2, first
    for shard in damaged:  # replaced by a file whose header decodes and names its shard
        assert shard.path.stat().st_ino != inodes[shard.path]
        hdr = read_header(str(shard.path))
        assert (hdr.segment_id, hdr.shard, hdr.k, hdr.m) == (shard.header.segment_id, shard.header.shard, k, m)
        assert hdr.identity == shard.header.identity
    # the packed shard is rebuilt as a file, its record marked dead
    seg, i = small[0].header.segment_id, small[0].header.shard
    (rebuilt,) = daemon.data_dir.glob(f"disks/*/shards/*/{seg}.{i}")
    assert read_header(str(rebuilt)).identity == small[1].header.identity
    second = ctl(daemon, "scrub.start", {"wait": True})
    assert second["found"] == 0, second

    report = _recover(daemon)
    assert report["not_restored"] == [], report["not_restored"]
    check_all(daemon, objs)


def test_scrub_rewrites_a_shard_header_whose_checksum_fails(daemon: Any) -> None:
    """A flipped bit in the key: the header decodes and describes its shard (segment, index,
    geometry, length), but names another object; its checksum finds it, and heal rewrites it."""
    objs = _stored(daemon, {"checked": os.urandom(3 << 20)})
    (big,) = data_segments(daemon.data_dir).values()
    shard = big[0]
    _flip_key(shard.path)
    inode = shard.path.stat().st_ino
    daemon.start()
    check_all(daemon, objs)  # reads never looked past the owner prefix

    first = ctl(daemon, "scrub.start", {"wait": True})
    assert first["found"] == 1 and first["repaired"] == 1, first
    assert shard.path.stat().st_ino != inode
    assert read_header(str(shard.path)).identity == shard.header.identity
    assert shard.header.identity["key"] == "checked"
    assert ctl(daemon, "scrub.start", {"wait": True})["found"] == 0


def test_recover_restores_nothing_from_a_header_whose_checksum_fails(daemon: Any) -> None:
    """Metadata and journal lost: the object comes back from its shard headers alone. The header
    recovery reads first (the first disk's) names another key by one flipped bit: the object
    is restored under its own key from the other headers (that shard is left out, as one whose
    header does not decode)."""
    objs = _stored(daemon, {"checked": os.urandom(3 << 20)})
    (big,) = data_segments(daemon.data_dir).values()
    first_disk = find_disks(embedded_config(daemon.data_dir))[1][0][0]
    (shard,) = [s for s in big if Path(first_disk.path).resolve() in s.path.resolve().parents]
    _flip_key(shard.path)
    for journal in daemon.data_dir.glob("disks/*/journal"):
        shutil.rmtree(journal)

    report = _recover(daemon)
    assert report["snapshot"] is None and report["versions_added"] == [f"{BUCKET}/checked"], report
    assert [o["Key"] for o in daemon.s3().list_objects_v2(Bucket=BUCKET)["Contents"]] == ["checked"]
    check_all(daemon, objs)


def test_scrub_finds_a_damaged_volume_head(daemon: Any) -> None:
    """Garbage in a volume's 64-byte head: reads never look at it, but recovery ignores the whole
    volume; the scrub finds each record there damaged and heal rebuilds them as shard files."""
    objs = _stored(daemon, {f"s{i}": os.urandom(4096) for i in range(8)})
    vol = sorted(daemon.data_dir.glob("disks/*/volumes/*.vol"))[0]
    held = {r.header.segment_id: r.header.shard for r in scan(str(vol), int(vol.stem)) if r.live}
    assert held
    with open(vol, "r+b") as f:
        f.write(os.urandom(64))
    daemon.start()
    check_all(daemon, objs)

    first = ctl(daemon, "scrub.start", {"wait": True})
    assert first["found"] == len(held) and first["repaired"] == len(held), first
    disk = vol.parent.parent
    for seg, i in held.items():  # each rebuilt as a file on that disk (a writable one)
        assert read_header(str(next(disk.glob(f"shards/*/{seg}.{i}")))).segment_id == seg
    assert ctl(daemon, "scrub.start", {"wait": True})["found"] == 0

    report = _recover(daemon)
    assert report["not_restored"] == [] and report["degraded_segments"] == 0, report
    check_all(daemon, objs)

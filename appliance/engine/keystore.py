"""The engine side of key management: the built-in KMS's key records, the envelopes of encrypted
segments, and the mark of the master key a metadata DB was used with.

Keys themselves are appliance/iam's business (kms.py, masterkey.py): this module stores records
and replaces envelopes, and never unwraps anything. Plain functions over MetaDB or the store, so
the daemon (through control ops) and the CLI (daemon stopped) run the same code. The functions
without `async` block (a DB write or scan): inside the loop they are short, except the scans.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from . import keys
from .disks import Disk
from .errors import FormatError
from .metadb import MetaDB
from .records import CredentialRecord, KmsKeyRecord, SegmentRecord
from .segments import gather
from .shardfile import read_header, rewrite_header
from .storecore import StoreCore
from .volumes import mark_dead, rewrapped_record, volume_path

log = logging.getLogger("stowage.keys")


# --- the built-in KMS's keys ------------------------------------------------------------------


def kms_key(db: MetaDB, key_id: str) -> KmsKeyRecord | None:
    return db.get_record(KmsKeyRecord, keys.kms_key(key_id))


def kms_keys(db: MetaDB) -> list[KmsKeyRecord]:
    return [rec for _, rec in db.scan_records(KmsKeyRecord, keys.KMS_KEY)]


def save_kms_keys(db: MetaDB, recs: list[KmsKeyRecord]) -> None:
    b = db.batch()
    for rec in recs:
        b.put(keys.kms_key(rec.key_id), rec)
    db.commit_now(b, sync=True)


# --- the master key's mark --------------------------------------------------------------------


def master_mark(db: MetaDB) -> str:
    """The id of the master key this DB was first used with ("" = none yet): a DB with a mark
    and no key file means the key was lost, not that it was never made."""
    return (db.get(keys.MASTER_MARK) or b"").decode()


def set_master_mark(db: MetaDB, key_id: str) -> None:
    b = db.batch()
    b.put(keys.MASTER_MARK, key_id.encode())
    db.commit_now(b, sync=True)


def holds_wrapped_secrets(db: MetaDB) -> bool:
    """Whether an identity record keeps a secret wrapped by a master key (a DB from before the
    mark existed)."""
    return any(rec.wrapped_secret for _, rec in db.scan_records(CredentialRecord, keys.CREDENTIAL))


# --- segment envelopes ------------------------------------------------------------------------

# envelope -> its replacement, or None when it needs none (already wrapped by the current key)
Rewrap = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def count_segments(db: MetaDB) -> int:
    """Segment records (a key-only scan; blocking)."""
    with db.db.iterator(prefix=keys.SEGMENT, include_value=False) as it:
        return sum(1 for _ in it)


def encrypted_segments_after(db: MetaDB, after: str, limit: int) -> tuple[list[SegmentRecord], str, int]:
    """Scan up to `limit` segment records following `after` ("" = from the first): (the encrypted
    ones, the last id scanned, records scanned). Fewer than `limit` scanned: the end was reached."""
    start = keys.segment(after) + b"\x00" if after else keys.SEGMENT
    found: list[SegmentRecord] = []
    last, scanned = after, 0
    with db.iterator(start=start, stop=keys.prefix_successor(keys.SEGMENT)) as it:
        for _, raw in it:
            rec = SegmentRecord.decode(raw)
            last, scanned = rec.segment_id, scanned + 1
            if rec.enc is not None:
                found.append(rec)
            if scanned >= limit:
                break
    return found, last, scanned


@dataclass(frozen=True)
class _Copy:
    """A packed shard re-appended with its new envelope, placed by the commit if still current."""

    disk: Disk
    old: list[int]  # [volume, record offset, data offset]
    new: list[int]


async def replace_envelopes(store: StoreCore, recs: list[SegmentRecord], rewrap: Rewrap) -> int:
    """Give segments new envelopes (`rotate-master`): every shard header first, then the
    records, so an interrupted run leaves records the next run still re-wraps. A shard file's
    header is rewritten in place; a packed shard is appended again with the new header and the
    record points at the copy (the old record is then marked dead, as compaction does). A record
    changed meanwhile (collected, re-wrapped by another run) is left as it is, and the copies
    made for it are dead. Returns the records changed. Object data is not touched."""
    changes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for rec in recs:
        new = rewrap(rec.enc) if rec.enc is not None else None
        if rec.enc is not None and new is not None:
            changes[rec.segment_id] = (rec.enc, new)
    if not changes:
        return 0
    copies: dict[str, dict[int, _Copy]] = {}  # segment id -> shard index -> its re-appended record

    async def header(rec: SegmentRecord, i: int, enc: dict[str, Any]) -> None:
        disk = store.disks.get(rec.shards[i])
        if disk is None or not disk.writable:
            return  # a lost shard: the healer rebuilds it with the record's envelope
        place = rec.pack_of(i)
        try:
            if place is not None:
                copies.setdefault(rec.segment_id, {})[i] = await _repack(store, disk, rec, i, place, enc)
                return
            path = disk.shard_path(rec.segment_id, i)

            def work() -> None:
                hdr = read_header(path)
                hdr.enc = enc
                rewrite_header(path, hdr)

            await trio.to_thread.run_sync(work, limiter=disk.limiter)
        except FileNotFoundError:
            pass  # collected or moved meanwhile
        except (OSError, FormatError) as exc:  # the other shards and the record carry it
            log.warning("segment %s shard %d: envelope not updated in its header: %s", rec.segment_id, i, exc)

    await gather(*[(lambda rec=rec, i=i: header(rec, i, changes[rec.segment_id][1]))
                   for rec in recs if rec.segment_id in changes for i in range(len(rec.shards))])
    changed = 0
    dead: list[tuple[Disk, list[int]]] = []
    async with store.lock:
        b = store.db.batch()
        for seg_id, (old, new) in changes.items():
            cur = store.db.get_record(SegmentRecord, keys.segment(seg_id))
            made = copies.get(seg_id, {})
            if cur is None or cur.enc != old:  # collected or re-wrapped meanwhile: every copy is surplus
                dead += [(c.disk, c.new) for c in made.values()]
                continue
            for i, c in made.items():
                if cur.shards[i] == c.disk.disk_id and cur.pack_of(i) == c.old:
                    cur.set_pack(i, c.new)
                    dead.append((c.disk, c.old))
                else:  # moved (compaction, healing) meanwhile: the copy is surplus
                    dead.append((c.disk, c.new))
            cur.enc = new
            b.put(keys.segment(seg_id), cur)
            changed += 1
        await store.db.commit(b, sync=True)
    store.seg.dead_marks += len(dead)
    for disk, place in dead:
        try:
            await trio.to_thread.run_sync(mark_dead, volume_path(disk.path, place[0]), place[1], limiter=disk.limiter)
        except OSError as exc:  # dead space the next recover-metadata may still see: the newest copy wins
            log.warning("disk %s: marking a replaced packed record dead failed: %s", disk.disk_id, exc)
    return changed


async def _repack(store: StoreCore, disk: Disk, rec: SegmentRecord, i: int, place: list[int],
                  enc: dict[str, Any]) -> _Copy:
    parts = await trio.to_thread.run_sync(rewrapped_record, volume_path(disk.path, place[0]), place[1],
                                          rec.segment_id, i, enc, limiter=disk.limiter)
    volume, offset = await store.seg.volume_writer(disk).append(parts)  # durable when it returns
    return _Copy(disk, list(place), [volume, offset, offset + len(parts[0]) + len(parts[1])])

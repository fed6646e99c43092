"""Facade semantics: buckets, versions, delete markers, copy, multipart, rename, concurrency,
the mount's patch commit."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

from appliance.engine import keys, patch
from appliance.engine.errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooSmall,
    InvalidBucketName,
    InvalidPart,
    InvalidPartOrder,
    KeyTooLong,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    PreconditionFailed,
)
from appliance.engine.objectstore import PutMeta
from appliance.engine.records import SegmentRecord, SegmentRef

from .conftest import read_all


async def test_buckets(store) -> None:
    with pytest.raises(BucketAlreadyOwnedByYou):
        await store.create_bucket("bkt")
    for bad in ["ab", "UPPER", "a..b", "192.168.1.1", "-abc", "abc-", "x" * 64, "xn--abc"]:
        with pytest.raises(InvalidBucketName):
            await store.create_bucket(bad)
    await store.create_bucket("other.bucket-1")
    assert [b.name for b in store.list_buckets()] == ["bkt", "other.bucket-1"]
    await store.put_object("other.bucket-1", "k", b"x")
    with pytest.raises(BucketNotEmpty):
        await store.delete_bucket("other.bucket-1")
    await store.delete_object("other.bucket-1", "k")
    await store.delete_bucket("other.bucket-1")
    with pytest.raises(NoSuchBucket):
        store.get_bucket("other.bucket-1")
    with pytest.raises(NoSuchBucket):
        await store.put_object("nope", "k", b"")


async def test_unfinished_uploads_go_with_their_bucket(store) -> None:
    """AWS and RGW delete a general purpose bucket holding only unfinished multipart uploads
    (`aws s3 rb --force` relies on it); their parts' segments go to the collector."""
    await store.create_bucket("mpb")
    up = await store.create_multipart("mpb", "big", PutMeta())
    part = await store.upload_part("mpb", "big", up.upload_id, 1, b"p" * 1000)
    await store.create_multipart("mpb", "empty", PutMeta())
    await store.delete_bucket("mpb")
    with pytest.raises(NoSuchBucket):
        store.get_bucket("mpb")
    assert not list(store.db.scan(keys.upload_bucket_prefix("mpb")))
    assert not list(store.db.scan(keys.part_prefix(up.upload_id)))
    seg = store.db.get_record(SegmentRecord, keys.segment(part.segments[0].segment_id))
    assert seg is not None and seg.refcount == 0
    await store.create_bucket("mpb")  # the name starts empty again
    assert not store.list_uploads("mpb").uploads
    with pytest.raises(NoSuchUpload):
        await store.upload_part("mpb", "big", up.upload_id, 2, b"late")


async def test_metadata_and_overwrite_frees_segments(store) -> None:
    meta = PutMeta("text/plain", {"cache-control": "no-cache", "x-bogus": "dropped"}, {"color": "blue"}, {"t": "1"})
    v1 = await store.put_object("bkt", "k", b"hello", meta)
    got = store.head_object("bkt", "k")
    assert (got.content_type, got.headers, got.user_meta, got.tags) == (
        "text/plain", {"cache-control": "no-cache"}, {"color": "blue"}, {"t": "1"})
    assert got.version_id == "null" and got.etag == hashlib.md5(b"hello").hexdigest()
    await store.put_object("bkt", "k", b"world")
    assert await read_all(store, "bkt", "k") == b"world"
    old = store.db.get_record(SegmentRecord, keys.segment(v1.segments[0].segment_id))
    assert old is not None and old.refcount == 0
    assert list(store.db.scan(keys.GC)), "replaced segment queued for GC"
    with pytest.raises(KeyTooLong):
        await store.put_object("bkt", "k" * 1025, b"")


async def test_versioning_and_delete_markers(store) -> None:
    await store.put_object("bkt", "k", b"null-version")
    await store.set_versioning("bkt", "Enabled")
    v1 = await store.put_object("bkt", "k", b"one")
    v2 = await store.put_object("bkt", "k", b"two")
    assert v1.version_id != v2.version_id != "null"
    assert await read_all(store, "bkt", "k") == b"two"
    assert await read_all(store, "bkt", "k", v1.version_id) == b"one"
    assert await read_all(store, "bkt", "k", "null") == b"null-version"
    d = await store.delete_object("bkt", "k")
    assert d.delete_marker
    with pytest.raises(NoSuchKey) as ei:
        store.head_object("bkt", "k")
    assert ei.value.context.get("delete_marker") is True
    assert store.list_objects("bkt").entries == []
    page = store.list_versions("bkt")
    assert [(v.version_id, latest) for v, latest in page.entries] == [
        (d.version_id, True), (v2.version_id, False), (v1.version_id, False), ("null", False)]
    # Deleting the marker brings v2 back.
    await store.delete_object("bkt", "k", d.version_id)
    assert await read_all(store, "bkt", "k") == b"two"
    await store.delete_object("bkt", "k", v2.version_id)
    assert await read_all(store, "bkt", "k") == b"one"
    with pytest.raises(NoSuchVersion):
        store.head_object("bkt", "k", "no-such-version")
    # Suspended: writes replace the null version.
    await store.set_versioning("bkt", "Suspended")
    await store.put_object("bkt", "k", b"s1")
    await store.put_object("bkt", "k", b"s2")
    ids = [v.version_id for v, _ in store.list_versions("bkt").entries]
    assert ids.count("null") == 1 and v1.version_id in ids
    assert await read_all(store, "bkt", "k", "null") == b"s2"


async def test_list_versions_paging(store) -> None:
    await store.set_versioning("bkt", "Enabled")
    expected = []
    for key in ["a", "b/1", "b/2", "c"]:
        for i in range(3):
            v = await store.put_object("bkt", key, f"{key}{i}".encode())
            expected.append((key, v.version_id))
    want = sorted(expected, key=lambda kv: (kv[0], -[x[1] for x in expected].index(kv[1])))
    got = []
    km = vm = ""
    while True:
        page = store.list_versions("bkt", key_marker=km, version_id_marker=vm, max_keys=2)
        got += [(v.key, v.version_id) for v, _ in page.entries]
        if not page.is_truncated:
            break
        km, vm = page.next_key_marker, page.next_version_id_marker
    assert got == want
    page = store.list_versions("bkt", delimiter="/")
    assert page.common_prefixes == ["b/"]


async def test_copy_shares_segments(store) -> None:
    body = os.urandom(300_000)
    src = await store.put_object("bkt", "src", body, PutMeta("a/b", user_meta={"x": "1"}))
    c = await store.copy_object(src, "bkt", "dst", None)
    assert c.segments == src.segments and c.user_meta == {"x": "1"} and c.etag == src.etag
    c2 = await store.copy_object(src, "bkt", "dst2", PutMeta("c/d"))
    assert c2.content_type == "c/d" and c2.user_meta == {}
    rec = store.get_segment(src.segments[0].segment_id)
    assert rec.refcount == 3
    await store.delete_object("bkt", "src")
    assert await read_all(store, "bkt", "dst") == body


async def test_multipart(store) -> None:
    up = await store.create_multipart("bkt", "mp", PutMeta("video/mp4"))
    p1 = os.urandom(5 << 20)
    p2 = os.urandom(5 << 20)
    p3 = os.urandom(1234)
    r1 = await store.upload_part("bkt", "mp", up.upload_id, 1, p1)
    r2 = await store.upload_part("bkt", "mp", up.upload_id, 2, p2)
    r3 = await store.upload_part("bkt", "mp", up.upload_id, 3, p3)
    parts, trunc = store.list_parts(up.upload_id)
    assert [p.part_number for p in parts] == [1, 2, 3] and not trunc
    assert store.list_parts(up.upload_id, part_number_marker=1, max_parts=1) == ([r2], True)
    assert [u.upload_id for u in store.list_uploads("bkt").uploads] == [up.upload_id]
    with pytest.raises(InvalidPartOrder):
        await store.complete_multipart("bkt", "mp", up.upload_id, [(2, r2.etag), (1, r1.etag)])
    with pytest.raises(InvalidPart):
        await store.complete_multipart("bkt", "mp", up.upload_id, [(1, r1.etag), (2, "0" * 32)])
    with pytest.raises(EntityTooSmall):
        await store.complete_multipart("bkt", "mp", up.upload_id, [(1, r1.etag), (3, r3.etag)],
                                       min_part_size=10 << 20)
    v = await store.complete_multipart("bkt", "mp", up.upload_id, [(1, f'"{r1.etag}"'), (2, r2.etag), (3, r3.etag)])
    md5s = b"".join(hashlib.md5(p).digest() for p in (p1, p2, p3))
    assert v.etag == f"{hashlib.md5(md5s).hexdigest()}-3"
    assert v.segments == r1.segments + r2.segments + r3.segments  # no data copied
    assert await read_all(store, "bkt", "mp") == p1 + p2 + p3
    assert await read_all(store, "bkt", "mp", start=(5 << 20) - 10, end=(5 << 20) + 10) == (p1 + p2)[
        (5 << 20) - 10 : (5 << 20) + 10]
    with pytest.raises(NoSuchUpload):
        store.get_upload("bkt", "mp", up.upload_id)
    # Abort frees parts.
    up2 = await store.create_multipart("bkt", "mp2")
    r = await store.upload_part("bkt", "mp2", up2.upload_id, 1, b"abc")
    await store.abort_multipart("bkt", "mp2", up2.upload_id)
    assert store.get_segment(r.segments[0].segment_id).refcount == 0
    # Part copy references a range of another object.
    up3 = await store.create_multipart("bkt", "mp3")
    pc = await store.upload_part_copy("bkt", "mp3", up3.upload_id, 1, v, 100, 100 + (6 << 20))
    assert pc.etag == hashlib.md5((p1 + p2)[100 : 100 + (6 << 20)]).hexdigest()
    v3 = await store.complete_multipart("bkt", "mp3", up3.upload_id, [(1, pc.etag)])
    assert await read_all(store, "bkt", "mp3") == (p1 + p2)[100 : 100 + (6 << 20)]
    assert v3.size == 6 << 20


async def test_rename_is_metadata_only(store) -> None:
    body = os.urandom(100_000)
    v = await store.put_object("bkt", "dir/a", body)
    await store.put_object("bkt", "dir/sub/b", b"b")
    await store.put_object("bkt", "other", b"o")
    with pytest.raises(PreconditionFailed):
        await store.rename_object("bkt", "dir/a", "other", noreplace=True)
    moved = await store.rename_object("bkt", "dir/a", "dir/c")
    assert moved.segments == v.segments
    assert await read_all(store, "bkt", "dir/c") == body
    n = await store.rename_prefix("bkt", "dir/", "new/")
    assert n == 2
    assert [e.key for e in store.list_objects("bkt").entries] == ["new/c", "new/sub/b", "other"]
    assert store.get_segment(v.segments[0].segment_id).refcount == 1


async def test_conditional_put_exactly_one_wins(store) -> None:
    wins, losses = [], []

    async def writer(i: int) -> None:
        try:
            await store.put_object("bkt", "cond", f"w{i}".encode() * 1000, if_none_match="*")
            wins.append(i)
        except PreconditionFailed:
            losses.append(i)

    async with trio.open_nursery() as n:
        for i in range(8):
            n.start_soon(writer, i)
    assert len(wins) == 1 and len(losses) == 7
    assert await read_all(store, "bkt", "cond") == f"w{wins[0]}".encode() * 1000
    cur = store.head_object("bkt", "cond")
    with pytest.raises(PreconditionFailed):
        await store.put_object("bkt", "cond", b"x", if_match='"deadbeef"')
    await store.put_object("bkt", "cond", b"x", if_match=f'"{cur.etag}"')


async def test_concurrent_writers_last_commit_wins(store) -> None:
    bodies = {i: os.urandom(200_000 + i) for i in range(10)}
    committed: list[int] = []

    async def writer(i: int) -> None:
        v = await store.put_object("bkt", "race", bodies[i])
        committed.append((v.seq, i))  # type: ignore[arg-type]

    async with trio.open_nursery() as n:
        for i in bodies:
            n.start_soon(writer, i)
    last = max(committed)[1]  # type: ignore[type-var]
    assert await read_all(store, "bkt", "race") == bodies[last]
    # Every replaced segment is unreferenced: exactly one live reference remains.
    live = [rec for _, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT) if rec.refcount > 0]
    assert len(live) == 1


class Staged:
    """What the mount hands commit_patch: the file's bytes (only the dirty ranges get read)."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.reads: list[tuple[int, int]] = []

    async def read(self, start: int, end: int) -> bytes:
        self.reads.append((start, end))
        return bytes(self.data[start:end].ljust(end - start, b"\0"))


def staged_left(store) -> list[bytes]:
    return [k for k, _ in store.db.scan(keys.STAGED)]


async def test_commit_patch_layout_and_etags(store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patch, "REWRITE_LIMIT", 64 << 10)
    f = Staged(os.urandom(300_000))
    # A new file is written whole: one segment, the true MD5.
    v1 = await store.commit_patch("bkt", "f", None, 300_000, [(0, 300_000)], f.read, PutMeta("a/b"))
    assert v1.etag == hashlib.md5(f.data).hexdigest() and len(v1.segments) == 1 and v1.content_type == "a/b"
    # A patch of a large file stores only the dirty bytes and splices them between base slices.
    f.data[100_000:104_096] = os.urandom(4096)
    f.reads.clear()
    v2 = await store.commit_patch("bkt", "f", v1, 300_000, [(100_000, 104_096)], f.read, PutMeta())
    assert f.reads == [(100_000, 104_096)]
    base, new = v1.segments[0].segment_id, v2.segments[1].segment_id
    assert v2.segments == [SegmentRef(base, 0, 100_000), SegmentRef(new, 0, 4096),
                           SegmentRef(base, 104_096, 195_904)]
    assert store.get_segment(new).length == 4096 and store.get_segment(new).refcount == 1
    assert v2.etag == patch.composite_etag(v1.etag, v2.segments, hashlib.md5(f.data[100_000:104_096]).hexdigest())
    assert v2.etag.endswith("-3")
    assert await read_all(store, "bkt", "f") == f.data
    # Shrink and grow with nothing written: base slices, and zeros read from the writer past base.size.
    v3 = await store.commit_patch("bkt", "f", v2, 200_000, [], f.read, PutMeta())
    assert v3.segments == [*v2.segments[:2], SegmentRef(base, 104_096, 95_904)]
    assert v3.etag == patch.composite_etag(v2.etag, v3.segments, hashlib.md5(b"").hexdigest())
    f.data[200_000:] = bytes(100_000)
    v4 = await store.commit_patch("bkt", "f", v3, 300_000, [], f.read, PutMeta())
    assert await read_all(store, "bkt", "f") == f.data and len(v4.segments) == 4
    # Adjacent and overlapping dirty ranges become one run; contiguous refs are merged.
    v5 = await store.commit_patch("bkt", "f", v4, 300_000, [(10, 20), (20, 30), (25, 40)], f.read, PutMeta())
    assert [r.length for r in v5.segments[:3]] == [10, 30, 100_000 - 40]
    # Too many refs: rewritten whole, the ETag is the MD5 again.
    monkeypatch.setattr(patch, "MAX_REFS", 4)
    v6 = await store.commit_patch("bkt", "f", v5, 300_000, [(1, 2), (3, 4)], f.read, PutMeta())
    assert len(v6.segments) == 1 and v6.etag == hashlib.md5(f.data).hexdigest()
    # Small files are rewritten whole.
    monkeypatch.setattr(patch, "REWRITE_LIMIT", 8 << 20)
    v7 = await store.commit_patch("bkt", "f", v6, 300_000, [(5, 6)], f.read, PutMeta())
    assert len(v7.segments) == 1 and v7.etag == hashlib.md5(f.data).hexdigest()
    empty = await store.commit_patch("bkt", "f", v7, 0, [], f.read, PutMeta())
    assert empty.segments == [] and empty.etag == hashlib.md5(b"").hexdigest()
    assert staged_left(store) == []
    assert store.get_segment(new).refcount == 0  # no version uses the patch segment any more


async def test_a_fragmented_rewrite_reads_the_base_once_per_window(store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewritten whole (too many refs), a file is read from its base a window at a time, the
    dirty runs laid over it: not one base read per clean gap, each decoding whole blocks."""
    monkeypatch.setattr(patch, "REWRITE_LIMIT", 64 << 10)
    monkeypatch.setattr(patch, "MAX_REFS", 8)
    monkeypatch.setattr(patch, "WINDOW", 256 << 10)
    size = 1_000_000
    f = Staged(os.urandom(size))
    v1 = await store.commit_patch("bkt", "f", None, size, [(0, size)], f.read, PutMeta())
    dirty = [(off, off + 100) for off in range(5_000, size - 200, 9_973)]  # 100 gaps
    dirty.append((size - 50, size + 30))  # past the old end too
    for s, e in dirty:
        f.data[s:e] = os.urandom(e - s)
    size += 30
    base_reads: list[tuple[int, int]] = []
    read_object = store.read_object

    def counted(v, start=0, end=None, **kw):  # type: ignore[no-untyped-def]
        base_reads.append((start, end))
        return read_object(v, start, end, **kw)

    monkeypatch.setattr(store, "read_object", counted)
    f.reads.clear()
    v2 = await store.commit_patch("bkt", "f", v1, size, dirty, f.read, PutMeta())
    monkeypatch.setattr(store, "read_object", read_object)
    assert len(v2.segments) == 1 and v2.etag == hashlib.md5(f.data).hexdigest()
    assert await read_all(store, "bkt", "f") == bytes(f.data)
    assert len(base_reads) <= size // (256 << 10) + 1  # a read per window, not per gap (~100)
    assert sorted(f.reads) == sorted([*dirty[:-1], (size - 80, size)])  # only the dirty bytes


async def test_commit_patch_failure_releases_the_staged_segment(store) -> None:
    f = Staged(os.urandom(1000))
    with pytest.raises(NoSuchBucket):  # refused before anything is stored
        await store.commit_patch("nope", "f", None, 1000, [(0, 1000)], f.read, PutMeta())
    assert f.reads == [] and list(store.db.scan(keys.SEGMENT)) == []

    await store.create_bucket("gone")

    async def read_as_the_bucket_goes(start: int, end: int) -> bytes:
        await store.delete_bucket("gone")  # while the data is written: the commit fails
        return await f.read(start, end)

    with pytest.raises(NoSuchBucket):
        await store.commit_patch("gone", "f", None, 1000, [(0, 1000)], read_as_the_bucket_goes, PutMeta())
    assert staged_left(store) == []
    assert [rec.refcount for _, rec in store.db.scan_records(SegmentRecord, keys.SEGMENT)] == [0]

    async def short(start: int, end: int) -> bytes:
        return b"x"

    short_reads: list[BaseException] = []
    try:  # the segment writer may wrap the body's error in an ExceptionGroup
        await store.commit_patch("bkt", "f", None, 1000, [(0, 1000)], short, PutMeta())
    except* ValueError as group:
        short_reads.extend(group.exceptions)
    assert [str(e) for e in short_reads] == ["read_dirty(0, 1000) returned 1 bytes"]
    assert staged_left(store) == []


async def test_shared_records_follow_every_change(store) -> None:
    """shared_bucket and a read's segment records are decoded once and reused only while the
    stored value is unchanged: a change, a delete and a re-create are each seen at once."""
    first = store.shared_bucket("bkt")
    assert store.shared_bucket("bkt") is first  # reused while unchanged

    def tag(rec) -> None:
        rec.tags = {"team": "a"}

    await store.update_bucket("bkt", tag)
    assert store.shared_bucket("bkt").tags == {"team": "a"}
    assert first.tags == {}  # the shared record was not the one changed
    await store.create_bucket("gone")
    store.shared_bucket("gone")
    await store.delete_bucket("gone")
    with pytest.raises(NoSuchBucket):
        store.shared_bucket("gone")
    with pytest.raises(NoSuchBucket):
        store.require_bucket("gone")
    await store.create_bucket("gone")
    assert store.shared_bucket("gone").tags == {}

    await store.put_object("bkt", "k", b"one")
    assert await read_all(store, "bkt", "k") == b"one"
    await store.put_object("bkt", "k", b"two")  # a new segment: its own record
    assert await read_all(store, "bkt", "k") == b"two"


async def test_writes_follow_bucket_changes_through_the_shared_record(store) -> None:
    """A PUT and a commit of existing segments read their bucket through the shared decode: a
    change of versioning, owner or existence between two writes is seen by the next one."""
    assert (await store.put_object("bkt", "a", b"1")).version_id == "null"
    await store.set_versioning("bkt", "Enabled")
    v = await store.put_object("bkt", "a", b"2")
    assert v.version_id != "null"
    w = await store.put_object_segments("bkt", "b", list(v.segments), v.size, v.etag)
    assert w.version_id not in ("null", v.version_id)
    await store.set_versioning("bkt", "Suspended")
    assert (await store.put_object("bkt", "a", b"3")).version_id == "null"
    assert (await store.put_object_segments("bkt", "b", list(v.segments), v.size, v.etag)).version_id == "null"

    def give(rec) -> None:
        rec.owner = "someone-else"

    await store.update_bucket("bkt", give)
    assert (await store.put_object("bkt", "c", b"x")).owner == "someone-else"
    assert (await store.put_object_segments("bkt", "d", list(v.segments), v.size, v.etag)).owner == "someone-else"
    await store.create_bucket("brief")
    await store.put_object("brief", "k", b"x")
    await store.delete_object("brief", "k")
    await store.delete_bucket("brief")
    with pytest.raises(NoSuchBucket):
        await store.put_object("brief", "k", b"x")
    with pytest.raises(NoSuchBucket):
        await store.put_object_segments("brief", "k", list(v.segments), v.size, v.etag)


async def test_shared_latest_follows_writes_deletes_and_markers(store) -> None:
    """shared_latest answers as head_object does (None for NoSuchKey), from a shared decode that
    a new version, a delete, a delete marker and a bucket's removal are each seen through."""
    assert store.shared_latest("bkt", "k") is None
    v1 = await store.put_object("bkt", "k", b"one")
    first = store.shared_latest("bkt", "k")
    assert first == store.head_object("bkt", "k") == v1
    assert store.shared_latest("bkt", "k") is first  # reused while unchanged
    v2 = await store.put_object("bkt", "k", b"two!")
    assert store.shared_latest("bkt", "k") == v2 and first.size == 3
    await store.delete_object("bkt", "k")
    assert store.shared_latest("bkt", "k") is None
    await store.set_versioning("bkt", "Enabled")
    v3 = await store.put_object("bkt", "k", b"three")
    assert store.shared_latest("bkt", "k") == v3
    await store.delete_object("bkt", "k")  # a delete marker: NoSuchKey for head_object
    assert store.shared_latest("bkt", "k") is None
    with pytest.raises(NoSuchKey):
        store.head_object("bkt", "k")
    await store.create_bucket("brief")
    await store.delete_bucket("brief")
    with pytest.raises(NoSuchBucket):
        store.shared_latest("brief", "k")

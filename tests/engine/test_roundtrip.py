"""Property-based round trips through the facade: sizes around block boundaries, random ranges."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import open_store, read_all

BS = 64 * 1024  # small blocks so "several blocks" stays fast
SIZES = st.one_of(
    st.sampled_from([0, 1, BS - 1, BS, BS + 1, 4 * BS, 4 * BS - 1, 4 * BS + 1, 7 * BS + 3]),
    st.integers(min_value=0, max_value=6 * BS),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=SIZES, data=st.data())
def test_put_get_roundtrip(tmp_path_factory, size: int, data: st.DataObject) -> None:
    root: Path = tmp_path_factory.mktemp("rt")
    body = os.urandom(size)
    a = data.draw(st.integers(0, size), label="start")
    b = data.draw(st.integers(a, size), label="end")
    chunking = data.draw(st.integers(1, 3 * BS), label="piece size")

    async def main() -> None:
        s = open_store(root, block_size=BS)
        try:
            await s.create_bucket("bkt")

            async def pieces():
                for off in range(0, size, chunking):
                    yield body[off : off + chunking]

            v = await s.put_object("bkt", "obj", pieces())
            assert v.size == size
            assert v.etag == hashlib.md5(body).hexdigest()
            assert await read_all(s, "bkt", "obj") == body
            assert await read_all(s, "bkt", "obj", start=a, end=b) == body[a:b]
        finally:
            s.db.close()

    trio.run(main)


async def test_range_reads_touch_only_needed_blocks(store) -> None:
    """A range inside one block reads one block's chunks, not the object."""
    body = os.urandom(40 << 20)
    v = await store.put_object("bkt", "big", body)
    before = sum(d.counters.read_bytes + d.counters.reads for d in store.disks)
    got = b"".join([p async for p in store.read_object(v, (20 << 20) + 5, (20 << 20) + 4096)])
    assert got == body[(20 << 20) + 5 : (20 << 20) + 4096]
    reads = sum(d.counters.reads for d in store.disks) - before
    assert reads <= 4  # one pread per data shard of the single block touched


async def test_bounded_memory_streaming(store) -> None:
    """A 512 MiB object streams in and out without holding it in memory."""
    import psutil

    proc = psutil.Process()
    piece = os.urandom(1 << 20)
    md5 = hashlib.md5()

    async def body():
        for _ in range(512):
            md5.update(piece)
            yield piece

    rss0 = proc.memory_info().rss
    v = await store.put_object("bkt", "huge", body())
    assert v.etag == md5.hexdigest()
    peak = proc.memory_info().rss - rss0
    out = hashlib.md5()
    async for p in store.read_object(v):
        out.update(p)
        peak = max(peak, proc.memory_info().rss - rss0)
    assert out.hexdigest() == md5.hexdigest()
    assert peak < 200 << 20, f"RSS grew by {peak >> 20} MiB for a 512 MiB object"


async def test_pieces_kept_across_reads_stay_intact(store) -> None:
    """Reads reuse the buffers shard batches are read into: every piece a read returned must
    stay as it was while other reads (interleaved, of other objects, degraded) reuse them."""
    bodies = {name: os.urandom((20 << 20) + 12345) for name in ("a", "b", "c")}
    versions = {name: await store.put_object("bkt", name, body) for name, body in bodies.items()}
    kept: dict[str, list[bytes]] = {name: [] for name in bodies}
    streams = {name: aiter(store.read_object(v)) for name, v in versions.items()}
    while streams:  # one piece of each stream in turn: their batches share the pool
        for name in list(streams):
            try:
                kept[name].append(await anext(streams[name]))
            except StopAsyncIteration:
                del streams[name]
    rec = store.get_segment(versions["a"].segments[0].segment_id)
    disk = store.disks.get(rec.shards[0])
    assert disk is not None
    os.unlink(disk.shard_path(rec.segment_id, 0))  # "a" now reads around a missing data shard
    again = [p async for p in store.read_object(versions["a"], 5, (16 << 20) + 7)]
    assert b"".join(again) == bodies["a"][5 : (16 << 20) + 7]
    for name, body in bodies.items():
        assert b"".join(kept[name]) == body

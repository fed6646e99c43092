"""Files written in order are streamed to the store while written (fusefs/streaming.py): the
commit adds only the version; anything else falls back to storing the staged bytes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio

from appliance.engine import keys as engine_keys
from fusefs import nodes, streaming
from fusefs.staging import FileState

from .conftest import FS, md5

MIB = 1 << 20


@pytest.fixture
async def sfs(fs: FS, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FS]:
    """The mount with a nursery to stream in (as service.py gives it), from 2 MiB on."""
    monkeypatch.setattr(nodes, "STREAM_START", 2 * MIB)
    async with trio.open_nursery() as nursery:
        fs.ops.nursery = nursery
        yield fs
        nursery.cancel_scope.cancel()


def staged_segments(fs: FS) -> int:
    return len(list(fs.store.db.scan(engine_keys.STAGED)))


async def test_sequential_file_is_streamed_and_committed_whole(sfs: FS) -> None:
    data = os.urandom(5 * MIB + 123)
    fh = await sfs.open("bkt/big.bin", create=True)
    node = sfs.ops.files[fh]
    for off in range(0, len(data), MIB):
        await sfs.ops.write(fh, off, data[off : off + MIB])
    assert node.state is not None and node.state.stream is not None  # stored while written
    await sfs.ops.fsync(fh, False)
    assert node.state.stream is None
    v = sfs.store.head_object("bkt", "big.bin")
    assert (v.size, v.etag, len(v.segments)) == (len(data), md5(data), 1)
    assert await sfs.read_file("bkt/big.bin") == data
    # appending after the fsync goes on as an ordinary patch of the committed version
    await sfs.ops.write(fh, len(data), b"more")
    await sfs.close(fh)
    assert await sfs.read_file("bkt/big.bin") == data + b"more"
    assert staged_segments(sfs) == 0


async def test_out_of_order_write_ends_the_stream(sfs: FS) -> None:
    data = bytearray(os.urandom(4 * MIB))
    fh = await sfs.open("bkt/f.bin", create=True)
    node = sfs.ops.files[fh]
    for off in range(0, 3 * MIB, MIB):
        await sfs.ops.write(fh, off, bytes(data[off : off + MIB]))
    assert node.state is not None and node.state.stream is not None
    await sfs.ops.write(fh, 100, b"X" * 10)  # an overwrite: the streamed bytes are stale
    data[100:110] = b"X" * 10
    assert node.state.stream is None and not node.state.in_order
    await sfs.ops.write(fh, 3 * MIB, bytes(data[3 * MIB :]))
    assert node.state.stream is None  # not in order any more: never streamed again
    await sfs.close(fh)
    v = sfs.store.head_object("bkt", "f.bin")
    assert (v.size, v.etag) == (len(data), md5(bytes(data)))
    assert await sfs.read_file("bkt/f.bin") == bytes(data)
    assert staged_segments(sfs) == 0


async def test_truncate_to_zero_streams_again(sfs: FS) -> None:
    old = os.urandom(3 * MIB)
    await sfs.write_file("bkt/t.bin", old)
    fh = await sfs.open("bkt/t.bin", os.O_RDWR | os.O_TRUNC)
    node = sfs.ops.files[fh]
    assert node.state is not None and node.state.in_order
    new = os.urandom(3 * MIB)
    for off in range(0, len(new), MIB):
        await sfs.ops.write(fh, off, new[off : off + MIB])
    assert node.state.stream is not None
    await sfs.close(fh)
    assert await sfs.read_file("bkt/t.bin") == new
    assert sfs.store.head_object("bkt", "t.bin").etag == md5(new)


async def test_a_failed_stream_falls_back_to_the_staged_bytes(sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: FileState, s: int, e: int) -> bytes:
        raise OSError(5, "staging file unreadable")

    monkeypatch.setattr(FileState, "read_staged", broken)  # the stream's reader, not the commit's
    data = os.urandom(3 * MIB + 100)
    fh = await sfs.open("bkt/x.bin", create=True)
    node = sfs.ops.files[fh]
    for off in range(0, len(data), MIB):
        await sfs.ops.write(fh, off, data[off : off + MIB])
    stream = node.state.stream if node.state is not None else None
    assert stream is not None
    await sfs.close(fh)
    assert stream.finished.is_set() and stream.result is None
    assert await sfs.read_file("bkt/x.bin") == data
    assert sfs.store.head_object("bkt", "x.bin").etag == md5(data)
    assert staged_segments(sfs) == 0


async def test_small_files_and_no_nursery_are_not_streamed(fs: FS) -> None:
    assert fs.ops.nursery is None
    data = os.urandom(streaming.STREAM_START + MIB)
    fh = await fs.open("bkt/n.bin", create=True)
    node = fs.ops.files[fh]
    for off in range(0, len(data), MIB):
        await fs.ops.write(fh, off, data[off : off + MIB])
    assert node.state is not None and node.state.stream is None
    await fs.close(fh)
    assert await fs.read_file("bkt/n.bin") == data

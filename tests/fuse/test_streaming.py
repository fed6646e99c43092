"""Files written in order are streamed to the store while written (fusefs/streaming.py): the
commit adds only the version, the bytes handed to the stream are never staged, and anything
else patches what the stream stored (or the staged bytes, if it stored nothing)."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator

import pyfuse3
import pytest
import trio

from appliance.engine import keys as engine_keys
from appliance.engine import patch
from fusefs import nodes, streaming
from fusefs.staging import FileState

from .conftest import CTX, FS, Fields, md5
from .test_operations import _size

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


def broken_staging(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: FileState, s: int, e: int) -> bytes:
        raise OSError(5, "staging file unreadable")

    monkeypatch.setattr(FileState, "read_staged", broken)  # the stream's reader, not the commit's


async def test_a_stream_failing_before_it_was_handed_bytes_falls_back_to_the_staged_bytes(
        sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    broken_staging(monkeypatch)
    data = os.urandom(3 * MIB + 100)
    fh = await sfs.open("bkt/x.bin", create=True)
    node = sfs.ops.files[fh]
    await sfs.ops.write(fh, 0, data)  # one write: all of it staged when the stream starts
    stream = node.state.stream if node.state is not None else None
    assert stream is not None and stream.staged_end == len(data)
    await sfs.close(fh)
    assert stream.finished.is_set() and stream.result is None
    assert await sfs.read_file("bkt/x.bin") == data
    assert sfs.store.head_object("bkt", "x.bin").etag == md5(data)
    assert staged_segments(sfs) == 0


async def test_writes_after_a_stream_failed_holding_only_staged_bytes_are_staged(
        sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    broken_staging(monkeypatch)
    data = os.urandom(3 * MIB + 100)
    more = os.urandom(MIB)
    fh = await sfs.open("bkt/y.bin", create=True)
    node = sfs.ops.files[fh]
    await sfs.ops.write(fh, 0, data)  # one write: all of it staged when the stream starts
    stream = node.state.stream if node.state is not None else None
    assert stream is not None
    await stream.finished.wait()  # failed on the staging file, before it was handed anything
    assert await sfs.ops.write(fh, len(data), more) == len(more)  # nothing was lost: no EIO
    await sfs.close(fh)
    assert await sfs.read_file("bkt/y.bin") == data + more
    assert staged_segments(sfs) == 0 and streaming.QUEUED.held == 0


async def test_a_stream_failing_after_it_was_handed_bytes_is_eio_and_keeps_the_committed_version(
        sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.urandom(MIB + 7)
    await sfs.write_file("bkt/x.bin", old)
    broken_staging(monkeypatch)
    data = os.urandom(6 * MIB)
    fh = await sfs.open("bkt/x.bin", os.O_RDWR | os.O_TRUNC)
    node = sfs.ops.files[fh]
    failed = []
    for off in range(0, len(data), MIB):
        try:
            await sfs.ops.write(fh, off, data[off : off + MIB])
        except pyfuse3.FUSEError as e:
            failed.append(e.errno)
            break
    try:
        await sfs.ops.fsync(fh, False)
    except pyfuse3.FUSEError as e:
        failed.append(e.errno)
    # the bytes only the stream held are gone: said once, at the write or at the fsync
    assert failed == [errno.EIO]
    assert node.state is not None and not node.state.changed and node.state.size == len(old)
    await sfs.close(fh)
    assert await sfs.read_file("bkt/x.bin") == old
    assert staged_segments(sfs) == 0 and streaming.QUEUED.held == 0


async def test_the_staging_file_holds_only_what_came_before_the_stream(
        sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "QUEUE_LIMIT", MIB)
    data = os.urandom(9 * MIB + 5)
    fh = await sfs.open("bkt/s.bin", create=True)
    node = sfs.ops.files[fh]
    for off in range(0, len(data), 512 << 10):
        await sfs.ops.write(fh, off, data[off : off + (512 << 10)])
        st = node.state
        assert st is not None and st.fd is not None
        if st.stream is not None:  # a write returns once at most QUEUE_LIMIT bytes wait for the store
            assert st.stream.queued <= MIB
    assert node.state is not None and node.state.fd is not None and node.state.stream is not None
    assert os.fstat(node.state.fd).st_size == node.state.stream.staged_end == 2 * MIB
    await sfs.close(fh)
    v = sfs.store.head_object("bkt", "s.bin")
    assert (v.size, v.etag, len(v.segments)) == (len(data), md5(data), 1)
    assert await sfs.read_file("bkt/s.bin") == data
    assert streaming.QUEUED.held == 0  # every byte handed over was accounted back


async def test_streams_share_a_memory_bound(sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "QUEUE_TOTAL", 2 * MIB)
    datas = [os.urandom(6 * MIB) for _ in range(3)]
    fhs = [await sfs.open(f"bkt/m{i}.bin", create=True) for i in range(3)]

    async def writer(fh: int, data: bytes) -> None:
        for off in range(0, len(data), MIB):
            await sfs.ops.write(fh, off, data[off : off + MIB])
            # a push waits for room in the total, unless its own stream holds nothing: at most
            # the total and one write per stream
            assert streaming.QUEUED.held <= 2 * MIB + 3 * MIB

    async with trio.open_nursery() as nursery:
        for fh, data in zip(fhs, datas, strict=True):
            nursery.start_soon(writer, fh, data)
    for fh in fhs:
        await sfs.close(fh)
    for i, data in enumerate(datas):
        assert await sfs.read_file(f"bkt/m{i}.bin") == data
    assert streaming.QUEUED.held == 0


async def write_streamed(sfs: FS, path: str, data: bytes) -> tuple[int, FileState]:
    fh = await sfs.open(path, create=True)
    for off in range(0, len(data), MIB):
        await sfs.ops.write(fh, off, data[off : off + MIB])
    st = sfs.ops.files[fh].state
    assert st is not None and st.stream is not None and st.stream.pushed
    return fh, st


async def test_a_read_of_streamed_bytes_settles_the_stream_and_later_writes_patch_it(
        sfs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patch, "REWRITE_LIMIT", MIB)  # (a few MiB are rewritten whole otherwise)
    data = bytearray(os.urandom(5 * MIB + 3))
    fh, st = await write_streamed(sfs, "bkt/r.bin", bytes(data))
    assert await sfs.ops.read(fh, MIB, 3 * MIB) == bytes(data[MIB : 4 * MIB])
    # the stream's segment is now what the file's clean bytes are read from; the staging file is empty
    assert st.stream is None and st.prefix is not None and not st.in_order
    assert st.fd is not None and os.fstat(st.fd).st_size == 0
    await sfs.ops.write(fh, 3 * MIB, b"Y" * 10)
    data[3 * MIB : 3 * MIB + 10] = b"Y" * 10
    tail = os.urandom(MIB)
    await sfs.ops.write(fh, len(data), tail)
    data += tail
    assert await sfs.ops.read(fh, 3 * MIB - 5, 20) == bytes(data[3 * MIB - 5 : 3 * MIB + 15])
    await sfs.close(fh)
    v = sfs.store.head_object("bkt", "r.bin")
    assert v.size == len(data) and len(v.segments) > 1  # the streamed segment is kept, spliced
    assert await sfs.read_file("bkt/r.bin") == bytes(data)
    assert staged_segments(sfs) == 0


async def test_truncating_a_streamed_file(sfs: FS) -> None:
    data = os.urandom(5 * MIB)
    fh, st = await write_streamed(sfs, "bkt/t.bin", data)
    ino = sfs.ops.files[fh].ino
    await sfs.ops.setattr(ino, _size(3 * MIB + 1), Fields(update_size=True), fh, CTX)
    assert st.stream is None and st.prefix is not None
    await sfs.ops.setattr(ino, _size(4 * MIB), Fields(update_size=True), fh, CTX)  # and longer: zeros
    await sfs.close(fh)
    assert await sfs.read_file("bkt/t.bin") == data[: 3 * MIB + 1] + bytes(MIB - 1)
    # to zero: the stream (or its settled segment) is dropped and the file streams afresh
    fh, st = await write_streamed(sfs, "bkt/u.bin", data)
    await sfs.ops.read(fh, 3 * MIB, 10)  # past the staged share: settles
    assert st.prefix is not None
    await sfs.ops.setattr(sfs.ops.files[fh].ino, _size(0), Fields(update_size=True), fh, CTX)
    assert st.prefix is None and st.in_order
    new = os.urandom(3 * MIB)
    for off in range(0, len(new), MIB):
        await sfs.ops.write(fh, off, new[off : off + MIB])
    assert st.stream is not None
    await sfs.close(fh)
    assert await sfs.read_file("bkt/u.bin") == new
    assert staged_segments(sfs) == 0


async def test_a_settled_stream_of_a_file_unlinked_while_open_is_released(sfs: FS) -> None:
    fh, st = await write_streamed(sfs, "bkt/gone.bin", os.urandom(4 * MIB))
    await sfs.ops.write(fh, 5, b"Z")  # settles
    assert st.prefix is not None and staged_segments(sfs) == 1
    await sfs.ops.unlink(await sfs.ino("bkt"), b"gone.bin", CTX)
    await sfs.close(fh)
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

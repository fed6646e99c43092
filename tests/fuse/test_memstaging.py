"""Small files written in order from empty are held in memory until their commit (staging.py
MemBudget): every transition out of that state (a write elsewhere, growth past the per-file or
the total limit, truncates up and down, O_TRUNC) must read and commit exactly what a file staged
on disk would, and the memory taken must all be given back."""

from __future__ import annotations

import errno
import os
import random

import pyfuse3
import pytest

from fusefs import staging

from .conftest import CTX, FS, Fields, md5


async def _read_open(fs: FS, fh: int, size: int) -> bytes:
    return await fs.ops.read(fh, 0, size + 10)


async def test_in_memory_files_match_a_byte_model_through_every_transition(fs: FS) -> None:
    rnd = random.Random(5)
    await fs.mkdir("/bkt/d")
    limit = staging.MEM_FILE_BYTES
    cases = {
        "small": [("w", 0, 100), ("w", 100, 4000)],
        "middle-write": [("w", 0, 3000), ("w", 1000, 50)],
        "past-the-limit": [("w", 0, limit - 10), ("w", limit - 10, 100)],
        "hole": [("w", 0, 10), ("t", 5000, 0), ("w", 5000, 7)],
        "shrink": [("w", 0, 9000), ("t", 4000, 0), ("w", 4000, 3)],
        "to-zero": [("w", 0, 9000), ("t", 0, 0), ("w", 0, 20)],
        "empty": [],
    }
    for name, steps in cases.items():
        model = bytearray()
        fh = await fs.open(f"/bkt/d/{name}", create=True)
        for op, off, n in steps:
            if op == "w":
                data = rnd.randbytes(n)
                assert await fs.ops.write(fh, off, data) == n
                model[len(model):off] = bytes(max(0, off - len(model)))
                model[off:off + n] = data
            else:
                node = fs.ops.files[fh]
                attr = await fs.ops.getattr(node.ino, CTX)
                attr.st_size = off
                await fs.ops.setattr(node.ino, attr, Fields(update_size=True), fh, CTX)
                del model[off:]
                model += bytes(off - len(model))
            assert await _read_open(fs, fh, len(model)) == bytes(model), (name, op, off)
        await fs.close(fh)
        assert await fs.read_file(f"/bkt/d/{name}") == bytes(model), name
        v = fs.store.head_object("bkt", f"d/{name}")
        assert v.size == len(model) and v.etag == md5(bytes(model)), name
    assert staging.MEM.held == 0


async def test_o_trunc_rewrite_and_the_total_budget(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    await fs.write_file("/bkt/f", b"old content " * 1000)
    fh = await fs.open("/bkt/f", os.O_WRONLY | os.O_TRUNC)
    await fs.ops.write(fh, 0, b"new")
    assert fs.ops.files[fh].state.mem == bytearray(b"new")  # after O_TRUNC the new content is in memory
    await fs.close(fh)
    assert await fs.read_file("/bkt/f") == b"new"
    # the total limit reached: the next file goes to its staging file, and both commit right
    monkeypatch.setattr(staging, "MEM", staging.MemBudget(6000))
    a = await fs.open("/bkt/a", create=True)
    b = await fs.open("/bkt/b", create=True)
    await fs.ops.write(a, 0, b"a" * 5000)
    await fs.ops.write(b, 0, b"b" * 5000)  # over the total: staged on disk
    assert fs.ops.files[a].state.mem is not None and fs.ops.files[b].state.mem is None
    assert staging.MEM.held == 5000
    await fs.close(a)
    await fs.close(b)
    assert staging.MEM.held == 0
    assert await fs.read_file("/bkt/a") == b"a" * 5000 and await fs.read_file("/bkt/b") == b"b" * 5000


async def test_a_failed_move_to_the_staging_file_loses_nothing(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    fh = await fs.open("/bkt/full", create=True)
    await fs.ops.write(fh, 0, b"a" * 100)
    real = os.pwrite
    calls = []

    def no_space(fd: int, data: bytes, off: int) -> int:
        calls.append(off)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", no_space)
    with pytest.raises(pyfuse3.FUSEError) as info:
        await fs.ops.write(fh, 10, b"b")  # not at the end: the content must move to the staging file
    assert info.value.errno == errno.ENOSPC and calls == [0]
    assert fs.ops.files[fh].state.mem == bytearray(b"a" * 100)  # still in memory, whole
    monkeypatch.setattr(os, "pwrite", real)
    await fs.ops.write(fh, 10, b"b")
    await fs.close(fh)
    assert await fs.read_file("/bkt/full") == b"a" * 10 + b"b" + b"a" * 89
    assert staging.MEM.held == 0

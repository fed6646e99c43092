"""Re-cutting a streamed body into blocks (segments.iter_blocks), a write stage taking what is
queued in one call (segments._with_queued) and the multi-chunk shard append."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import trio

from appliance.engine.codec import checksum
from appliance.engine.segments import _with_queued, iter_blocks
from appliance.engine.shardfile import HEADER_SIZE, ShardHeader, ShardWriter


def test_iter_blocks_keeps_every_byte_in_order() -> None:
    rnd = random.Random(7)

    async def main() -> None:
        for _ in range(200):
            data = rnd.randbytes(rnd.randrange(0, 40000))
            cuts = sorted(rnd.sample(range(len(data) + 1), min(len(data) + 1, rnd.randrange(0, 20))))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

            async def body(pieces: list[bytes] = pieces) -> object:
                for p in pieces:  # a bytearray the producer reuses afterwards must not leak into a block
                    buf = bytearray(p)
                    yield buf
                    buf[:] = bytes(len(buf))

            size = rnd.choice([1, 7, 4096, 10000])
            blocks = [b async for b in iter_blocks(body(), size)]  # type: ignore[arg-type]
            assert b"".join(blocks) == data
            assert all(isinstance(b, bytes) and len(b) == size for b in blocks[:-1])
            assert not blocks or 0 < len(blocks[-1]) <= size

    trio.run(main)


def test_a_stage_takes_what_is_queued_up_to_its_depth() -> None:
    async def main() -> None:
        send, recv = trio.open_memory_channel[int](10)
        for i in range(1, 7):
            send.send_nowait(i)
        assert _with_queued(recv, 0, 4) == [0, 1, 2, 3]  # never more than the depth
        assert _with_queued(recv, 9, 4) == [9, 4, 5, 6]
        assert _with_queued(recv, 7, 4) == [7]  # nothing queued: the one item alone
        send.send_nowait(8)
        await send.aclose()
        assert _with_queued(recv, 5, 4) == [5, 8]  # a closed channel ends the batch, not the stage

    trio.run(main)


def test_append_of_several_chunks_writes_each_with_its_crc(tmp_path: Path) -> None:
    header = ShardHeader("ab" * 16, 0, 4, 2, 4096, 0, 0)
    writer = ShardWriter(str(tmp_path / "tmp"), header)
    chunks: list[bytes | memoryview] = [os.urandom(1024), memoryview(os.urandom(1024)), os.urandom(100)]
    writer.append(*chunks[:2])
    writer.append(chunks[2])
    writer.seal(str(tmp_path / "final"), header)
    raw = (tmp_path / "final").read_bytes()[HEADER_SIZE:]
    expected = b"".join(bytes(c) + struct.pack("<I", checksum(c)) for c in chunks)
    assert raw == expected

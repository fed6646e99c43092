"""The streamed request body of a sealed part (appliance/services/sealedpush.py): read by a
worker thread from a stream of the trio run, and read again from the start after a seek (a
signer hashing the payload over plain HTTP does that)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import trio

from appliance.services.sealedpush import StreamedBody


def test_read_in_a_thread_seek_back_and_read_again() -> None:
    opened = 0

    async def pieces() -> AsyncIterator[bytes]:
        nonlocal opened
        opened += 1
        for i in range(5):
            yield bytes([i]) * 1000
            yield b""  # an empty piece is not the end

    async def main() -> tuple[bytes, bytes, int]:
        body = StreamedBody(pieces, trio.lowlevel.current_trio_token())

        def read_twice() -> tuple[bytes, bytes, int]:
            first = body.read(1500) + body.read()
            assert body.tell() == 5000
            assert body.seek(0, io.SEEK_CUR) == 5000  # where it is: nothing to do
            with pytest.raises(io.UnsupportedOperation):
                body.seek(10)
            body.seek(0)
            return first, body.read(), body.tell()

        try:
            return await trio.to_thread.run_sync(read_twice)
        finally:
            await body.aclose()

    first, again, pos = trio.run(main)
    want = b"".join(bytes([i]) * 1000 for i in range(5))
    assert first == want and again == want and pos == 5000 and opened == 2

"""Child process for the kill -9 test: many concurrent PUTs through the facade, printing
"ACK key md5" only after put_object returned (i.e. after the durable commit)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

import trio

from tests.engine.conftest import open_store


async def main(root: Path) -> None:
    store = open_store(root, block_size=256 * 1024)
    with contextlib.suppress(Exception):
        await store.create_bucket("bkt")

    async def writer(w: int) -> None:
        i = 0
        while True:
            size = (w * 7919 + i * 104729) % (3 << 20)
            body = os.urandom(size)
            key = f"w{w}/obj{i}"
            await store.put_object("bkt", key, body)
            sys.stdout.write(f"ACK {key} {hashlib.md5(body).hexdigest()}\n")
            sys.stdout.flush()
            if i % 3 == 0:  # overwrites too: a crash must never leave a torn mix
                body2 = os.urandom(size // 2 + 1)
                await store.put_object("bkt", key, body2)
                sys.stdout.write(f"ACK {key} {hashlib.md5(body2).hexdigest()}\n")
                sys.stdout.flush()
            i += 1

    async with trio.open_nursery() as n:
        for w in range(8):
            n.start_soon(writer, w)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))

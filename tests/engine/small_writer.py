"""Child process for the group-commit kill -9 test: 16 concurrent small PUTs (and overwrites)
through the facade, printing "ACK key md5" only after put_object returned (the durable commit).

    python -m tests.engine.small_writer ROOT GROUP_SYNC [mixed]   (GROUP_SYNC: on | auto)

`on`: one shard file per shard, synced by a shared syncfs; `auto`: the default, small bodies
packed into volume files (volumes.py) with group-committed appends.

`mixed`: every fourth writer deletes each key after its PUT ("DEL key" once delete_object
returned): transactions that scan LevelDB directly, among the staged commits of the PUTs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

import trio

from tests.engine.conftest import open_store

WRITERS = 16


async def main(root: Path, group_sync: str, mixed: bool) -> None:
    store = open_store(root)
    if group_sync == "on":  # shard files synced by a shared syncfs, as on disks of their own
        store.seg.group_sync = True
        store.seg.pack_bytes = 0  # (by default, bodies this small are packed into volumes)
    with contextlib.suppress(Exception):
        await store.create_bucket("bkt")

    async def writer(w: int) -> None:
        i = 0
        while True:
            key = f"w{w}/obj{i}"
            for _ in range(2 if i % 3 == 0 else 1):  # overwrites too: never a torn mix
                body = os.urandom(1 + (w * 7919 + i * 104729) % 8192)
                await store.put_object("bkt", key, body)
                sys.stdout.write(f"ACK {key} {hashlib.md5(body).hexdigest()}\n")
                sys.stdout.flush()
            if mixed and w % 4 == 3:
                await store.delete_object("bkt", key)
                sys.stdout.write(f"DEL {key}\n")
                sys.stdout.flush()
            i += 1

    async with trio.open_nursery() as n:
        for w in range(WRITERS):
            n.start_soon(writer, w)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2], sys.argv[3:] == ["mixed"])

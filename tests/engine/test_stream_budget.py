"""The budgets large streams share (engine/budget.py): the weighted semaphore itself, and real
writes and reads through an in-process store whose budgets are tiny, so that streams must wait
for (writes) or go without (reads) their share, and still store and return every byte."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from appliance.config import embedded_config
from appliance.engine.budget import ByteBudget
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore

from ..configtext import load_text, refused
from .conftest import read_all

MIB = 1 << 20


# --- the semaphore -------------------------------------------------------------------------------


async def test_takes_are_all_or_nothing_and_in_arrival_order() -> None:
    b = ByteBudget(10)
    assert await b.take(8) == 8
    order: list[str] = []

    async def taker(name: str, n: int) -> None:
        await b.take(n)
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(taker, "five", 5)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(taker, "one", 1)  # 1 byte is free, but "five" came first
        await trio.testing.wait_all_tasks_blocked()
        assert order == [] and b.used == 8
        assert b.try_take(1) == 0  # nor may a try_take pass the line
        b.give(3)  # room for the five, and then none for the one
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["five"] and b.used == 10
        b.give(5)
    assert order == ["five", "one"] and b.used == 6 and b.peak == 10


async def test_a_take_larger_than_the_budget_is_cut_to_it() -> None:
    b = ByteBudget(10)
    assert await b.take(100) == 10
    assert b.try_take(1) == 0
    b.give(10)
    assert b.try_take(100) == 10


async def test_a_cancelled_waiter_leaves_the_line_and_lets_the_next_in() -> None:
    b = ByteBudget(10)
    await b.take(6)
    got: list[int] = []
    scopes: list[trio.CancelScope] = []

    async def taker(n: int) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            got.append(await b.take(n))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(taker, 8)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(taker, 4)  # fits, but waits behind the 8
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        scopes[0].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert got == [4] and b.used == 10


async def test_a_share_granted_before_a_cancellation_is_the_waiters() -> None:
    """trio delivers the grant (the waiter was rescheduled by it): the waiter holds the share
    it was given, and the books say so; nothing is given back twice."""
    b = ByteBudget(10)
    await b.take(10)
    got: list[int] = []
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            async def waiter() -> None:
                got.append(await b.take(7))

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            b.give(10)  # grants the 7 ...
            scope.cancel()  # ... and the waiter's scope is cancelled before it runs again
    assert got == [7] and b.used == 7


def test_try_take_keeps_the_spare_free_and_give_checks_the_books() -> None:
    b = ByteBudget(10)
    assert b.try_take(4, spare=7) == 0
    assert b.try_take(4, spare=6) == 4
    with pytest.raises(AssertionError):
        b.give(5)
    with pytest.raises(ValueError):
        ByteBudget(0)


# --- writes and reads through a store ------------------------------------------------------------


async def test_concurrent_writes_wait_for_a_tiny_budget_and_store_every_byte(store: ObjectStore) -> None:
    # 1 MiB blocks at 4+2 cost 1.5 MiB each: this budget lets two blocks of all writes together
    # into the pipelines at once
    store.seg.write_budget = budget = ByteBudget(3 * MIB)
    bodies = {f"o{i}": os.urandom(5 * MIB + 1000 * i) for i in range(5)}

    async def body(data: bytes):  # type: ignore[no-untyped-def]
        for pos in range(0, len(data), 300_000):
            yield data[pos:pos + 300_000]

    etags: dict[str, str] = {}

    async def put(name: str) -> None:
        etags[name] = (await store.put_object("bkt", name, body(bodies[name]))).etag

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for name in bodies:
                nursery.start_soon(put, name)
    assert budget.used == 0 and 0 < budget.peak <= budget.total
    for name, data in bodies.items():
        assert etags[name] == hashlib.md5(data).hexdigest()
        assert await read_all(store, "bkt", name) == data


async def test_a_write_that_fails_midway_gives_its_share_back(store: ObjectStore) -> None:
    store.seg.write_budget = budget = ByteBudget(3 * MIB)

    async def broken():  # type: ignore[no-untyped-def]
        for _ in range(6):
            yield os.urandom(MIB)
        raise OSError("the client went away")

    with pytest.raises(BaseException) as err:
        await store.put_object("bkt", "broken", broken())
    assert "went away" in str(err.value) or err.group_contains(OSError, match="went away")
    assert budget.used == 0 and budget.peak > 0


async def test_reads_share_a_tiny_budget_and_go_a_block_at_a_time_without_it(store: ObjectStore) -> None:
    bodies = {f"r{i}": os.urandom(20 * MIB + 777 * i) for i in range(3)}
    versions = {name: await store.put_object("bkt", name, data) for name, data in bodies.items()}
    # about one 8 MiB batch's share (12 MiB + CRCs): one stream gets a whole batch at a time,
    # the others halve theirs until one fits or they go a block at a time
    store.seg.read_budget = budget = ByteBudget(13 * MIB)
    got: dict[str, bytes] = {}

    async def read(name: str) -> None:
        parts = []
        async for piece in store.read_object(versions[name]):
            parts.append(bytes(piece))
            await trio.lowlevel.checkpoint()  # the streams take turns
        got[name] = b"".join(parts)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for name in bodies:
                nursery.start_soon(read, name)
    assert got == bodies
    assert budget.used == 0 and 0 < budget.peak <= budget.total

    # with nothing free, a read still returns every byte (a block at a time), taking nothing
    budget.try_take(budget.total)
    budget.peak = budget.used
    assert await read_all(store, "bkt", "r1") == bodies["r1"]
    assert await read_all(store, "bkt", "r2", start=5 * MIB + 3, end=17 * MIB) == bodies["r2"][5 * MIB + 3:17 * MIB]
    assert budget.used == budget.total == budget.peak


async def test_a_read_closed_early_gives_its_shares_back(store: ObjectStore) -> None:
    data = os.urandom(40 * MIB)
    v = await store.put_object("bkt", "big", data)
    stream = store.read_object(v)
    first = await anext(aiter(stream))
    assert data.startswith(bytes(first))
    assert store.seg.read_budget.used > 0  # this batch, and the next one read ahead
    await stream.aclose()
    assert store.seg.read_budget.used == 0


@pytest.mark.parametrize(("text", "message"), [
    ("[memory]\nwrite_buffer_bytes = 1024\n", "memory.write_buffer_bytes: must be between 8 MiB and 64 GiB"),
    ("[memory]\nread_buffer_bytes = 1e12\n", "memory.read_buffer_bytes: expected an integer"),
    ("[memory]\nstream_bytes = 1\n", "memory.stream_bytes: unknown setting"),
])
def test_memory_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    assert message in refused(tmp_path, text)


def test_memory_settings_reach_the_store(tmp_path: Path) -> None:
    memory = load_text(tmp_path, "[memory]\nwrite_buffer_bytes = 16777216\nread_buffer_bytes = 33554432\n").memory
    cfg = replace(embedded_config(tmp_path / "app"), memory=memory)
    db = MetaDB(cfg.meta_path)
    try:
        store = ObjectStore(cfg, db, load_disks(cfg, db))
        assert (store.seg.write_budget.total, store.seg.read_budget.total) == (16 * MIB, 32 * MIB)
    finally:
        db.close()

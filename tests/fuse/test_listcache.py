"""Listings from kept attributes (fusefs/listcache.py): never older than the store, whole records
read only when too few are kept, bounded."""

from __future__ import annotations

import stat
from typing import Any

import pytest
from pyfuse3 import EntryAttributes

from appliance.engine import ObjectVersion, PutMeta
from fusefs.attrs import Posix
from fusefs.listcache import ListCache, Listed

from .conftest import CTX, FS


async def listing(fs: FS, path: str) -> dict[str, EntryAttributes]:
    fh = await fs.ops.opendir(await fs.ino(path), CTX)
    out = {name.decode(): e for _, name, _, e, _ in fs.ops.dir_entries(fh, 0)}
    await fs.ops.releasedir(fh)
    return out


def count_whole_pages(monkeypatch: pytest.MonkeyPatch, fs: FS) -> list[str]:
    calls: list[str] = []
    whole = fs.store.list_posix_entries  # the listing's record pages (light decode of each record)

    def counted(*args: Any, **kw: Any) -> Any:
        if kw.get("delimiter") == "/":  # a directory page (not a lookup's look for children)
            calls.append(kw.get("prefix", ""))
        return whole(*args, **kw)

    monkeypatch.setattr(fs.store, "list_posix_entries", counted)
    return calls


def mode_meta(mode: int, uid: int = 0) -> PutMeta:
    return PutMeta(user_meta={"mode": str(stat.S_IFREG | mode), "uid": str(uid), "gid": "0"}, posix_trusted=True)


async def test_second_listing_reads_no_whole_records(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(20):
        await fs.store.put_object("bkt", f"d/f{i:02d}", b"x" * i, mode_meta(0o640, uid=7))
    calls = count_whole_pages(monkeypatch, fs)
    first = await listing(fs, "bkt/d")
    assert calls == ["d/"]  # nothing kept yet: one whole-record page
    second = await listing(fs, "bkt/d")
    assert calls == ["d/"]
    for name in (f"f{i:02d}" for i in range(20)):
        a, b = first[name], second[name]
        assert (b.st_mode, b.st_uid, b.st_size, b.st_mtime_ns) == (a.st_mode, a.st_uid, a.st_size, a.st_mtime_ns)
        assert b.st_mode == stat.S_IFREG | 0o640 and b.st_uid == 7


async def test_changes_from_s3_show_in_the_next_listing(fs: FS) -> None:
    for i in range(8):
        await fs.store.put_object("bkt", f"d/f{i}", b"x", mode_meta(0o644))
    await listing(fs, "bkt/d")
    await fs.store.put_object("bkt", "d/f1", b"longer", mode_meta(0o600, uid=5))  # a new version
    await fs.store.update_meta("bkt", "d/f2", mode_meta(0o700))  # new metadata, same data
    await fs.store.delete_object("bkt", "d/f3")
    after = await listing(fs, "bkt/d")
    assert (after["f1"].st_mode, after["f1"].st_uid, after["f1"].st_size) == (stat.S_IFREG | 0o600, 5, 6)
    assert after["f2"].st_mode == stat.S_IFREG | 0o700
    assert "f3" not in after
    assert after["f4"].st_mode == stat.S_IFREG | 0o644


async def test_mount_writes_are_listed_from_what_they_committed(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        await fs.write_file(f"bkt/w/f{i}", b"data" * i)
    calls = count_whole_pages(monkeypatch, fs)
    listed = await listing(fs, "bkt/w")
    assert calls == []
    assert [listed[f"f{i}"].st_size for i in range(6)] == [4 * i for i in range(6)]
    fh = await fs.open("bkt/w/f2")
    await fs.ops.write(fh, 0, b"0123456789")
    await fs.close(fh)
    assert (await listing(fs, "bkt/w"))["f2"].st_size == 10


async def test_a_change_in_place_drops_what_was_kept(fs: FS) -> None:
    await fs.store.put_object("bkt", "d/f", b"x", mode_meta(0o644))
    await listing(fs, "bkt/d")
    v = fs.store.head_object("bkt", "d/f")
    assert fs.ops.tree.cache.get("bkt", "d/f", v.seq) is not None
    await fs.store.set_tags("bkt", "d/f", None, {"t": "1"})  # same seq, through the listener
    assert fs.ops.tree.cache.get("bkt", "d/f", v.seq) is None


async def test_mostly_unkept_directory_reads_whole_records(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        await fs.store.put_object("bkt", f"d/f{i:02d}", b"x")
    await listing(fs, "bkt/d")
    for i in range(6):  # half of them change: whole records again, not a point read each
        await fs.store.put_object("bkt", f"d/f{i:02d}", b"yy")
    calls = count_whole_pages(monkeypatch, fs)
    after = await listing(fs, "bkt/d")
    assert calls == ["d/"]
    assert [after[f"f{i:02d}"].st_size for i in range(12)] == [2] * 6 + [1] * 6
    await fs.store.put_object("bkt", "d/f11", b"zzz")  # one of twelve: read on its own
    assert (await listing(fs, "bkt/d"))["f11"].st_size == 3
    assert calls == ["d/"]


async def test_hard_linked_files_are_not_kept(fs: FS) -> None:
    await fs.write_file("bkt/h/a", b"linked")
    await fs.ops.link(await fs.ino("bkt/h/a"), await fs.ino("bkt/h"), b"b", CTX)
    entries = await listing(fs, "bkt/h")
    assert entries["a"].st_ino == entries["b"].st_ino and entries["a"].st_nlink == 2
    assert len(fs.ops.tree.cache) == 0


def test_bounded_oldest_dropped_first() -> None:
    cache = ListCache(max_entries=3)
    p = Posix(stat.S_IFREG | 0o644)
    for i in range(5):
        cache.put(ObjectVersion("b", f"k{i}", "null", i, 0), Listed.of(i, "file", p, 0))
    assert len(cache) == 3
    assert cache.get("b", "k0", 0) is None and cache.get("b", "k1", 1) is None
    assert cache.get("b", "k4", 4) is not None
    assert cache.get("b", "k4", 5) is None  # another version of the key

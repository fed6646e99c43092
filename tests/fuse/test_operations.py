"""StowageFS handlers called directly (as the kernel would), over a real in-process store."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import pytest
import trio

from appliance.engine import patch as engine_patch
from appliance.engine.errors import InsufficientShards, InsufficientStorage, KeyTooLong, NoSuchKey
from appliance.engine.objectstore import PutMeta
from fusefs.errnos import errno_for

from .conftest import CTX, FS, ROOT, Fields, md5


async def expect_errno(code: int, coro: object) -> None:
    with pytest.raises(pyfuse3.FUSEError) as info:
        await coro  # type: ignore[misc]
    assert info.value.errno == code, os.strerror(info.value.errno)


async def test_buckets_are_top_level_directories(fs: FS) -> None:
    await fs.mkdir("photos")
    assert "photos" in await fs.listdir("")
    assert fs.store.get_bucket("photos")
    await expect_errno(errno.EINVAL, fs.ops.mkdir(ROOT, b"Bad_Name", 0o755, CTX))
    await expect_errno(errno.EEXIST, fs.ops.mkdir(ROOT, b"photos", 0o755, CTX))
    await fs.write_file("photos/a.jpg", b"jpeg")
    await expect_errno(errno.ENOTEMPTY, fs.ops.rmdir(ROOT, b"photos", CTX))
    await fs.ops.unlink(await fs.ino("photos"), b"a.jpg", CTX)
    await fs.ops.rmdir(ROOT, b"photos", CTX)
    assert "photos" not in await fs.listdir("")
    await expect_errno(errno.EPERM, fs.ops.create(ROOT, b"file", 0o644, os.O_RDWR, CTX))


async def test_file_written_whole_has_md5_etag_and_content_type(fs: FS) -> None:
    data = os.urandom(3 << 20) + b"tail"
    await fs.write_file("bkt/docs/report.pdf", data)
    v = fs.store.head_object("bkt", "docs/report.pdf")
    assert v.size == len(data)
    assert v.etag == md5(data)
    assert v.content_type == "application/pdf"
    assert int(v.user_meta["mode"]) == stat.S_IFREG | 0o644
    assert await fs.read_file("bkt/docs/report.pdf") == data


async def test_large_file_random_write_stores_only_changed_bytes(fs: FS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_patch, "REWRITE_LIMIT", 1 << 20)
    data = bytearray(os.urandom(6 << 20))
    await fs.write_file("bkt/big.bin", bytes(data))
    before = fs.store.head_object("bkt", "big.bin")
    assert before.etag == md5(bytes(data))
    fh = await fs.open("bkt/big.bin")
    patch = os.urandom(4096)
    await fs.ops.write(fh, 3_000_000, patch)
    await fs.ops.fsync(fh, False)
    data[3_000_000:3_004_096] = patch
    after = fs.store.head_object("bkt", "big.bin")
    new_segments = {r.segment_id for r in after.segments} - {r.segment_id for r in before.segments}
    assert len(new_segments) == 1
    seg = fs.store.get_segment(new_segments.pop())
    assert seg.length == 4096  # only the written block was stored
    assert len(after.segments) == 3
    assert after.etag.endswith("-3")  # composite: not claimed to be an MD5
    assert await fs.ops.read(fh, 2_999_000, 6000) == bytes(data[2_999_000:3_005_000])
    await fs.close(fh)
    assert await fs.read_file("bkt/big.bin") == bytes(data)


async def test_overwrite_append_truncate_and_holes(fs: FS) -> None:
    await fs.write_file("bkt/f", b"0123456789")
    fh = await fs.open("bkt/f")
    await fs.ops.write(fh, 2, b"ab")
    await fs.ops.write(fh, 10, b"XY")  # append
    await fs.ops.write(fh, 15, b"Z")  # beyond the end: a hole of zeros
    ino = await fs.ino("bkt/f")
    await fs.ops.setattr(ino, _size(14), Fields(update_size=True), fh, CTX)
    await fs.ops.setattr(ino, _size(17), Fields(update_size=True), fh, CTX)
    await fs.close(fh)
    expect = b"01ab456789XY\0\0" + b"\0" * 3
    assert await fs.read_file("bkt/f") == expect
    assert fs.store.head_object("bkt", "f").etag == md5(expect)
    fh = await fs.open("bkt/f", os.O_RDWR | os.O_TRUNC)
    await fs.close(fh)
    assert fs.store.head_object("bkt", "f").size == 0


def _size(n: int) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_size = n
    return e


async def test_directories_markers_implicit_and_hidden_keys(fs: FS) -> None:
    s = fs.store
    await s.put_object("bkt", "a/b/c.txt", b"c")  # implicit a/ and a/b/
    await s.put_object("bkt", "a/x//y", b"hidden")  # empty segment
    await s.put_object("bkt", "a/./dot", b"hidden")
    await s.put_object("bkt", "a/..", b"hidden")
    await s.put_object("bkt", "m/", b"")  # an s3fs marker for an empty directory
    assert await fs.listdir("bkt") == [".", "..", "a", "m"]
    names = await fs.listdir("bkt/a")
    assert names == [".", "..", "b", "x"]  # x holds only a hidden key; "." and ".." keys hidden
    assert await fs.listdir("bkt/m") == [".", ".."]
    await fs.mkdir("bkt/new", 0o700)
    marker = s.head_object("bkt", "new/")
    assert int(marker.user_meta["mode"]) == stat.S_IFDIR | 0o700
    await expect_errno(errno.ENOTEMPTY, fs.ops.rmdir(await fs.ino("bkt/a"), b"b", CTX))
    await fs.ops.unlink(await fs.ino("bkt/a/b"), b"c.txt", CTX)
    assert await fs.listdir("bkt/a/b") == [".", ".."]  # emptied through the mount: it stays
    await fs.ops.rmdir(await fs.ino("bkt/a"), b"b", CTX)
    await expect_errno(errno.ENOENT, fs.ino("bkt/a/b"))


async def test_directory_hides_file_of_same_name(fs: FS) -> None:
    await fs.store.put_object("bkt", "same", b"file")
    await fs.store.put_object("bkt", "same/inner", b"x")
    assert await fs.listdir("bkt") == [".", "..", "same"]
    attr = await fs.ops.getattr(await fs.ino("bkt/same"), CTX)
    assert stat.S_ISDIR(attr.st_mode)
    await expect_errno(errno.EEXIST, fs.ops.mkdir(await fs.ino("bkt"), b"same", 0o755, CTX))


async def test_readdir_offsets_stable_while_entries_change(fs: FS) -> None:
    for i in range(30):
        await fs.store.put_object("bkt", f"d/f{i:03d}", b"x")
    fh = await fs.ops.opendir(await fs.ino("bkt/d"), CTX)
    first = [(off, name) for off, name, *_ in fs.ops.dir_entries(fh, 0)][:12]
    await fs.store.delete_object("bkt", "d/f000")
    await fs.store.put_object("bkt", "d/f0005", b"new")  # sorts before the resume point
    rest = [(off, name) for off, name, *_ in fs.ops.dir_entries(fh, first[-1][0] + 1)]
    names = [n.decode() for _, n in first + rest]
    assert names[:2] == [".", ".."]
    assert sorted(set(names[2:])) == sorted(names[2:])  # nothing twice
    assert {f"f{i:03d}" for i in range(1, 30)} <= set(names)
    again = [name for _, name, *_ in fs.ops.dir_entries(fh, first[5][0])]
    assert again[0] == first[5][1]  # an old offset resumes at the same entry
    await fs.ops.releasedir(fh)


async def test_rename_file_and_directory_without_copying(fs: FS) -> None:
    await fs.write_file("bkt/src/one", b"1")
    await fs.write_file("bkt/src/sub/two", b"22")
    seg = fs.store.head_object("bkt", "src/sub/two").segments
    bkt = await fs.ino("bkt")
    await fs.ops.rename(bkt, b"src", bkt, b"dst", 0, CTX)
    assert await fs.read_file("bkt/dst/sub/two") == b"22"
    assert fs.store.head_object("bkt", "dst/sub/two").segments == seg
    await expect_errno(errno.ENOENT, fs.ino("bkt/src"))
    dst = await fs.ino("bkt/dst")
    await fs.write_file("bkt/dst/three", b"3")
    await expect_errno(errno.EEXIST, fs.ops.rename(dst, b"one", dst, b"three", pyfuse3.RENAME_NOREPLACE, CTX))
    await expect_errno(errno.EINVAL, fs.ops.rename(dst, b"one", dst, b"three", pyfuse3.RENAME_EXCHANGE, CTX))
    await expect_errno(errno.EISDIR, fs.ops.rename(dst, b"one", dst, b"sub", 0, CTX))
    await expect_errno(errno.ENOTDIR, fs.ops.rename(dst, b"sub", dst, b"one", 0, CTX))
    await fs.ops.rename(dst, b"one", dst, b"three", 0, CTX)
    assert await fs.read_file("bkt/dst/three") == b"1"
    await fs.mkdir("other")
    await expect_errno(errno.EXDEV, fs.ops.rename(dst, b"three", await fs.ino("other"), b"x", 0, CTX))


async def test_rename_of_open_dirty_file_commits_to_new_name(fs: FS) -> None:
    fh = await fs.open("bkt/tmp.part", create=True)
    await fs.ops.write(fh, 0, b"payload")
    bkt = await fs.ino("bkt")
    await fs.ops.rename(bkt, b"tmp.part", bkt, b"final.txt", 0, CTX)
    await fs.ops.write(fh, 7, b"!")
    await fs.close(fh)
    assert await fs.read_file("bkt/final.txt") == b"payload!"
    with pytest.raises(NoSuchKey):
        fs.store.head_object("bkt", "tmp.part")


async def test_a_commit_racing_a_directory_rename_lands_under_the_new_name(fs: FS) -> None:
    # The rename commits the open file first; a write and fsync queued behind that commit
    # started the next one at the old path while the keys moved: it stored a stale copy there,
    # bringing the old directory back (and the next rename back onto it failed with ENOTEMPTY).
    await fs.mkdir("bkt/d1")
    fh = await fs.open("bkt/d1/f", create=True)
    await fs.ops.write(fh, 0, b"one")
    bkt = await fs.ino("bkt")

    async def write_and_fsync() -> None:
        await fs.ops.write(fh, 3, b"two")
        await fs.ops.fsync(fh, False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fs.ops.rename, bkt, b"d1", bkt, b"d2", 0, CTX)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(write_and_fsync)
    await fs.close(fh)
    assert [o.key for o in fs.store.list_objects("bkt").entries] == ["d2/", "d2/f"]
    assert await fs.read_file("bkt/d2/f") == b"onetwo"


async def test_an_open_while_its_directory_is_renamed_does_not_take_the_file_for_deleted(fs: FS) -> None:
    # An open (or read) of a clean file checks the store for outside changes at the node's
    # path. Between the rename's commit and the nodes' new paths (the kernel invalidations the
    # commit waits for run there) that path was empty: the file counted as deleted over S3,
    # its open descriptors were cut loose, and what they wrote next was silently dropped.
    await fs.mkdir("bkt/d1")
    fh = await fs.open("bkt/d1/f", create=True)
    await fs.ops.write(fh, 0, b"one")
    await fs.ops.fsync(fh, False)
    ino = await fs.ino("bkt/d1/f")
    opened: list[int] = []

    async def open_meanwhile(changed: list[tuple[str, str]]) -> None:
        if ("bkt", "d2/f") in changed and not opened:
            opened.append((await fs.ops.open(ino, os.O_RDONLY, CTX)).fh)

    fs.store.add_commit_hook(open_meanwhile)
    bkt = await fs.ino("bkt")
    await fs.ops.rename(bkt, b"d1", bkt, b"d2", 0, CTX)
    assert opened
    await fs.ops.write(fh, 3, b"two")
    await fs.close(fh)
    await fs.close(opened[0])
    assert await fs.read_file("bkt/d2/f") == b"onetwo"


async def test_entries_made_while_their_directory_is_renamed_land_under_the_new_name(fs: FS) -> None:
    # A create, mkdir or chmod in d1 names its key by d1's path, and the kernel does not
    # serialize it with the rename of d1's entry. Made while d1 was being renamed, it failed
    # with ENOENT (d1's path was empty), or, past that check, landed at d1/... after the keys
    # had moved: d1 came back, holding only what was made meanwhile (seen on a real mount).
    # Now it waits for the rename, and the rename for those under way.
    await fs.mkdir("bkt/d1")
    await fs.mkdir("bkt/d1/sub")
    d1, sub = await fs.ino("bkt/d1"), await fs.ino("bkt/d1/sub")

    async def make_entries() -> None:
        fi, _ = await fs.ops.create(d1, b"new", 0o644, os.O_RDWR, CTX)
        await fs.ops.release(fi.fh)
        await fs.ops.mkdir(d1, b"newdir", 0o755, CTX)
        e = pyfuse3.EntryAttributes()
        e.st_mode = stat.S_IFDIR | 0o711
        await fs.ops.setattr(sub, e, Fields(update_mode=True), None, CTX)

    assert await _racing_the_rename_of_d1(fs, make_entries) == ["done"]
    assert [o.key for o in fs.store.list_objects("bkt").entries] == ["d2/", "d2/new", "d2/newdir/", "d2/sub/"]
    assert stat.S_IMODE((await fs.ops.getattr(sub, CTX)).st_mode) == 0o711


async def _racing_the_rename_of_d1(fs: FS, make: object, after: str = "d2/") -> list[str]:
    """Rename bkt/d1 to bkt/d2 and run `make` (an async callable) once the rename's commit of
    `after` is made (keys moved, names not yet): what it made, or the errno it got."""
    got: list[str] = []

    async def run() -> None:
        try:
            await make()  # type: ignore[operator]
            got.append("done")
        except pyfuse3.FUSEError as e:
            got.append(errno.errorcode[e.errno])

    async with trio.open_nursery() as nursery:
        async def meanwhile(changed: list[tuple[str, str]]) -> None:
            if ("bkt", after) in changed and not got and not nursery.child_tasks - {trio.lowlevel.current_task()}:
                nursery.start_soon(run)
                await trio.testing.wait_all_tasks_blocked()

        fs.store.add_commit_hook(meanwhile)
        bkt = await fs.ino("bkt")
        await fs.ops.rename(bkt, b"d1", bkt, b"d2", 0, CTX)
    return got


@pytest.mark.parametrize("what", ["subdir", "file within", "file out", "file in", "link within", "link in",
                                  "stat and lookup"])
async def test_renames_and_links_below_a_directory_being_renamed_act_under_its_new_name(fs: FS, what: str) -> None:
    # The kernel does not serialize a rename or link below d1 with the rename of d1's own
    # entry (only d1's parent is locked). Made while d1 was being renamed, they looked for their
    # source at d1/... after the keys had moved (ENOENT, where ext4 succeeds), or stored their
    # key at d1/...: d1 came back holding only that entry. Now they wait for the rename.
    await fs.mkdir("bkt/d1")
    await fs.write_file("bkt/d1/sub/inner", b"inner")
    await fs.write_file("bkt/d1/f", b"eff")
    await fs.write_file("bkt/x/g", b"gee")
    d1, x = await fs.ino("bkt/d1"), await fs.ino("bkt/x")
    f, g = await fs.ino("bkt/d1/f"), await fs.ino("bkt/x/g")

    async def look() -> None:  # (these only read: in the window they found nothing, ENOENT/ESTALE)
        await fs.ops.getattr(d1, CTX)
        await fs.ops.lookup(d1, b"f", CTX)
        await fs.ops.getattr(f, CTX)
        await fs.ops.listxattr(f, CTX)
        fh = await fs.ops.opendir(d1, CTX)
        assert sorted(name for _, name, _, _, _ in fs.ops.dir_entries(fh, 0)) == [b".", b"..", b"f", b"sub"]
        await fs.ops.releasedir(fh)

    make, keys = {
        "subdir": (lambda: fs.ops.rename(d1, b"sub", d1, b"sub2", 0, CTX), {"d2/sub2/inner", "d2/f", "x/g"}),
        "file within": (lambda: fs.ops.rename(d1, b"f", d1, b"f2", 0, CTX), {"d2/sub/inner", "d2/f2", "x/g"}),
        "file out": (lambda: fs.ops.rename(d1, b"f", x, b"f", 0, CTX), {"d2/sub/inner", "x/f", "x/g"}),
        "file in": (lambda: fs.ops.rename(x, b"g", d1, b"g", 0, CTX), {"d2/sub/inner", "d2/f", "d2/g"}),
        "link within": (lambda: fs.ops.link(f, d1, b"f2", CTX), {"d2/sub/inner", "d2/f", "d2/f2", "x/g"}),
        "link in": (lambda: fs.ops.link(g, d1, b"g", CTX), {"d2/sub/inner", "d2/f", "d2/g", "x/g"}),
        "stat and lookup": (lambda: look(), {"d2/sub/inner", "d2/f", "x/g"}),
    }[what]
    assert await _racing_the_rename_of_d1(fs, make) == ["done"]
    assert {o.key for o in fs.store.list_objects("bkt").entries if not o.key.endswith("/")} == keys
    assert not any(o.key.startswith("d1/") for o in fs.store.list_objects("bkt").entries)
    for key in keys:
        assert await fs.read_file(f"bkt/{key}") == {"i": b"inner", "f": b"eff", "g": b"gee"}[key.split("/")[-1][0]]


async def test_a_rename_of_a_directory_waits_for_a_rename_below_it_under_way(fs: FS) -> None:
    # The other order: d1/sub is being renamed to d1/sub2 (its keys moved, its nodes not yet)
    # when the rename of d1 starts. That rename moved what it found under d1/ and took the
    # nodes along; the rename below then gave its nodes their d1/sub2 paths, under no key.
    await fs.write_file("bkt/d1/sub/inner", b"inner")
    d1 = await fs.ino("bkt/d1")
    inner = await fs.ino("bkt/d1/sub/inner")
    bkt = await fs.ino("bkt")
    got: list[str] = []

    def held_back() -> bool:  # the rename of d1 waits for this one, which holds d1
        return ("bkt", "d1/") in fs.ops.renaming and any(use == ("bkt", "d1") for op in fs.ops.in_dirs.values()
                                                          for use in op)

    async def rename_d1() -> None:
        await fs.ops.rename(bkt, b"d1", bkt, b"d2", 0, CTX)
        got.append("renamed")

    async with trio.open_nursery() as nursery:
        async def meanwhile(changed: list[tuple[str, str]]) -> None:
            if ("bkt", "d1/sub2/") in changed and not got:
                got.append("started")
                nursery.start_soon(rename_d1)
                while got == ["started"] and not held_back():  # (its store commits run in threads)
                    await trio.sleep(0.001)

        fs.store.add_commit_hook(meanwhile)
        await fs.ops.rename(d1, b"sub", d1, b"sub2", 0, CTX)
    assert got == ["started", "renamed"]
    assert [o.key for o in fs.store.list_objects("bkt").entries] == ["d2/", "d2/sub2/", "d2/sub2/inner"]
    assert await fs.read_file("bkt/d2/sub2/inner") == b"inner"
    fh = (await fs.ops.open(inner, os.O_RDONLY, CTX)).fh  # the node kept its file
    assert await fs.ops.read(fh, 0, 10) == b"inner"
    await fs.close(fh)


async def test_unlinked_open_file_keeps_reading_and_is_not_recreated(fs: FS) -> None:
    await fs.write_file("bkt/gone", b"still here")
    fh = await fs.open("bkt/gone")
    await fs.ops.unlink(await fs.ino("bkt"), b"gone", CTX)
    assert await fs.ops.read(fh, 0, 100) == b"still here"
    await fs.ops.write(fh, 0, b"S")
    await fs.close(fh)
    with pytest.raises(NoSuchKey):
        fs.store.head_object("bkt", "gone")


async def test_attributes_persist_as_s3fs_metadata_and_read_rclone(fs: FS) -> None:
    await fs.write_file("bkt/f", b"x")
    ino = await fs.ino("bkt/f")
    e = pyfuse3.EntryAttributes()
    e.st_mode, e.st_uid, e.st_gid = 0o600, 1000, 1001
    e.st_mtime_ns, e.st_atime_ns = 1_600_000_000_123_456_789, 1_500_000_000_000_000_000
    await fs.ops.setattr(ino, e, Fields(update_mode=True, update_uid=True, update_gid=True, update_mtime=True,
                                        update_atime=True), None, CTX)
    um = fs.store.head_object("bkt", "f").user_meta
    assert um["mode"] == str(stat.S_IFREG | 0o600) and um["uid"] == "1000" and um["gid"] == "1001"
    assert um["mtime"] == "1600000000.123456789" and um["atime"] == "1500000000"
    a = await fs.ops.getattr(ino, CTX)
    assert (a.st_mode, a.st_uid, a.st_mtime_ns) == (stat.S_IFREG | 0o600, 1000, 1_600_000_000_123_456_789)
    # written by s3fs (with a key allowed to set POSIX attributes): decimal mode, integer seconds
    await fs.store.put_object("bkt", "s3fs", b"x", PutMeta(user_meta={"mode": "33261", "mtime": "1700000000",
                                                                      "uid": "7"}, posix_trusted=True))
    a = await fs.ops.getattr(await fs.ino("bkt/s3fs"), CTX)
    assert (a.st_mode, a.st_mtime_ns, a.st_uid) == (stat.S_IFREG | 0o755, 1_700_000_000 * 10**9, 7)
    # written by rclone: octal mode, float mtime
    await fs.store.put_object("bkt", "rc", b"x", PutMeta(user_meta={"mode": "100640", "mtime": "1700000000.5"},
                                                         posix_trusted=True))
    a = await fs.ops.getattr(await fs.ino("bkt/rc"), CTX)
    assert (a.st_mode, a.st_mtime_ns) == (stat.S_IFREG | 0o640, 1_700_000_000_500_000_000)
    # no metadata: the bucket's defaults (private to root unless configured)
    v = await fs.store.put_object("bkt", "plain", b"x")
    a = await fs.ops.getattr(await fs.ino("bkt/plain"), CTX)
    assert (a.st_mode, a.st_uid, a.st_mtime_ns) == (stat.S_IFREG | 0o600, 0, v.last_modified_ns)
    a = await fs.ops.getattr(await fs.ino("bkt"), CTX)
    assert a.st_mode == stat.S_IFDIR | 0o700
    # untrusted (an S3 writer without stowage:PutPosixAttributes): mode/uid/gid ignored, times kept
    await fs.store.put_object("bkt", "untrusted", b"x", PutMeta(user_meta={"mode": "33279", "uid": "7", "gid": "7",
                                                                           "mtime": "1700000000"}))
    a = await fs.ops.getattr(await fs.ino("bkt/untrusted"), CTX)
    assert (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == (stat.S_IFREG | 0o600, 0, 0, 1_700_000_000 * 10**9)


async def test_symlinks_in_s3fs_convention(fs: FS) -> None:
    bkt = await fs.ino("bkt")
    e = await fs.ops.symlink(bkt, b"ln", b"../target/file", CTX)
    assert stat.S_ISLNK(e.st_mode) and e.st_size == len(b"../target/file")
    assert await fs.ops.readlink(e.st_ino, CTX) == b"../target/file"
    v = fs.store.head_object("bkt", "ln")
    assert stat.S_ISLNK(int(v.user_meta["mode"]))
    await fs.store.put_object("bkt", "s3fslink", b"dest", PutMeta(user_meta={"mode": str(stat.S_IFLNK | 0o777)},
                                                                   posix_trusted=True))
    assert await fs.ops.readlink(await fs.ino("bkt/s3fslink"), CTX) == b"dest"
    # only a trusted mode makes a symlink: an untrusted one is a regular file holding the target
    await fs.store.put_object("bkt", "fakelink", b"/etc/shadow", PutMeta(user_meta={"mode": str(stat.S_IFLNK | 0o777)}))
    a = await fs.ops.getattr(await fs.ino("bkt/fakelink"), CTX)
    assert a.st_mode == stat.S_IFREG | 0o600
    await expect_errno(errno.EINVAL, fs.ops.readlink(a.st_ino, CTX))


async def test_user_xattrs(fs: FS) -> None:
    await fs.write_file("bkt/f", b"x")
    ino = await fs.ino("bkt/f")
    await fs.ops.setxattr(ino, b"user.colour", b"blue\0bin", CTX)
    assert await fs.ops.getxattr(ino, b"user.colour", CTX) == b"blue\0bin"
    assert await fs.ops.listxattr(ino, CTX) == [b"user.colour"]
    assert "xattr" in fs.store.head_object("bkt", "f").user_meta
    await expect_errno(errno.ENOTSUP, fs.ops.setxattr(ino, b"trusted.x", b"1", CTX))
    await expect_errno(errno.ENOTSUP, fs.ops.getxattr(ino, b"security.capability", CTX))
    await fs.ops.removexattr(ino, b"user.colour", CTX)
    await expect_errno(pyfuse3.ENOATTR, fs.ops.getxattr(ino, b"user.colour", CTX))
    await fs.mkdir("bkt/d")
    d = await fs.ino("bkt/d")
    await fs.ops.setxattr(d, b"user.k", b"v", CTX)
    assert await fs.ops.getxattr(d, b"user.k", CTX) == b"v"


async def test_statfs_reports_usable_capacity(fs: FS) -> None:
    s = await fs.ops.statfs(CTX)
    cap = fs.store.capacity()
    assert s.f_blocks * s.f_frsize == cap.usable_total // 4096 * 4096
    assert 0 < s.f_bavail <= s.f_blocks


async def test_name_errors(fs: FS) -> None:
    bkt = await fs.ino("bkt")
    await expect_errno(errno.ENAMETOOLONG, fs.ops.lookup(bkt, b"n" * 256, CTX))
    await expect_errno(errno.ENOENT, fs.ops.lookup(bkt, b"missing", CTX))
    deep = await fs.ino("bkt")
    for i in range(20):  # keys up to 4095 bytes (PATH_MAX less its NUL); a marker takes one more
        e = await fs.ops.mkdir(deep, b"d" * 200 + str(i % 10).encode(), 0o755, CTX)
        deep = e.st_ino
    key = "/".join(["d" * 200 + str(i % 10) for i in range(20)])  # 4039 bytes
    await expect_errno(errno.ENAMETOOLONG, fs.ops.create(deep, b"f" * 56, 0o644, os.O_RDWR, CTX))
    await expect_errno(errno.ENAMETOOLONG, fs.ops.mkdir(deep, b"d" * 55, 0o755, CTX))
    fi, _ = await fs.ops.create(deep, b"f" * 55, 0o644, os.O_RDWR, CTX)
    await fs.ops.release(fi.fh)
    await fs.ops.mkdir(deep, b"d" * 54, 0o755, CTX)
    assert len(f"{key}/{'f' * 55}") == 4095 and fs.store.head_object("bkt", f"{key}/{'f' * 55}").size == 0
    assert [o.key for o in fs.store.list_objects("bkt", prefix=key + "/").entries] == [
        f"{key}/", f"{key}/{'d' * 54}/", f"{key}/{'f' * 55}"]
    await fs.write_file("bkt/file", b"x")
    await expect_errno(errno.ENOTDIR, fs.ops.lookup(await fs.ino("bkt/file"), b"x", CTX))
    await expect_errno(errno.EISDIR, fs.ops.unlink(bkt, b"d" * 200 + b"0", CTX))


def test_errno_table() -> None:
    assert errno_for(InsufficientStorage()) == errno.ENOSPC
    assert errno_for(InsufficientShards()) == errno.EIO
    assert errno_for(KeyTooLong()) == errno.ENAMETOOLONG
    assert errno_for(NoSuchKey()) == errno.ENOENT
    assert errno_for(RuntimeError()) == errno.EIO


async def test_outside_change_is_queued_for_invalidation(fs: FS) -> None:
    await fs.write_file("bkt/dir/f", b"old")
    ino = await fs.ino("bkt/dir/f")
    assert not fs.ops.pending  # our own commits need no invalidation
    await fs.store.put_object("bkt", "dir/f", b"new!")
    calls = fs.ops.last_invalidations  # computed by the commit hook (no kernel to tell here)
    assert ("inode", ino, b"") in calls and ("entry", await fs.ino("bkt/dir"), b"f") in calls
    assert await fs.read_file("bkt/dir/f") == b"new!"

"""Hard links and special files in StowageFS, driven like the kernel drives it (no mount)."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import pytest

from appliance.engine import PutMeta

from .conftest import CTX, FS


async def expect_errno(code: int, coro: object) -> None:
    with pytest.raises(pyfuse3.FUSEError) as info:
        await coro  # type: ignore[misc]
    assert info.value.errno == code


async def test_every_name_of_a_file_is_one_inode(fs: FS) -> None:
    await fs.write_file("bkt/d/f", b"content")
    f = await fs.ino("bkt/d/f")
    e = await fs.ops.link(f, await fs.ino("bkt"), b"g", CTX)
    assert e.st_ino == f and e.st_nlink == 2
    assert (await fs.ops.lookup(await fs.ino("bkt"), b"g", CTX)).st_ino == f
    inode_id = fs.store.head_object("bkt", "g").inode
    assert fs.store.get_inode("bkt", inode_id).links == ["d/f", "g"]  # type: ignore[union-attr]
    await expect_errno(errno.EEXIST, fs.ops.link(f, await fs.ino("bkt"), b"g", CTX))
    await expect_errno(errno.EPERM, fs.ops.link(await fs.ino("bkt/d"), await fs.ino("bkt"), b"dirlink", CTX))
    await fs.store.create_bucket("other")
    await expect_errno(errno.EXDEV, fs.ops.link(f, await fs.ino("other"), b"x", CTX))

    # written through one name, read through the other
    fh = await fs.open("bkt/g")
    await fs.ops.write(fh, 0, b"CONTENT!")
    await fs.close(fh)
    assert await fs.read_file("bkt/d/f") == b"CONTENT!"

    # a rename keeps the identity; the primary name can go, the node lives on
    await fs.ops.rename(await fs.ino("bkt/d"), b"f", await fs.ino("bkt"), b"f2", 0, CTX)
    assert (await fs.ops.lookup(await fs.ino("bkt"), b"f2", CTX)).st_ino == f
    fh = await fs.open("bkt/f2")
    await fs.ops.unlink(await fs.ino("bkt"), b"f2", CTX)
    assert (await fs.ops.getattr(f, CTX)).st_nlink == 1
    await fs.ops.write(fh, 0, b"still one file")
    await fs.close(fh)
    assert await fs.read_file("bkt/g") == b"still one file"
    fh = await fs.open("bkt/g")
    await fs.ops.unlink(await fs.ino("bkt"), b"g", CTX)
    assert (await fs.ops.getattr(f, CTX)).st_nlink == 0  # open, every name gone
    await fs.close(fh)
    assert fs.store.get_inode("bkt", inode_id) is None


async def test_an_s3_write_to_one_name_leaves_the_others(fs: FS) -> None:
    await fs.write_file("bkt/f", b"shared")
    f = await fs.ino("bkt/f")
    await fs.ops.link(f, await fs.ino("bkt"), b"g", CTX)
    await fs.ops.link(f, await fs.ino("bkt"), b"h", CTX)
    await fs.store.put_object("bkt", "f", b"a new file")  # the node's primary name
    assert (await fs.ops.getattr(f, CTX)).st_nlink == 2
    assert fs.ops.inodes.get(f).path in ("g", "h")
    new = await fs.ino("bkt/f")
    assert new != f and await fs.read_file("bkt/f") == b"a new file"
    assert await fs.read_file("bkt/h") == b"shared"
    await fs.store.delete_object("bkt", "g")
    assert (await fs.ops.getattr(f, CTX)).st_nlink == 1


async def test_special_files_are_objects_with_their_type_in_the_mode(fs: FS) -> None:
    bkt = await fs.ino("bkt")
    fifo = await fs.ops.mknod(bkt, b"fifo", stat.S_IFIFO | 0o640, 0, CTX)
    dev = await fs.ops.mknod(bkt, b"null", stat.S_IFCHR | 0o666, os.makedev(1, 3), CTX)
    sock = await fs.ops.mknod(bkt, b"sock", stat.S_IFSOCK | 0o755, 0, CTX)
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_ISSOCK(sock.st_mode)
    assert stat.S_ISCHR(dev.st_mode) and dev.st_rdev == os.makedev(1, 3)
    v = fs.store.head_object("bkt", "null")
    assert v.size == 0 and v.user_meta["mode"] == str(stat.S_IFCHR | 0o666) and v.user_meta["rdev"] == "259"
    await expect_errno(errno.EEXIST, fs.ops.mknod(bkt, b"fifo", stat.S_IFIFO | 0o640, 0, CTX))
    assert sorted(await fs.listdir("bkt")) == [".", "..", "fifo", "null", "sock"]
    # what an untrusted writer stores as a "device" is a regular file
    await fs.store.put_object("bkt", "fake", b"", PutMeta(user_meta={"mode": str(stat.S_IFCHR | 0o666)}))
    assert stat.S_ISREG((await fs.ops.lookup(bkt, b"fake", CTX)).st_mode)


async def test_directory_link_counts_follow_subdirectories(fs: FS) -> None:
    await fs.mkdir("bkt/d")
    d = await fs.ino("bkt/d")
    assert (await fs.ops.getattr(d, CTX)).st_nlink == 2
    await fs.mkdir("bkt/d/a")
    await fs.write_file("bkt/d/file", b"")
    assert (await fs.ops.getattr(d, CTX)).st_nlink == 3
    await fs.store.put_object("bkt", "d/implicit/x", b"")  # an implicit subdirectory, made over S3
    assert (await fs.ops.getattr(d, CTX)).st_nlink == 4
    await fs.ops.rmdir(d, b"a", CTX)
    assert (await fs.ops.getattr(d, CTX)).st_nlink == 3
    bkt = await fs.ino("bkt")
    assert (await fs.ops.getattr(bkt, CTX)).st_nlink == 3

"""Fixtures for the mount: StowageFS over an in-process store, and helpers for both suites."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyfuse3
import pytest

from appliance.config import DiskConfig, PoolConfig, embedded_config
from appliance.engine.diskload import load_disks
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.iam.kms import Kms
from appliance.iam.masterkey import load_or_create
from appliance.iam.objectkeys import ObjectKeys
from fusefs.operations import StowageFS


@dataclass
class Ctx:
    """What the kernel passes as pyfuse3.RequestContext."""

    uid: int = 0
    gid: int = 0
    pid: int = 1
    umask: int = 0o022


@dataclass
class Fields:
    """pyfuse3.SetattrFields stand-in (its attributes are read-only in the C class)."""

    update_atime: bool = False
    update_mtime: bool = False
    update_ctime: bool = False
    update_mode: bool = False
    update_uid: bool = False
    update_gid: bool = False
    update_size: bool = False


CTX = Ctx()
ROOT = pyfuse3.ROOT_INODE


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FS:
    """A StowageFS with path-level helpers, driven like the kernel drives it."""

    def __init__(self, ops: StowageFS, store: ObjectStore) -> None:
        self.ops = ops
        self.store = store

    async def ino(self, path: str) -> int:
        ino = ROOT
        for part in [p for p in path.split("/") if p]:
            ino = (await self.ops.lookup(ino, part.encode(), CTX)).st_ino
        return ino

    async def split(self, path: str) -> tuple[int, bytes]:
        parent, _, name = path.rpartition("/")
        return await self.ino(parent), name.encode()

    async def mkdir(self, path: str, mode: int = 0o755) -> int:
        parent, name = await self.split(path)
        return (await self.ops.mkdir(parent, name, mode, CTX)).st_ino

    async def open(self, path: str, flags: int = os.O_RDWR, create: bool = False) -> int:
        if create:
            parent, name = await self.split(path)
            fi, _ = await self.ops.create(parent, name, 0o644, flags | os.O_CREAT, CTX)
            return fi.fh
        return (await self.ops.open(await self.ino(path), flags, CTX)).fh

    async def close(self, fh: int) -> None:
        await self.ops.flush(fh)
        await self.ops.release(fh)

    async def makedirs(self, path: str) -> None:
        parts = path.split("/")
        for i in range(2, len(parts) + 1):
            try:
                await self.ino("/".join(parts[:i]))
            except pyfuse3.FUSEError:
                await self.mkdir("/".join(parts[:i]))

    async def write_file(self, path: str, data: bytes, chunk: int = 128 << 10) -> None:
        await self.makedirs(path.rpartition("/")[0])
        fh = await self.open(path, create=True)
        for off in range(0, len(data), chunk):
            await self.ops.write(fh, off, data[off : off + chunk])
        await self.close(fh)

    async def read_file(self, path: str) -> bytes:
        fh = await self.open(path, os.O_RDONLY)
        size = (await self.ops.getattr(await self.ino(path), CTX)).st_size
        out = b""
        while len(out) < size:
            piece = await self.ops.read(fh, len(out), 1 << 20)
            if not piece:
                break
            out += piece
        await self.close(fh)
        return out

    async def listdir(self, path: str) -> list[str]:
        fh = await self.ops.opendir(await self.ino(path), CTX)
        names = [name.decode() for _, name, _, _, _ in self.ops.dir_entries(fh, 0)]
        await self.ops.releasedir(fh)
        return names


def open_store(root: Path, block_size: int = 1 << 20) -> ObjectStore:
    cfg = replace(embedded_config(root), disks=[DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(6)],
                  pools={"default": PoolConfig(block_size=block_size)})
    db = MetaDB(cfg.meta_path)
    return ObjectStore(cfg, db, load_disks(cfg, db))


def object_keys(store: ObjectStore) -> ObjectKeys:
    """The KMS over the store's DB and the embedded master key."""
    return ObjectKeys(Kms(store.db, load_or_create(store.cfg.master_key_path)))


@pytest.fixture
async def fs(tmp_path: Path) -> AsyncIterator[FS]:
    store = open_store(tmp_path / "app")
    await store.create_bucket("bkt")
    try:
        yield FS(StowageFS(store, store.cfg, object_keys(store)), store)
    finally:
        store.db.close()


def mounted(daemon: Any) -> Path:
    assert daemon.mount, f"the daemon did not mount:\n{daemon.log_tail()}"
    return Path(daemon.mount)


def fuse_available() -> bool:
    return os.path.exists("/dev/fuse") and os.access("/dev/fuse", os.R_OK | os.W_OK)


needs_fuse = pytest.mark.skipif(not fuse_available(), reason="/dev/fuse is not usable here")


@pytest.fixture
def mount_daemon(daemon_factory: Any) -> Any:
    """A real `stowage serve` with the mount on (at DATA/mnt)."""
    if not fuse_available():
        pytest.skip("/dev/fuse is not usable here")
    return daemon_factory([])



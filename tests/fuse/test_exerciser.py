"""A seeded random-operation exerciser on the real mount, checked against an in-memory model.

Operations: open (with/without O_TRUNC), pwrite at random offsets (holes included), pread,
ftruncate, append, rename (over existing files too), fsync, close, unlink. Several descriptors
may be open on one file at once. After every step that reads, and at the end through both the
mount and S3, the contents must equal the model's.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import pytest

from .conftest import mounted

BIG = 9 << 20  # above appliance.engine.patch.REWRITE_LIMIT: commits store only the changed ranges


def exercise(root: Path, seed: int, steps: int) -> dict[str, bytearray]:
    rng = random.Random(seed)
    model: dict[str, bytearray] = {}
    fds: list[tuple[int, str]] = []  # (fd, name at open time; renames update it)
    names = [f"f{i}" for i in range(5)]

    big = bytearray(rng.randbytes(BIG))
    (root / "big").write_bytes(big)
    model["big"] = big

    def rename_fds(old: str, new: str) -> None:
        for i, (fd, n) in enumerate(fds):
            if n == old:
                fds[i] = (fd, new)
            elif n == new:
                fds[i] = (fd, "")  # the replaced file lives on, unnamed

    for step in range(steps):
        op = rng.choice(["open", "open", "write", "write", "write", "read", "truncate", "append",
                         "rename", "fsync", "close", "close", "unlink"])
        if op == "open" or (not fds and op in ("write", "read", "truncate", "append", "fsync", "close")):
            name = rng.choice([*names, "big"])
            trunc = rng.random() < 0.15 and name != "big"
            flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if trunc else 0)
            fd = os.open(root / name, flags, 0o644)
            if name not in model or trunc:
                model[name] = bytearray()
            fds.append((fd, name))
            continue
        if op in ("rename", "unlink"):
            present = sorted(model)
            if not present:
                continue
            src = rng.choice(present)
            if op == "unlink":
                os.unlink(root / src)
                del model[src]
                rename_fds(src, "")
                fds[:] = [(fd, n if n != src else "") for fd, n in fds]
            else:
                dst = rng.choice([*names, "big"])
                os.rename(root / src, root / dst)
                if src != dst:
                    model[dst] = model.pop(src)
                    rename_fds(src, dst)
            continue
        fd, name = rng.choice(fds)
        data = model.get(name) if name else None
        if op == "close":
            os.close(fd)
            fds.remove((fd, name))
            continue
        if data is None:
            continue  # unnamed (unlinked/replaced) descriptor: leave it alone
        if op == "write":
            limit = len(data) + 4096
            off = rng.randrange(0, max(1, limit))
            buf = rng.randbytes(rng.choice([1, 100, 4096, 70000]))
            assert os.pwrite(fd, buf, off) == len(buf)
            if off > len(data):
                data.extend(bytes(off - len(data)))
            data[off : off + len(buf)] = buf
        elif op == "append":
            buf = rng.randbytes(rng.randrange(1, 20000))
            os.pwrite(fd, buf, len(data))
            data.extend(buf)
        elif op == "truncate":
            size = rng.randrange(0, len(data) + 50000)
            os.ftruncate(fd, size)
            if size < len(data):
                del data[size:]
            else:
                data.extend(bytes(size - len(data)))
        elif op == "read":
            off = rng.randrange(0, len(data) + 10)
            n = rng.randrange(0, 100000)
            assert os.pread(fd, n, off) == bytes(data[off : off + n]), f"seed {seed} step {step}"
        elif op == "fsync":
            os.fsync(fd)
    for fd, _ in fds:
        os.close(fd)
    return model


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_match_model(mount_daemon: Any, seed: int) -> None:
    m = mounted(mount_daemon)
    bucket = f"ex{seed}"
    os.mkdir(m / bucket)
    model = exercise(m / bucket, seed, 400)
    assert sorted(os.listdir(m / bucket)) == sorted(model)
    s3 = mount_daemon.s3()
    for name, data in model.items():
        assert (m / bucket / name).read_bytes() == bytes(data), name
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["Body"].read() == bytes(data), name
        etag = got["ETag"].strip('"')
        if "-" not in etag:  # a plain ETag must be the true MD5
            assert etag == hashlib.md5(data).hexdigest(), name

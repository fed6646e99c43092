"""The fault disk itself: a faithful passthrough, each kind of fault, and power cuts that keep
exactly what fsync/fdatasync made durable (checked against a reference model of random runs)."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.faultfs import FaultDisk, usable
from tests.polling import wait_for

pytestmark = pytest.mark.skipif(not usable(), reason="needs root and /dev/fuse")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[FaultDisk]:
    with FaultDisk.start(tmp_path / "base", tmp_path / "mnt") as d:
        yield d


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes, *, sync: bool = False, offset: int | None = None, trunc: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc and offset is None else 0)
    fd = os.open(path, flags, 0o644)
    try:
        if offset is None:
            os.write(fd, data)
        else:
            os.pwrite(fd, data, offset)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_passthrough(disk: FaultDisk) -> None:
    m = disk.mountpoint
    (m / "d" / "e").mkdir(parents=True)
    write(m / "d" / "f", b"hello world")
    assert (m / "d" / "f").read_bytes() == b"hello world"
    assert (disk.tree / "d" / "f").read_bytes() == b"hello world"  # really passed through
    os.rename(m / "d" / "f", m / "d" / "e" / "g")
    os.link(m / "d" / "e" / "g", m / "h")
    assert os.stat(m / "h").st_nlink == 2
    os.symlink("d/e/g", m / "s")
    assert (m / "s").read_bytes() == b"hello world" and os.readlink(m / "s") == "d/e/g"
    os.truncate(m / "h", 5)
    assert (m / "d" / "e" / "g").read_bytes() == b"hello"
    os.setxattr(m / "h", "user.k", b"v")
    assert os.getxattr(m / "h", "user.k") == b"v" and "user.k" in os.listxattr(m / "h")
    os.chmod(m / "h", 0o600)
    assert os.stat(m / "h").st_mode & 0o777 == 0o600
    os.unlink(m / "h")
    with pytest.raises(OSError) as exc:
        os.rmdir(m / "d")
    assert exc.value.errno == errno.ENOTEMPTY
    os.unlink(m / "d" / "e" / "g")
    os.rmdir(m / "d" / "e")
    assert sorted(os.listdir(m)) == ["d", "s"]
    st = os.statvfs(m)
    assert st.f_bavail > 0


def test_eio_by_path_and_kind(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "a.log", b"x" * 100)
    write(m / "b.dat", b"y" * 100)
    rule = disk.control.eio("reads", path="*.log")
    with pytest.raises(OSError) as exc:
        (m / "a.log").read_bytes()
    assert exc.value.errno == errno.EIO
    assert (m / "b.dat").read_bytes() == b"y" * 100  # another path
    write(m / "a.log", b"z")  # writes are not reads
    assert disk.control.hits(rule) >= 1  # the kernel may retry a failed page read once
    disk.control.release(rule)
    assert (m / "a.log").read_bytes() == b"z"


def test_eio_with_probability_after_and_times(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"data")
    disk.control.eio("reads", probability=0.5, seed=3)
    outcomes = []
    for _ in range(40):
        try:
            (m / "f").read_bytes()
            outcomes.append(True)
        except OSError as exc:
            assert exc.errno == errno.EIO
            outcomes.append(False)
    assert 0 < outcomes.count(False) < len(outcomes)  # some fail, not all
    disk.control.clear()
    rule = disk.control.eio("write", after=2, times=1)
    fd = os.open(m / "f", os.O_WRONLY)
    try:
        os.pwrite(fd, b"1", 0)
        os.pwrite(fd, b"2", 1)
        with pytest.raises(OSError):
            os.pwrite(fd, b"3", 2)  # the third write fails, once
        os.pwrite(fd, b"4", 3)
    finally:
        os.close(fd)
    assert disk.control.hits(rule) == 1
    assert (m / "f").read_bytes() == b"12t4"


def test_enospc_and_full(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"before")
    disk.control.fill()
    assert os.statvfs(m).f_bavail == 0
    with pytest.raises(OSError) as exc:
        write(m / "g", b"x")
    assert exc.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as exc:
        write(m / "f", b"more", offset=6)
    assert exc.value.errno == errno.ENOSPC
    assert (m / "f").read_bytes() == b"before"  # reads still work
    disk.control.fill(False)
    disk.control.enospc("fsync", path="f")
    fd = os.open(m / "f", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as exc:
            os.fsync(fd)
        assert exc.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_latency(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"x")
    disk.control.latency(0.3, "reads")
    t0 = time.monotonic()
    (m / "f").read_bytes()
    assert time.monotonic() - t0 >= 0.3


def test_hang_until_released(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"x")
    rule = disk.control.hang("reads", path="f")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append((m / "f").read_bytes()))
    reader.start()
    wait_for(lambda: disk.control.hung() == 1, timeout=30, what="the operation to hang")
    assert not got  # still waiting
    write(m / "g", b"other files are served meanwhile")
    assert (m / "g").read_bytes().startswith(b"other")
    disk.control.release(rule)
    reader.join(30)
    assert got == [b"x"]


def test_stall_ends_by_itself(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"x")
    disk.control.stall(0.5, "reads")
    t0 = time.monotonic()
    assert (m / "f").read_bytes() == b"x"
    assert time.monotonic() - t0 >= 0.4  # a lower bound: load only makes it longer
    (m / "f").read_bytes()  # the stall is over
    assert disk.control.hung() == 0


def test_power_cut_fails_a_hung_operation(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"x", sync=True)
    fsync_path(m)
    disk.control.hang("write")
    errors: list[int] = []

    def writer() -> None:
        try:
            write(m / "f", b"never", offset=0)
        except OSError as exc:
            errors.append(exc.errno or 0)

    t = threading.Thread(target=writer)
    t.start()
    wait_for(lambda: disk.control.hung() == 1, timeout=30, what="the operation to hang")
    disk.control.power_cut()
    t.join(30)
    assert errors == [errno.EIO]
    assert (m / "f").read_bytes() == b"x"


def test_power_cut_file_data(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"0123456789", sync=True)
    fsync_path(m)
    write(m / "f", b"AB", offset=2)  # overwrite inside the durable data
    write(m / "f", b"tail", offset=10)  # extend
    os.truncate(m / "f", 4)
    write(m / "f", b"zz", offset=20)
    write(m / "g", b"fdatasync'ed", sync=False)
    fd = os.open(m / "g", os.O_WRONLY)
    os.fdatasync(fd)
    os.close(fd)
    fsync_path(m)
    write(m / "g", b"XX", offset=0)
    disk.control.power_cut()
    assert (m / "f").read_bytes() == b"0123456789"
    assert (m / "g").read_bytes() == b"fdatasync'ed"


def test_power_cut_names(disk: FaultDisk) -> None:
    m = disk.mountpoint
    (m / "a").mkdir()
    (m / "b").mkdir()
    fsync_path(m)
    write(m / "a" / "kept", b"k", sync=True)
    write(m / "a" / "moved", b"m", sync=True)
    write(m / "a" / "gone", b"g", sync=True)
    fsync_path(m / "a")
    write(m / "a" / "new", b"n", sync=True)  # data synced, name never
    os.rename(m / "a" / "moved", m / "b" / "moved")  # only b synced: both names after a cut
    fsync_path(m / "b")
    os.unlink(m / "a" / "gone")  # unlink not followed by a directory fsync: back after a cut
    os.rename(m / "a" / "kept", m / "a" / "renamed")  # not synced: the old name stays
    disk.control.power_cut()
    assert sorted(os.listdir(m / "a")) == ["gone", "kept", "moved"]
    assert sorted(os.listdir(m / "b")) == ["moved"]
    assert (m / "a" / "moved").read_bytes() == b"m" == (m / "b" / "moved").read_bytes()
    assert os.stat(m / "a" / "moved").st_ino == os.stat(m / "b" / "moved").st_ino
    assert (m / "a" / "gone").read_bytes() == b"g"
    # synced unlink and rename are final
    os.unlink(m / "a" / "gone")
    os.rename(m / "a" / "kept", m / "a" / "renamed")
    fsync_path(m / "a")
    disk.control.power_cut()
    assert sorted(os.listdir(m / "a")) == ["moved", "renamed"]


def test_power_cut_keeps_an_unlinked_open_file(disk: FaultDisk) -> None:
    m = disk.mountpoint
    write(m / "f", b"durable", sync=True)
    fsync_path(m)
    fd = os.open(m / "f", os.O_RDWR)
    os.unlink(m / "f")
    os.pwrite(fd, b"changed", 0)
    disk.control.power_cut()
    os.close(fd)
    assert (m / "f").read_bytes() == b"durable"


LEVELDB_WRITER = """
import random, sys, plyvel
db = plyvel.DB(sys.argv[1], create_if_missing=True, write_buffer_size=64 << 10)
rnd = random.Random(int(sys.argv[2]))
while True:
    key = f"k{rnd.randrange(200)}".encode()
    value = rnd.randbytes(rnd.randrange(1, 2000))
    print("try", key.decode(), value.hex(), flush=True)  # may land though never acknowledged
    with db.write_batch(sync=True) as wb:
        wb.put(key, value)
        wb.put(key + b"/twin", value)
    db.put(b"unsynced", value[:10])
    print("ack", flush=True)
"""


def test_leveldb_survives_power_cuts(disk: FaultDisk) -> None:
    """A process writing LevelDB with sync=True loses power (the disk stops, the process is
    killed, the disk resets): every acknowledged batch is there, whole, after each restart."""
    import subprocess
    import sys

    import plyvel

    disk.control.ordered_names()  # what LevelDB assumes: see test_leveldb_needs_ordered_names
    path = disk.mountpoint / "db"
    path.mkdir()  # LevelDB makes its directory without syncing the parent: an installer's job
    fsync_path(disk.mountpoint)
    acked: dict[bytes, bytes] = {}
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", LEVELDB_WRITER, str(path), str(round_)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        trying: tuple[bytes, bytes] | None = None

        def took(line: str) -> None:
            nonlocal trying
            word, *kv = line.split()
            if word == "try":
                trying = (kv[0].encode(), bytes.fromhex(kv[1]))
            elif trying is not None:  # "ack": that batch is synced
                acked[trying[0]] = trying[1]
                trying = None

        for _ in range(2 * (150 + 97 * round_)):  # memtable switches and compactions happen in between
            took(proc.stdout.readline())
        disk.control.power_off()  # the moment of the cut: nothing more reaches the disk
        proc.kill()
        # A killed process waits uninterruptibly for a FUSE request already sent, so it only
        # dies once the cut fails its parked operations.
        disk.control.power_cut()
        # acknowledged before the cut, read late; a last piece without its newline was cut
        # short by the kill (a "try" whose batch was never begun)
        for line in proc.stdout.read().split("\n")[:-1]:
            took(line)
        proc.stdout.close()
        proc.wait()
        db = plyvel.DB(str(path))
        try:
            for k in list(acked):
                got = db.get(k)
                # the batch in flight at the cut may have been synced, only its "ack" not printed
                if trying is not None and k == trying[0] and got == trying[1]:
                    acked[k] = got
                assert got == acked[k] and db.get(k + b"/twin") == got, (round_, k)
        finally:
            db.close()


def test_ordered_names(disk: FaultDisk) -> None:
    """POSIX keeps a new name only after its directory's fsync; a journaling filesystem (and
    LevelDB, which never syncs the directory of a new log file) commits it with any fsync."""
    m = disk.mountpoint
    write(m / "new", b"synced data, unsynced name", sync=True)
    disk.control.power_cut()
    assert not (m / "new").exists()
    disk.control.ordered_names()
    write(m / "a", b"unsynced")
    os.rename(m / "a", m / "b")
    write(m / "new", b"synced data, name with it", sync=True)
    disk.control.power_cut()
    assert sorted(os.listdir(m)) == ["b", "new"]
    assert (m / "new").read_bytes() == b"synced data, name with it"
    assert (m / "b").read_bytes() == b""  # the name is committed, not the data


# --- a reference model of random runs ------------------------------------------------------------


@dataclass
class Model:
    """The strict durability model in plain Python: inodes with live and durable data, and
    directories with live and durable entries."""

    data: dict[int, bytes] = field(default_factory=dict)
    durable_data: dict[int, bytes] = field(default_factory=dict)
    entries: dict[str, dict[str, int]] = field(default_factory=lambda: {"a": {}, "b": {}})
    durable_entries: dict[str, dict[str, int]] = field(default_factory=lambda: {"a": {}, "b": {}})
    next_ino: int = 0

    def power_cut(self) -> dict[str, bytes]:
        out = {}
        for d, names in self.durable_entries.items():
            for name, ino in names.items():
                out[f"{d}/{name}"] = self.durable_data.get(ino, b"")
        self.entries = {d: dict(n) for d, n in self.durable_entries.items()}
        live = {ino for n in self.entries.values() for ino in n.values()}
        self.data = {ino: self.durable_data.get(ino, b"") for ino in live}
        self.durable_data = dict(self.data)
        return out


def _random_run(m: Path, model: Model, rnd: random.Random, steps: int) -> None:
    def pick() -> tuple[str, str] | None:
        names = [(d, n) for d, ns in model.entries.items() for n in ns]
        return rnd.choice(names) if names else None

    for _ in range(steps):
        op = rnd.choice(["create", "create", "write", "append", "truncate", "fsync", "fsync", "fsyncdir",
                         "rename", "unlink"])
        d = rnd.choice(["a", "b"])
        if op == "create":
            name = f"f{rnd.randrange(8)}"
            if name in model.entries[d]:
                continue
            data = rnd.randbytes(rnd.randrange(0, 3000))
            write(m / d / name, data)
            model.next_ino += 1
            model.entries[d][name] = model.next_ino
            model.data[model.next_ino] = data
            continue
        if op == "fsyncdir":
            fsync_path(m / d)
            model.durable_entries[d] = dict(model.entries[d])
            continue
        target = pick()
        if target is None:
            continue
        td, tn = target
        ino = model.entries[td][tn]
        p = m / td / tn
        cur = model.data[ino]
        if op == "write":
            off = rnd.randrange(0, len(cur) + 1)
            piece = rnd.randbytes(rnd.randrange(1, 500))
            write(p, piece, offset=off)
            new = cur.ljust(off, b"\0")
            model.data[ino] = new[:off] + piece + new[off + len(piece):]
        elif op == "append":
            piece = rnd.randbytes(rnd.randrange(1, 2000))
            write(p, piece, offset=len(cur))
            model.data[ino] = cur + piece
        elif op == "truncate":
            size = rnd.randrange(0, len(cur) + 100)
            os.truncate(p, size)
            model.data[ino] = cur[:size].ljust(size, b"\0")
        elif op == "fsync":
            fsync_path(p)
            model.durable_data[ino] = model.data[ino]
        elif op == "rename":
            nd = rnd.choice(["a", "b"])
            nn = f"f{rnd.randrange(8)}"
            if (nd, nn) == (td, tn):
                continue
            os.rename(p, m / nd / nn)
            del model.entries[td][tn]
            model.entries[nd][nn] = ino
        elif op == "unlink":
            os.unlink(p)
            del model.entries[td][tn]


@pytest.mark.parametrize("seed", range(6))
def test_power_cuts_match_the_model(disk: FaultDisk, seed: int) -> None:
    m = disk.mountpoint
    (m / "a").mkdir()
    (m / "b").mkdir()
    fsync_path(m)
    model = Model()
    rnd = random.Random(seed)
    for _ in range(4):
        _random_run(m, model, rnd, 60)
        want = model.power_cut()
        disk.control.power_cut()
        got = {f"{d}/{n}": (m / d / n).read_bytes() for d in ("a", "b") for n in os.listdir(m / d)}
        assert got == want
        assert disk.control.stats()["dirty"] == {"files": 0, "dirs": 0, "kept": 0}

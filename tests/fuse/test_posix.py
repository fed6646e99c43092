"""POSIX rules to the letter: each scenario runs the same system calls, as root and as two
unprivileged users, in a plain ext4 directory (the oracle) and in a bucket directory of a real
mount, and the results and stat fields after every step must agree (posix_oracle.py).

Users: ROOT; ALICE (uid/gid 65534, no other groups); BOB (uid/gid 65533, also in group 65532).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import DaemonProc
from .conftest import fuse_available
from .posix_oracle import ALICE, BOB, PYTHON, ROOT, Ext4, Side, compare, scenario_dirs

A, B = ALICE.uid, BOB.uid
RW = ["O_RDWR"]


@pytest.fixture(scope="module")
def ext4() -> Iterator[Ext4]:
    fs = Ext4.make()
    yield fs
    fs.remove()


@pytest.fixture(scope="module")
def bucket_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bucket directory of a real mount that other local users can reach (outside the 0700
    data directory)."""
    if not fuse_available():
        pytest.skip("/dev/fuse is not usable here")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    scratch = Path(tempfile.mkdtemp(prefix="stowage-posix-", dir="/tmp"))
    scratch.chmod(0o755)
    data = tmp_path_factory.mktemp("posix")
    (data / "stowage.toml").write_text('[mount.buckets.posix]\ndir_mode = "0755"\n')
    d = DaemonProc(data / "data", ["--config", str(data / "stowage.toml"), "--mount", str(scratch / "mnt")])
    d.start()
    try:
        d.s3().create_bucket(Bucket="posix")
        yield Path(str(d.mount)) / "posix"
    finally:
        d.stop(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def sides(ext4: Ext4, bucket_dir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Side, Side]]:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    yield from scenario_dirs(ext4.root, bucket_dir, name)


def test_chmod(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "creat", "f", 0o644),
        (ROOT, "chown", "f", A, A),
        (ALICE, "chmod", "f", 0o600),
        (BOB, "chmod", "f", 0o666),
        (ALICE, "chmod", "f", 0o2755),  # not in the file's group... it is: gid 65534 is alice's
        (ROOT, "chown", "f", A, 65532),
        (ALICE, "chmod", "f", 0o2755),  # not in group 65532: the kernel drops setgid
        (ALICE, "chmod", "f", 0o4755),
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "chmod", "d", 0o1777),
        (ROOT, "chmod", "d", 0o3777),
        (ALICE, "chmod", "d", 0o755),
        (ROOT, "mkfifo", "p", 0o600),
        (ROOT, "chmod", "p", 0o644),
        (ROOT, "symlink", "f", "s"),
    ], ["f", "d", "p", "s"])


def test_chown_and_group_membership(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "creat", "f", 0o644),
        (ROOT, "chown", "f", B, B),
        (BOB, "chown", "f", -1, 65532),  # a group bob is in
        (BOB, "chown", "f", -1, A),  # not his group
        (BOB, "chown", "f", A, -1),  # giving it away
        (ALICE, "chown", "f", -1, -1),
        (BOB, "chown", "f", -1, -1),
        (BOB, "chown", "f", B, B),
        (ROOT, "chown", "f", A, A),
        (ROOT, "chown", "f", -1, -1),
        (ROOT, "symlink", "f", "s"),
        (ROOT, "lchown", "s", B, B),
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "chown", "d", B, 65532),
        (BOB, "chown", "d", -1, B),
    ], ["f", "s", "d"])


def test_chown_clears_setuid_and_setgid(sides: tuple[Side, Side]) -> None:
    steps = [(ROOT, "creat", "f", 0o644), (ROOT, "chown", "f", B, B)]
    for mode in (0o6755, 0o6744, 0o4755, 0o2755, 0o2745):
        steps += [
            (ROOT, "chmod", "f", mode), (BOB, "chown", "f", -1, 65532),
            (ROOT, "chmod", "f", mode), (BOB, "chown", "f", B, B),
            (ROOT, "chmod", "f", mode), (ROOT, "chown", "f", B, B),
            (ROOT, "chmod", "f", mode), (ROOT, "chown", "f", -1, -1),
        ]
    steps += [(ROOT, "mkdir", "d", 0o6755), (ROOT, "chmod", "d", 0o6755), (ROOT, "chown", "d", B, B)]
    compare(sides, steps, ["f", "d"])


def test_writes_and_truncates_by_others_clear_setuid_and_setgid(sides: tuple[Side, Side]) -> None:
    steps = [(ROOT, "creat", "f", 0o666)]
    for user, mode in [(ALICE, 0o6777), (ALICE, 0o2766), (ALICE, 0o4766), (ROOT, 0o6777)]:
        steps += [
            (ROOT, "chmod", "f", mode), (user, "open", "w", "f", ["O_WRONLY"]), (user, "write", "@w", "x"),
            (user, "close", "@w"),
            (ROOT, "chmod", "f", mode), (user, "truncate", "f", 3),
            (ROOT, "chmod", "f", mode), (user, "open", "t", "f", ["O_WRONLY", "O_TRUNC"]), (user, "close", "@t"),
            (ROOT, "chmod", "f", mode), (user, "open", "t", "f", ["O_RDWR"]), (user, "ftruncate", "@t", 7),
            (user, "fstat", "@t"), (user, "close", "@t"),
        ]
    compare(sides, steps, ["f"])


def test_truncate_corner_cases_on_files_opened_by_another_user(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "creat", "f", 0o666),
        (ALICE, "open", "a", "f", RW),
        (ALICE, "write", "@a", "0123456789"),
        (ROOT, "chmod", "f", 0o600),  # alice's descriptor keeps working
        (ALICE, "ftruncate", "@a", 4),
        (ALICE, "truncate", "f", 2),
        (ALICE, "open", "b", "f", ["O_WRONLY", "O_TRUNC"]),
        (ALICE, "fstat", "@a"),
        (ALICE, "pread", "@a", 100, 0),
        (ALICE, "write", "@a", "xy"),
        (ALICE, "close", "@a"),
        (ROOT, "truncate", "f", 4),  # same size: times move all the same
        (ROOT, "truncate", "f", 4),
        (ROOT, "truncate", "f", 100),
        (ROOT, "chmod", "f", 0o644),
        (ALICE, "open", "r", "f", ["O_RDONLY"]),
        (ALICE, "ftruncate", "@r", 0),  # read-only descriptor
        (ALICE, "close", "@r"),
        (ALICE, "open", "t", "f", ["O_RDONLY", "O_TRUNC"]),
        (ROOT, "open", "t", "f", ["O_RDONLY", "O_TRUNC"]),  # O_TRUNC truncates even read-only
        (ROOT, "close", "@t"),
        (ROOT, "open", "t", "f", ["O_WRONLY", "O_TRUNC"]),  # an empty file: times move all the same
        (ROOT, "close", "@t"),
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "truncate", "d", 0),
        (ROOT, "mkfifo", "p", 0o666),
        (ROOT, "truncate", "p", 0),
    ], ["f", "d", "p"])


def test_utimensat(sides: tuple[Side, Side]) -> None:
    t1, t2 = [1_000_000_000, 5], [1_100_000_000, 123456789]
    compare(sides, [
        (ROOT, "creat", "f", 0o644),
        (ROOT, "chown", "f", A, A),
        (ALICE, "utimens", "f", t1, t2),
        (ALICE, "utimens", "f", "now", "omit"),
        (ALICE, "utimens", "f", "omit", "now"),
        (ALICE, "utimens", "f", t2, "omit"),
        (ALICE, "utimens", "f", "omit", "omit"),
        (ALICE, "utimes_null", "f"),
        (BOB, "utimens", "f", t1, t1),  # not the owner
        (BOB, "utimens", "f", "now", "now"),  # not the owner, no write permission
        (BOB, "utimes_null", "f"),
        (ROOT, "chmod", "f", 0o666),
        (BOB, "utimens", "f", "now", "now"),  # write permission is enough for "now"
        (BOB, "utimes_null", "f"),
        (BOB, "utimens", "f", "now", t1),  # ... but not for an explicit time
        (BOB, "utimens", "f", "omit", "omit"),
        (ROOT, "utimens", "f", t1, t1),
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "utimens", "d", t1, t2),
        (ROOT, "symlink", "f", "s"),
        (ROOT, "utimens", "s", t2, t1),  # follows the link
    ], ["f", "d", "s"])


def test_sticky_directory(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "t", 0o1777),
        (ALICE, "creat", "t/a", 0o666),
        (BOB, "creat", "t/b", 0o666),
        (ALICE, "mkdir", "t/ad", 0o777),
        (BOB, "unlink", "t/a"),
        (BOB, "rename", "t/a", "t/a2"),
        (BOB, "rename", "t/b", "t/a"),  # over alice's file
        (BOB, "rmdir", "t/ad"),
        (BOB, "rename", "t/b", "t/b2"),  # his own
        (ALICE, "rename", "t/a", "t/a3"),
        (ROOT, "unlink", "t/a3"),  # the directory's owner (root) may
        (ROOT, "chown", "t", B, B),
        (BOB, "rmdir", "t/ad"),  # now bob owns the directory
        (ALICE, "unlink", "t/b2"),
        (BOB, "unlink", "t/b2"),
    ], ["t", "t/a", "t/a2", "t/a3", "t/b", "t/b2", "t/ad"])


def test_xattr_names(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "creat", "f", 0o644),
        (ROOT, "setxattr", "f", "user.", "v"),  # a namespace without a name
        (ROOT, "getxattr", "f", "user."),
        (ROOT, "removexattr", "f", "user."),
        (ROOT, "setxattr", "f", "user.k", "v"),
        (ROOT, "getxattr", "f", "user.k"),
        (ROOT, "removexattr", "f", "user.k"),
        (ROOT, "getxattr", "f", "user.k"),
    ], ["f"])


def test_removed_directories_still_held_open(sides: tuple[Side, Side]) -> None:
    # a shell whose working directory was removed runs `ls`: fstat must not fail (it was ESTALE)
    compare(sides, [
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "setxattr", "d", "user.k", "v"),
        (ROOT, "open", "d", "d", ["O_RDONLY"]),
        (ROOT, "rmdir", "d"),
        (ROOT, "fstat", "@d"),
        (ROOT, "listdir", "@d"),
        (ROOT, "getxattr", "@d", "user.k"),
        (ROOT, "fchmod", "@d", 0o700),
        (ROOT, "fchown", "@d", A, A),
        (ROOT, "fstat", "@d"),
        (ROOT, "mkdir", "d", 0o711),  # a new directory of the name has attributes of its own
        (ROOT, "mkdir", "e", 0o755),
        (ROOT, "utimens", "d", [1, 0], [2, 0]),  # "e" then names d: times compared as values
        (ROOT, "open", "e", "e", ["O_RDONLY"]),
        (ROOT, "rename", "d", "e"),  # replaced by a rename
        (ROOT, "fstat", "@e"),
        (ROOT, "fchmod", "@e", 0o750),
        (ROOT, "fstat", "@e"),
        (ROOT, "close", "@d"),
        (ROOT, "close", "@e"),
    ], ["d", "e"])


def test_ctime_moves_on_every_metadata_change_and_never_on_reads(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "open", "f", "d/f", ["O_RDWR", "O_CREAT"], 0o644),
        (ROOT, "write", "@f", "hello"),
        (ROOT, "close", "@f"),
        (ROOT, "readfile", "d/f"),
        (ROOT, "listdir", "d"),
        (ROOT, "stat", "d/f"),
        (ROOT, "symlink", "f", "d/s"),
        (ROOT, "readlink", "d/s"),
        (ROOT, "chmod", "d/f", 0o600),
        (ROOT, "chmod", "d/f", 0o600),  # the same mode
        (ROOT, "chown", "d/f", A, A),
        (ROOT, "setxattr", "d/f", "user.k", "v"),
        (ROOT, "getxattr", "d/f", "user.k"),
        (ROOT, "removexattr", "d/f", "user.k"),
        (ROOT, "link", "d/f", "d/g"),
        (ROOT, "rename", "d/g", "d/h"),
        (ROOT, "unlink", "d/h"),
        (ROOT, "rename", "d/f", "f2"),
        (ROOT, "mkdir", "d/sub", 0o755),
        (ROOT, "rename", "d/sub", "sub2"),
        (ROOT, "rmdir", "sub2"),
    ], [".", "d", "d/f", "f2", "d/s", "d/h", "sub2"])


def test_special_files(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "d", 0o777),
        (ROOT, "mkfifo", "d/fifo", 0o640),
        (ALICE, "mkfifo", "d/fifo2", 0o666),
        (ROOT, "mkfifo", "d/fifo", 0o640),
        (ROOT, "mknod", "d/null", "chr", 0o666, 1, 3),
        (ROOT, "mknod", "d/loop", "blk", 0o660, 7, 0),
        (ALICE, "mknod", "d/mine", "chr", 0o666, 1, 3),  # needs CAP_MKNOD
        (ALICE, "mknod", "d/pipe", "fifo", 0o600, 0, 0),
        (ALICE, "mknod", "d/reg", "reg", 0o600, 0, 0),
        (ROOT, "open", "n", "d/null", ["O_RDWR"]),  # nodev: never a device
        (ROOT, "open", "l", "d/loop", ["O_RDONLY"]),
        (ROOT, "bind", "d/sock"),
        (ROOT, "bind", "d/sock"),
        (ROOT, "open", "s", "d/sock", ["O_RDONLY"]),
        (ROOT, "open", "p", "d/fifo", ["O_RDONLY", "O_NONBLOCK"]),
        (ROOT, "fstat", "@p"),
        (ROOT, "close", "@p"),
        (ROOT, "chown", "d/null", A, A),
        (ROOT, "rename", "d/fifo", "d/fifo3"),
        (ROOT, "link", "d/fifo3", "d/fifo4"),
        (ROOT, "unlink", "d/fifo3"),
        (ROOT, "listdir", "d"),
    ], ["d", "d/fifo", "d/fifo2", "d/fifo3", "d/fifo4", "d/null", "d/loop", "d/mine", "d/pipe", "d/reg", "d/sock"])


def test_hard_links(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "d", 0o777),
        (ROOT, "mkdir", "e", 0o755),
        (ALICE, "open", "f", "d/f", ["O_RDWR", "O_CREAT"], 0o644),
        (ALICE, "write", "@f", "one"),
        (ALICE, "link", "d/f", "d/g"),
        (ALICE, "write", "@f", " two"),  # not yet committed when the link is made
        (ALICE, "close", "@f"),
        (ALICE, "readfile", "d/g"),
        (ALICE, "link", "d/f", "d/g"),
        (ALICE, "link", "d/f", "e/h"),  # no write permission in e
        (ROOT, "link", "d/f", "e/h"),
        (ALICE, "link", "d", "d/dirlink"),
        (ALICE, "open", "g", "d/g", ["O_WRONLY", "O_APPEND"]),
        (ALICE, "write", "@g", " three"),
        (ALICE, "close", "@g"),
        (BOB, "readfile", "e/h"),
        (ALICE, "chmod", "d/g", 0o600),
        (BOB, "readfile", "e/h"),
        (ALICE, "rename", "d/g", "d/g2"),
        (ALICE, "rename", "d/f", "d/g2"),  # two names of one file: nothing happens
        (ALICE, "open", "k", "d/f", RW),
        (ALICE, "unlink", "d/f"),
        (ALICE, "fstat", "@k"),
        (ALICE, "unlink", "d/g2"),
        (ROOT, "unlink", "e/h"),
        (ALICE, "fstat", "@k"),  # open, every name gone
        (ALICE, "pread", "@k", 100, 0),
        (ALICE, "close", "@k"),
        (ROOT, "symlink", "nowhere", "d/s"),
        (ROOT, "link", "d/s", "d/s2"),
        (ROOT, "readlink", "d/s2"),
        (ROOT, "creat", "d/x", 0o644),
        (ROOT, "link", "d/x", "e/x2"),
        (ROOT, "open", "x", "e/x2", ["O_RDONLY"]),
        (ROOT, "rename", "d/s", "d/x"),  # replaces one name of a file that has another
        (ROOT, "fstat", "@x"),
        (ROOT, "close", "@x"),
    ], ["d", "e", "d/f", "d/g", "d/g2", "e/h", "d/s", "d/s2", "d/x", "e/x2"])


def test_directory_link_counts(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "d", 0o755),
        (ROOT, "mkdir", "d/a", 0o755),
        (ROOT, "mkdir", "d/b", 0o755),
        (ROOT, "creat", "d/file", 0o644),
        (ROOT, "mkdir", "d/a/x", 0o755),
        (ROOT, "rename", "d/b", "d/a/y"),
        (ROOT, "rename", "d/a", "a"),
        (ROOT, "rmdir", "a/x"),
        (ROOT, "rename", "a/y", "d/y"),
    ], [".", "d", "d/a", "a", "d/y"])


def test_setgid_directories_pass_on_their_group(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "g", 0o777),
        (ROOT, "chown", "g", 0, 65532),
        (ROOT, "chmod", "g", 0o2777),
        (ALICE, "creat", "g/f", 0o2755),  # alice is not in group 65532: no setgid on the file
        (BOB, "creat", "g/f2", 0o2755),
        (ALICE, "mkdir", "g/sub", 0o755),  # inherits the group and the setgid bit
        (ALICE, "mkfifo", "g/p", 0o644),
        (ALICE, "symlink", "f", "g/s"),
    ], ["g", "g/f", "g/f2", "g/sub", "g/p", "g/s"])


def test_who_may_create_remove_and_rename(sides: tuple[Side, Side]) -> None:
    compare(sides, [
        (ROOT, "mkdir", "ro", 0o755),
        (ROOT, "mkdir", "rw", 0o777),
        (ROOT, "creat", "ro/f", 0o666),
        (ALICE, "creat", "ro/g", 0o644),
        (ALICE, "unlink", "ro/f"),
        (ALICE, "rename", "ro/f", "rw/f"),
        (ALICE, "open", "o", "ro/f", ["O_RDWR", "O_CREAT"], 0o600),  # exists: opened, not created
        (ALICE, "close", "@o"),
        (ALICE, "creat", "rw/a", 0o600),
        (BOB, "unlink", "rw/a"),  # not sticky: write permission on the directory is enough
        (ALICE, "mkdir", "rw/d", 0o700),
        (ALICE, "creat", "rw/d/x", 0o644),
        (BOB, "rmdir", "rw/d"),
        (BOB, "rename", "rw/d", "rw/e"),  # moving a directory rewrites its "..": needs its write permission
        (ALICE, "rename", "rw/d", "rw/e"),
        (ROOT, "rename", "rw/e", "rw/e/sub"),
        (ROOT, "mkdir", "rw/e2", 0o755),
        (ROOT, "rename", "rw/e2", "rw/e"),
        (ROOT, "rename", "ro/f", "rw/e"),
        (ROOT, "rename", "rw/e", "ro/f"),
        (ROOT, "open", "x", "rw/e/x", ["O_RDWR", "O_CREAT", "O_EXCL"], 0o644),
        (ROOT, "rmdir", "rw/e/x"),
        (ROOT, "unlink", "rw/e"),
        (ROOT, "mkdir", "rw/e", 0o755),
        (ROOT, "mkdir", "rw/e/x/y", 0o755),
        (ROOT, "rename", "rw/e2", "rw/e3"),
        (ROOT, "rmdir", "rw/e3"),
        (ROOT, "rmdir", "rw/e3"),
        (ALICE, "listdir", "rw/e"),
        (BOB, "listdir", "rw/e"),
        (ROOT, "chmod", "rw/e", 0o700),
        (BOB, "stat", "rw/e/x"),
    ], ["ro", "rw", "ro/f", "rw/a", "rw/d", "rw/e", "rw/e/x", "rw/e2", "rw/e3"])


def test_name_max_and_long_names(sides: tuple[Side, Side]) -> None:
    n255, n256 = "n" * 255, "n" * 256
    u255 = "й" * 127 + "n"  # 255 bytes of UTF-8
    compare(sides, [
        (ROOT, "creat", n255, 0o644),
        (ROOT, "creat", n256, 0o644),
        (ROOT, "mkdir", "d" + n255[1:], 0o755),
        (ROOT, "mkdir", "d" + n256[1:], 0o755),
        (ROOT, "symlink", n255, "s" + n255[1:]),
        (ROOT, "symlink", n255, "s" + n256[1:]),
        (ROOT, "rename", n255, "r" + n255[1:]),
        (ROOT, "rename", "r" + n255[1:], "r" + n256[1:]),
        (ROOT, "link", "r" + n255[1:], "l" + n255[1:]),
        (ROOT, "link", "r" + n255[1:], "l" + n256[1:]),
        (ROOT, "mkfifo", "p" + n255[1:], 0o644),
        (ROOT, "creat", u255, 0o644),
        (ROOT, "stat", "x" + n256[1:]),
        (ALICE, "mkdir", "a" + n255[1:], 0o777),
        (ALICE, "creat", f"a{n255[1:]}/{n255}", 0o644),
        (ALICE, "creat", f"a{n255[1:]}/{n256}", 0o644),
        (ALICE, "link", f"a{n255[1:]}/{n255}", f"a{n255[1:]}/{'m' * 255}"),
        (ALICE, "rename", f"a{n255[1:]}/{n255}", f"a{n255[1:]}/{'o' * 256}"),
        (ALICE, "mkfifo", f"a{n255[1:]}/{'q' * 256}", 0o644),
    ], [n255, "d" + n255[1:], "s" + n255[1:], "r" + n255[1:], "l" + n255[1:], "p" + n255[1:], u255,
        f"a{n255[1:]}/{n255}", f"a{n255[1:]}/{'m' * 255}"])


def test_path_max(sides: tuple[Side, Side]) -> None:
    """A path of 4095 bytes (PATH_MAX with its NUL) works; one of 4096 is too long. The trees'
    paths differ in length, so each gets the directories that bring it to exactly 4095."""
    for side in sides:
        base = str(side.base)
        parts: list[str] = []
        while len(base) + sum(len(p) + 1 for p in parts) + 1 + 200 < 4095 - 10:
            parts.append("d" * 200)
            assert side.call(ROOT, "mkdir", "/".join(parts), 0o755) == {"ok": None}
        rel = "/".join(parts)
        assert side.call(ROOT, "chmod", rel, 0o777) == {"ok": None}
        last = 4095 - len(base) - 1 - len(rel) - 1
        full = f"{base}/{rel}/{'f' * last}"
        assert len(full.encode()) == 4095
        assert side.call(ALICE, "creat", full, 0o644) == {"ok": None}, side.name
        assert side.call(ALICE, "stat", full)["ok"]["type"] == stat.S_IFREG
        assert side.call(ALICE, "creat", full + "x", 0o644) == {"err": "ENAMETOOLONG"}, side.name
        assert side.call(ALICE, "mkdir", f"{base}/{rel}/{'e' * (last - 1)}", 0o755) == {"ok": None}, side.name
        assert side.call(ALICE, "rename", full, f"{base}/{rel}/{'g' * last}") == {"ok": None}, side.name
        assert side.call(ROOT, "link", f"{base}/{rel}/{'g' * last}", f"{base}/{rel}/{'h' * last}") == {"ok": None}


def fifo_exchange(side: Side, data: str) -> tuple[str, int, int]:
    """bob reads, in one process, what alice writes in another through a FIFO alice made."""
    assert side.call(ALICE, "mkfifo", "p", 0o644) == {"ok": None}
    path = str(side.base / "p")
    reader = subprocess.Popen([*BOB.argv(), PYTHON, "-c", "import sys; sys.stdout.write(open(sys.argv[1]).read())",
                               path], stdout=subprocess.PIPE, text=True)
    writer = subprocess.Popen([*ALICE.argv(), PYTHON, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                               path, data])
    out, _ = reader.communicate(timeout=60)
    # bob may not write to it (0644): the kernel says so before the open could block
    denied = subprocess.run([*BOB.argv(), PYTHON, "-c", "import os, sys; os.open(sys.argv[1], os.O_WRONLY)", path],
                            capture_output=True, text=True, timeout=60)
    return out, writer.wait(60), denied.returncode


def test_fifo_between_two_processes(sides: tuple[Side, Side]) -> None:
    data = "through the pipe\n" * 5000  # more than a pipe buffer holds
    oracle, mount = (fifo_exchange(side, data) for side in sides)
    assert oracle == mount == (data, 0, 1)

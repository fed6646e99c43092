"""On real loop devices (root only): a disk added with `stowage disks add`, drained and removed;
an embedded disk replaced by a new loop disk; a loop disk yanked (lazy unmount) while the
daemon runs -> reads keep working and the healer restores full redundancy on its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diskmgr.label import is_mounted

from .helpers import check_all, ctl, full_redundancy, populate, shards_on, wait_for

GIB = 1 << 30
BIG = 128 * GIB  # sparse: weighted placement (free space) favours it over the embedded disks


def disks_cli(d: Any, etc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "appliance", "disks", *args, "--data", str(d.data_dir)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, STOWAGE_SYSCONF_ROOT=str(etc)))
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def add_disk(d: Any, dev: str, etc: Path) -> str:
    r = disks_cli(d, etc, "add", dev, "--role", "data")
    assert "attached to the running daemon" in r.stdout, r.stdout + r.stderr
    return r.stdout.split()[2].rstrip(":")


def disk_path(d: Any, disk_id: str) -> Path:
    return Path(next(x["path"] for x in ctl(d, "status")["disks"] if x["disk_id"] == disk_id))


def test_drain_remove_replace_and_yank(daemon: Any, make_loop: Callable[..., str], tmp_path: Path) -> None:
    etc = tmp_path / "sysroot"
    etc.mkdir()
    objs = populate(daemon, n=8, seed=11)
    new = add_disk(daemon, make_loop(BIG), etc)
    objs.update(populate(daemon, n=12, seed=12, prefix="more/"))
    new_path = disk_path(daemon, new)
    assert shards_on(new_path) > 0  # placement used the new disk

    # remove with drain: every shard moves off, then the disk is released
    held = shards_on(new_path)
    r = disks_cli(daemon, etc, "remove", new)
    assert f"disk {new} drained ({held} shards" in r.stdout, r.stdout
    assert "unmounted" in r.stdout and not is_mounted(new_path)
    # released: its mount point goes too (`disks list` showed a leftover one as a missing disk)
    assert not new_path.exists()
    listed = json.loads(disks_cli(daemon, etc, "list", "--json", "--no-smart").stdout)["disks"]
    assert new not in [x["disk_id"] for x in listed]
    assert new not in [x["disk_id"] for x in ctl(daemon, "status")["disks"]]
    assert full_redundancy(daemon.data_dir)
    check_all(daemon, objs)

    # replace an embedded disk by a new loop disk: OLD's shards are rebuilt onto NEW
    repl = add_disk(daemon, make_loop(BIG), etc)
    old = next(x["disk_id"] for x in ctl(daemon, "status")["disks"] if x["path"].endswith("disk0"))
    old_path = disk_path(daemon, old)
    held = shards_on(old_path)
    r = disks_cli(daemon, etc, "replace", old, repl)
    assert f"disk {old} replaced by {repl}: {held} shards rebuilt" in r.stdout, r.stdout
    assert old not in [x["disk_id"] for x in ctl(daemon, "status")["disks"]]
    assert shards_on(old_path) == 0
    assert shards_on(disk_path(daemon, repl)) == held
    assert full_redundancy(daemon.data_dir)
    check_all(daemon, objs)

    # yank: a lazily unmounted loop disk while the daemon runs (a 7th disk so 4+2 can heal)
    yank = add_disk(daemon, make_loop(BIG), etc)
    objs.update(populate(daemon, n=10, seed=13, prefix="late/"))
    yank_path = disk_path(daemon, yank)
    assert shards_on(yank_path) > 0
    subprocess.run(["umount", "-l", str(yank_path)], check=True)
    assert os.listdir(yank_path) == []
    check_all(daemon, objs)  # reads decode around the missing disk

    def healed() -> bool:
        st = ctl(daemon, "status")
        state = next(x["state"] for x in st["disks"] if x["disk_id"] == yank)
        heal = st["services"]["heal"]
        return state == "offline" and not heal["running"] and heal["pending"] == 0 and \
            full_redundancy(daemon.data_dir)

    wait_for(healed, timeout=120, what="healing after the yanked disk")
    assert os.listdir(yank_path) == []  # nothing was written into the empty mount point
    check_all(daemon, objs)


def test_read_only_disk_gets_no_new_shards(daemon: Any, make_loop: Callable[..., str], tmp_path: Path) -> None:
    etc = tmp_path / "sysroot"
    etc.mkdir()
    ro = add_disk(daemon, make_loop(BIG), etc)
    objs = populate(daemon, n=8, seed=31)
    path = disk_path(daemon, ro)
    held = shards_on(path)
    assert held > 0
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    try:
        def failing() -> bool:
            disk = next(x for x in ctl(daemon, "status")["disks"] if x["disk_id"] == ro)
            return disk["state"] == "failing" and "filesystem is read-only" in disk["reasons"]

        wait_for(failing, what="the monitor to see the read-only filesystem")
        check_all(daemon, objs)  # its shards are still read
        objs.update(populate(daemon, n=6, seed=32, prefix="after/"))
        assert shards_on(path) == held  # placement skipped it
        check_all(daemon, objs)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(path)], check=True)

    def ok_again() -> bool:
        return next(x for x in ctl(daemon, "status")["disks"] if x["disk_id"] == ro)["state"] == "ok"

    wait_for(ok_again, what="the disk to be writable again")


def test_a_file_where_an_added_disks_volumes_belongs_holds_it_offline(daemon: Any, make_loop: Callable[..., str],
                                                                      tmp_path: Path) -> None:
    """The start-up orphan sweep met it with a NotADirectoryError traceback and the appliance
    did not start (found by fuzzing, on an embedded disk: tests/healing/test_disk_failure.py)."""
    etc = tmp_path / "sysroot"
    etc.mkdir()
    added = add_disk(daemon, make_loop(BIG), etc)
    objs = populate(daemon, n=8, seed=41)
    path = disk_path(daemon, added)
    daemon.stop()
    shutil.rmtree(path / "volumes", ignore_errors=True)
    (path / "volumes").write_text("not a directory")
    daemon.start()
    ctl(daemon, "disks.check")  # the disk monitor's verdict too, not only the loader's
    disk = next(x for x in ctl(daemon, "status")["disks"] if x["disk_id"] == added)
    assert disk["state"] == "offline" and disk["reasons"] == [f"{path / 'volumes'} is not a directory"]
    check_all(daemon, objs)

"""Renames, links and stats below a directory while it is being renamed, on the real mount.

The kernel locks the parents of each rename and link, not the directories above them: `mv d1
d2` runs at the same time as a rename or link made in d1 through a descriptor of d1 (or a
working directory there). On ext4 those always succeed, and act in the directory's new place."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .test_fuzz_findings import _bucket

ROUNDS = 12


def _all_at_once(*calls: Callable[[], object]) -> list[str]:
    """Run the calls in threads started together: the errors they raised."""
    gate = threading.Barrier(len(calls))
    errors: list[str] = []

    def run(call: Callable[[], object]) -> None:
        gate.wait()
        try:
            call()
        except OSError as e:
            errors.append(f"{call.__name__}: {e}")

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _race(b: Path, i: int) -> list[str]:
    """mv a{i} b{i} while, inside it, sub is renamed, files are renamed within, out and in, a
    file is linked, and the directory is stat'ed: the errors they got."""
    d1, d2 = b / f"a{i}", b / f"b{i}"
    (d1 / "sub").mkdir(parents=True)
    (d1 / "sub" / "inner").write_bytes(b"inner")
    for name in ("f", "h", "l"):
        (d1 / name).write_bytes(name.encode())
    (b / "x" / f"g{i}").write_bytes(b"g")
    here, x = os.open(d1, os.O_DIRECTORY), os.open(b / "x", os.O_DIRECTORY)

    def move_d1() -> None:
        os.rename(d1, d2)

    def rename_sub() -> None:
        os.rename("sub", "sub2", src_dir_fd=here, dst_dir_fd=here)

    def rename_within() -> None:
        os.rename("h", "h2", src_dir_fd=here, dst_dir_fd=here)

    def rename_out() -> None:
        os.rename("f", f"f{i}", src_dir_fd=here, dst_dir_fd=x)

    def rename_in() -> None:
        os.rename(f"g{i}", "g", src_dir_fd=x, dst_dir_fd=here)

    def link_within() -> None:
        os.link("l", "l2", src_dir_fd=here, dst_dir_fd=here)

    def stat_d1() -> None:
        os.stat(here)

    try:
        return _all_at_once(move_d1, rename_sub, rename_within, rename_out, rename_in, link_within, stat_d1)
    finally:
        os.close(here)
        os.close(x)


def test_renames_links_and_stats_below_a_directory_being_renamed(mount_daemon: Any) -> None:
    # Before: ENOENT and ESTALE (the directory's path named nothing once its keys had moved),
    # and entries made at the old path after the move (the old directory came back).
    b, s3 = _bucket(mount_daemon, "rnr")
    (b / "x").mkdir()
    expected: set[str] = {"x/"}
    for i in range(ROUNDS):
        errors = _race(b, i)
        assert errors == [], f"round {i}: {errors}"
        expected |= {f"x/f{i}", *(f"b{i}/{k}" for k in ("", "sub2/", "sub2/inner", "h2", "g", "l", "l2"))}
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="rnr")["Contents"]}
        assert keys == expected, f"round {i}"
    assert sorted(p.name for p in b.iterdir()) == sorted([*(f"b{i}" for i in range(ROUNDS)), "x"])
    assert (b / "b0" / "sub2" / "inner").read_bytes() == b"inner"
    assert (b / "b0" / "l2").read_bytes() == b"l"

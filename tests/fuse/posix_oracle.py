"""The oracle for the mount's POSIX behaviour: the same system calls, as the same users, on a
plain ext4 directory (a small loop filesystem mounted nodev,nosuid like the mount) and in a
bucket directory of a real mount; what each returns and what stat shows after it must agree.

Each user's calls run in a long-lived probe process (posix_probe.py under setpriv), one per
user and tree; stat snapshots are taken as root. Times are compared as "changed or not" since
the previous step (their values differ between the trees), except values set explicitly
(below FIXED_NS), which must be equal.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("posix_probe.py")
PYTHON = "/usr/bin/python3"
FIXED_NS = 1_500_000_000 * 10**9  # times before 2017 were set explicitly by a step
STEP_PAUSE = 0.003  # lets even a coarse clock tick between steps


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def argv(self) -> list[str]:
        if self.uid == 0:
            return []
        groups = ["--groups", ",".join(map(str, self.groups))] if self.groups else ["--clear-groups"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups]


ROOT = User(0, 0)
ALICE = User(65534, 65534)  # nobody
BOB = User(65533, 65533, (65533, 65532))


class Probe:
    def __init__(self, cwd: Path, user: User) -> None:
        self.proc = subprocess.Popen([*user.argv(), PYTHON, str(PROBE), str(cwd)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, op: str, *args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([op, *args]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"probe died on {op} {args}")
        out: dict[str, Any] = json.loads(line)
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


@dataclass
class Side:
    """One tree: the ext4 oracle or the mount."""

    name: str
    base: Path
    probes: dict[User, Probe] = field(default_factory=dict)
    fds: dict[str, tuple[User, int]] = field(default_factory=dict)

    def call(self, user: User, op: str, *args: Any) -> dict[str, Any]:
        if user not in self.probes:
            self.probes[user] = Probe(self.base, user)
        if op == "open":  # ("open", label, path, flags[, mode]): the descriptor is known by its label
            out = self.probes[user]("open", *args[1:])
            if "ok" in out:
                self.fds[args[0]] = (user, out["ok"])
                out = {"ok": None}
            return out
        args = tuple(self.fds[a[1:]][1] if isinstance(a, str) and a.startswith("@") else a for a in args)
        return self.probes[user](op, *args)

    def close(self) -> None:
        for p in self.probes.values():
            p.close()
        self.probes.clear()


Step = tuple[Any, ...]  # (user, op, *args)


def _snapshot(side: Side, watch: list[str]) -> dict[str, dict[str, Any]]:
    return {p: side.call(ROOT, "lstat", p) for p in watch}


def _describe(s: dict[str, Any], prev: dict[str, Any] | None, times: bool) -> dict[str, Any] | str:
    if "err" in s:
        return str(s["err"])
    v = s["ok"]
    d = {k: v[k] for k in ("type", "mode", "uid", "gid", "nlink", "rdev")}
    if v["type"] != stat.S_IFDIR:
        d["size"] = v["size"]  # a directory's size is the file system's business
    before = prev["ok"] if prev is not None and "ok" in prev else None
    for t in ("mtime_ns", "ctime_ns", "atime_ns"):
        if t == "atime_ns" and not (times and v["type"] != stat.S_IFLNK):
            continue  # atime moves on reads on ext4 (relatime; following a symlink reads it), not here
        if v[t] < FIXED_NS:
            d[t] = v[t]
        elif before is not None:
            d[t[:5] + "_changed"] = v[t] != before[t]
    return d


def play(side: Side, steps: list[Step], watch: list[str]) -> list[dict[str, Any]]:
    """Run the steps; per step: its result and what the watched paths look like after it."""
    trace = []
    prev = _snapshot(side, watch)
    for i, (user, op, *args) in enumerate(steps):
        out = side.call(user, op, *args)
        snap = _snapshot(side, watch)
        times = op in ("utimens", "utimes_null")
        inos: dict[int, str] = {}
        shown: dict[str, Any] = {}
        for p in watch:
            shown[p] = _describe(snap[p], prev.get(p), times)
            if "ok" in snap[p] and isinstance(shown[p], dict):
                shown[p]["same_file_as"] = inos.setdefault(snap[p]["ok"]["ino"], p)
        result = out.get("err", "ok")
        value = out.get("ok")
        if isinstance(value, dict):  # fstat: compared like a snapshot
            value = _describe(out, None, False)
        trace.append({"step": f"{i} (uid {user.uid}) {op} {args}", "result": result, "value": value, "after": shown})
        prev = snap
        time.sleep(STEP_PAUSE)
    return trace


def compare(sides: tuple[Side, Side], steps: list[Step], watch: list[str]) -> None:
    """The mount must do what ext4 does."""
    oracle, mount = sides
    expected = play(oracle, steps, watch)
    got = play(mount, steps, watch)
    for want, have in zip(expected, got, strict=True):
        if want != have:
            lines = [f"step {want['step']}:"]
            lines += [f"  {k}: ext4 {want[k]!r}, mount {have[k]!r}" for k in ("result", "value") if want[k] != have[k]]
            lines += [f"  {p}: ext4 {want['after'][p]}\n  {' ' * len(p)}  mount {have['after'][p]}"
                      for p in want["after"] if want["after"][p] != have["after"][p]]
            pytest.fail("\n".join(lines), pytrace=False)


@dataclass
class Ext4:
    """A small ext4 file system on a loop device, mounted nodev,nosuid like the mount."""

    top: Path
    root: Path

    @classmethod
    def make(cls) -> Ext4:
        top = Path(tempfile.mkdtemp(prefix="stowage-oracle-", dir="/tmp"))
        top.chmod(0o755)
        image, root = top / "ext4.img", top / "ext4"
        root.mkdir()
        subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        r = subprocess.run(["mount", "-o", "loop,nodev,nosuid", str(image), str(root)], capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(top, ignore_errors=True)
            pytest.skip(f"cannot mount a loop ext4 file system: {r.stderr.strip()}")
        root.chmod(0o755)
        return cls(top, root)

    def remove(self) -> None:
        subprocess.run(["umount", str(self.root)], capture_output=True)
        shutil.rmtree(self.top, ignore_errors=True)


def scenario_dirs(ext4: Path, bucket: Path, name: str, mode: int = 0o777) -> Iterator[tuple[Side, Side]]:
    """A fresh directory of the same name and mode in both trees, and a Side for each."""
    sides = []
    for label, top in (("ext4", ext4), ("mount", bucket)):
        d = top / name
        d.mkdir()
        d.chmod(mode)
        sides.append(Side(label, d))
    try:
        yield sides[0], sides[1]
    finally:
        for s in sides:
            s.close()

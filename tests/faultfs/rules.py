"""Fault rules: which operations fail, slow down or hang, decided per operation at run time.

A rule matches an operation by name (or a group: "reads", "writes", "metadata", "all") and by
the path it works on (an fnmatch pattern relative to the mount's root, "*" for everything; a
rename matches on either name; an operation on an open file uses the path it was opened by).
A matching operation, in this order: waits while the rule hangs (until `release`, or until
`until` on the monotonic clock passes: a stall), sleeps `delay` seconds, then fails with
`errno` when one is set. `probability` draws from the rule's own seeded generator; `after`
lets that many matches pass first; `times` ends the rule after that many hits.

Besides rules: `full` makes the filesystem report no free space and refuse what would grow it
with ENOSPC, and the power switch (`PowerSwitch`) parks every operation while a power cut is
being simulated, then fails them: they belong to a machine that lost power.
"""

from __future__ import annotations

import errno
import fnmatch
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
import trio

READS = frozenset({"read"})
WRITES = frozenset({"write", "fsync", "create", "mknod", "mkdir", "symlink", "link", "rename", "unlink", "rmdir",
                    "setattr", "fsyncdir", "setxattr", "removexattr"})
METADATA = frozenset({"lookup", "getattr", "opendir", "readdir", "open", "statfs", "readlink", "getxattr",
                      "listxattr", "access"})
GROUPS = {"reads": READS, "writes": WRITES, "metadata": METADATA, "all": READS | WRITES | METADATA}
GROWING = frozenset({"write", "create", "mknod", "mkdir", "symlink", "link"})  # refused when full


def expand(ops: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for op in ops:
        if op in GROUPS:
            out |= GROUPS[op]
        elif op in GROUPS["all"]:
            out.add(op)
        else:
            raise ValueError(f"unknown operation or group {op!r}")
    return frozenset(out)


@dataclass
class Rule:
    rule_id: int
    ops: frozenset[str]
    path: str = "*"
    errno: int = 0
    probability: float = 1.0
    delay: float = 0.0
    hang: bool = False
    until: float | None = None  # monotonic deadline of a hang (a stall); None: until released
    after: int = 0
    times: int | None = None
    seed: int = 0
    matched: int = 0
    hits: int = 0
    waiting: int = 0
    released: trio.Event = field(default_factory=trio.Event)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    def matches(self, op: str, paths: tuple[str, ...]) -> bool:
        if op not in self.ops or (self.times is not None and self.hits >= self.times):
            return False
        if self.until is not None and time.monotonic() >= self.until:
            return False  # the stall is over
        if self.path != "*" and not any(fnmatch.fnmatchcase(p, self.path) for p in paths):
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.hits += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {"id": self.rule_id, "ops": sorted(self.ops), "path": self.path,
                "errno": errno.errorcode.get(self.errno, self.errno) if self.errno else None,
                "probability": self.probability, "delay": self.delay, "hang": self.hang,
                "until": self.until, "after": self.after, "times": self.times, "matched": self.matched,
                "hits": self.hits, "waiting": self.waiting, "released": self.released.is_set()}


class PowerSwitch:
    """Off: every operation waits; when power returns it fails with EIO (its caller is gone)."""

    def __init__(self) -> None:
        self.on = trio.Event()
        self.on.set()
        self.parked = 0
        self.epoch = 0  # cuts so far: an operation that started before one must not finish after it

    def cut(self) -> None:
        if self.on.is_set():
            self.on = trio.Event()
            self.epoch += 1

    def restore(self) -> None:
        self.on.set()

    async def check(self) -> None:
        if self.on.is_set():
            return
        self.parked += 1
        try:
            await self.on.wait()
        finally:
            self.parked -= 1
        raise pyfuse3.FUSEError(errno.EIO)


class Faults:
    def __init__(self) -> None:
        self.rules: dict[int, Rule] = {}
        self.full = False
        self.power = PowerSwitch()
        self.counts: dict[str, int] = {}
        self._ids = itertools.count(1)

    def add(self, ops: list[str], **kw: Any) -> Rule:
        rule = Rule(next(self._ids), expand(ops), **kw)
        self.rules[rule.rule_id] = rule
        return rule

    def release(self, rule_id: int) -> None:
        """Remove a rule; operations it holds go on."""
        rule = self.rules.pop(rule_id, None)
        if rule is not None:
            rule.released.set()

    def clear(self) -> None:
        for rule_id in list(self.rules):
            self.release(rule_id)
        self.full = False

    async def check(self, op: str, *paths: str) -> None:
        """Apply the rules to one operation (raises FUSEError to fail it)."""
        self.counts[op] = self.counts.get(op, 0) + 1
        epoch = self.power.epoch
        await self.power.check()
        for rule in list(self.rules.values()):
            if not rule.matches(op, paths):
                continue
            if rule.hang:
                rule.waiting += 1
                try:
                    if rule.until is None:
                        await rule.released.wait()
                    else:
                        with trio.move_on_at(trio.current_time() + max(0.0, rule.until - time.monotonic())):
                            await rule.released.wait()
                finally:
                    rule.waiting -= 1
            if rule.delay:
                await trio.sleep(rule.delay)
            await self.power.check()
            if rule.errno:
                raise pyfuse3.FUSEError(rule.errno)
        if self.power.epoch != epoch:
            raise pyfuse3.FUSEError(errno.EIO)
        if self.full and op in GROWING:
            raise pyfuse3.FUSEError(errno.ENOSPC)

    def hung(self) -> int:
        return sum(r.waiting for r in self.rules.values())

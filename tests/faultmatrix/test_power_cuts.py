"""Power cuts: every disk (six data disks and the metadata one, all fault disks) loses power at
once, 20 times: at each named moment of the write, multipart, mount rename, GC, heal, lifecycle
transition, replication and metadata snapshot paths, the rest by turns at a random moment of the
workload and at a named one drawn again (powercuts.py); each time the daemon starts again and
every acknowledged write is there, and every acknowledged replicated write reaches its replica. The seed is printed
(STOWAGE_POWER_SEED repeats a run); `python -m bench.soak --power-cuts 20` is the long version."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faultfs import usable

from .powercuts import MOMENTS, Run, nothing, plan, power_cut_run

pytestmark = [pytest.mark.skipif(not usable(), reason="needs root and /dev/fuse"), pytest.mark.slow]
CUTS = 20  # the count


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    seed = int(os.environ.get("STOWAGE_POWER_SEED") or random.randrange(1 << 30))
    print(f"power cuts: seed {seed} (STOWAGE_POWER_SEED={seed} repeats this run)")
    with power_cut_run(tmp_path, seed) as r:
        yield r


def test_power_cuts_at_named_and_random_moments(run: Run) -> None:
    for point in plan(run.rnd, CUTS):
        run.cut_at(point, MOMENTS[point] if point else nothing)
    run.check_all()

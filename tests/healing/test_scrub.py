"""Scrubber against a real daemon: random corruption and deleted shard files are all repaired
by one `stowage scrub` pass; the next pass finds nothing."""

from __future__ import annotations

import json
import random
from typing import Any

from .helpers import check_all, ctl, data_segments, full_redundancy, populate


def test_scrub_repairs_everything_then_finds_nothing(daemon: Any) -> None:
    objs = populate(daemon, n=24)
    rnd = random.Random(5)
    segs = data_segments(daemon.data_dir)
    assert len(segs) >= 20
    damaged = rnd.sample(sorted(segs), 14)
    for i, seg in enumerate(damaged):
        for shard in rnd.sample(segs[seg], rnd.choice([1, 2])):  # at most m=2 shards per segment
            shard.destroy(rnd, unlink=bool(i % 2))
    assert any(segs[seg][0].record for seg in damaged)  # small objects' packed records too

    progress: list[dict[str, Any]] = []
    first = ctl(daemon, "scrub.start", {"wait": True}, progress)
    assert first["found"] == len(damaged), first
    assert first["repaired"] == len(damaged)
    assert first["unrecoverable"] == 0
    assert progress, "the scrub op streams progress"
    assert full_redundancy(daemon.data_dir)

    second = json.loads(daemon.cli("scrub", "--json").stdout)
    assert second["found"] == 0 and second["repaired"] == 0, second
    assert second["segments"] == first["segments"]
    check_all(daemon, objs)

    st = json.loads(daemon.cli("status", "--json").stdout)
    assert st["services"]["scrub"]["last_complete_ns"] > 0

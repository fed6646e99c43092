"""A daemon whose lifecycle day lasts a fraction of a second, and what the tests look at."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc
from tests.healing.helpers import all_shards

DAY = 0.2  # seconds in a lifecycle day (lifecycle.debug_day_seconds)


def lifecycle_config(path: Path, day: float = DAY, transition_rate: int = 128 << 20) -> Path:
    path.write_text(f"[lifecycle]\ndebug_day_seconds = {day}\ntransition_bytes_per_second = {transition_rate}\n"
                    f"[gc]\ngrace_seconds = 0.5\ninterval_seconds = 0.2\n")
    return path


def start(base: Path, config: Path) -> DaemonProc:
    return DaemonProc(base / "data", ["--no-mount", "--config", str(config)]).start()


@pytest.fixture(scope="module")
def lcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    """One daemon for a module's lifecycle tests (each test uses buckets of its own)."""
    base = tmp_path_factory.mktemp("lc")
    d = start(base, lifecycle_config(base / "lc.toml"))
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `cond` until it is true (no timed assertions: the deadline is only a safety net)."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def lifecycle_status(d: DaemonProc) -> dict[str, Any]:
    st: dict[str, Any] = json.loads(d.cli("status", "--json").stdout)["services"]["lifecycle"]
    return st


def shard_geometries(d: DaemonProc) -> dict[str, tuple[int, int, dict[str, Any]]]:
    """Segment id -> (k, m, identity) of every shard on the data disks (from the headers of
    shard files and packed records)."""
    found: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for seg, shards in all_shards(d.data_dir).items():
        h = shards[0].header
        found[seg] = (h.k, h.m, h.identity)
    return found

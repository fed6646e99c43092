"""A scrub pass interrupted by a daemon restart resumes from its saved cursor (X scrub), at the
configured rate, instead of starting over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import ctl, data_segments, populate, wait_for


def test_scrub_resumes_after_restart(daemon_factory: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "slow-scrub.toml"
    cfg.write_text("[scrub]\nrate_bytes_per_sec = 2097152\n")  # 2 MiB/s: the pass takes seconds
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    populate(d, n=10, seed=21, max_size=2 << 20)
    total = len(data_segments(d.data_dir))
    ctl(d, "scrub.start", {"wait": False})

    def midway() -> bool:
        s = ctl(d, "scrub.status")
        return bool(s["running"] and s["segments"] >= 2)

    wait_for(midway, what="the scrub pass to get going")
    d.stop()
    assert "scrub pass resumed" not in d.log_tail(200)
    d.start()

    def finished() -> bool:
        s = ctl(d, "scrub.status")
        return not s["running"] and s["last_complete_ns"] > 0 and s["pass_started_ns"] == 0

    wait_for(finished, timeout=120, what="the resumed pass to finish")
    s = ctl(d, "scrub.status")
    assert "scrub pass resumed after segment" in d.log_tail(200)
    assert s["segments"] == total  # each segment verified once over both runs, none twice
    assert s["found"] == 0

"""The [stall] section: its default, its documentation, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..configtext import load_text, refused


def _load(tmp_path: Path, text: str) -> float:
    return load_text(tmp_path, text).stall.seconds


def test_default_and_documented(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == 10.0
    assert _load(tmp_path, "[stall]\nseconds = 1.5\n") == 1.5
    shipped = (Path(__file__).resolve().parents[2] / "systemd" / "stowage.toml").read_text()
    assert "[stall]" in shipped and "#seconds = 10.0" in shipped


@pytest.mark.parametrize(("text", "message"), [
    ("[stall]\nseconds = 0\n", "stall.seconds: must be more than 0 and at most 600"),
    ("[stall]\nseconds = -3\n", "stall.seconds: must be more than 0 and at most 600"),
    ("[stall]\nseconds = 1e9\n", "stall.seconds: must be more than 0 and at most 600"),
    ("[stall]\nseconds = nan\n", "stall.seconds: must be more than 0 and at most 600"),
    ('[stall]\nseconds = "10"\n', "stall.seconds"),
    ("[stall]\nbogus = 1\n", "stall.bogus: unknown setting"),
    ("stall = 3\n", "stall"),
])
def test_bad_values(tmp_path: Path, text: str, message: str) -> None:
    assert message in refused(tmp_path, text)

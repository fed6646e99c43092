"""shardfile.write_durable: one pwritev2 with RWF_DSYNC, or write + fdatasync where it is refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from appliance.engine import shardfile


@pytest.fixture(autouse=True)
def _fresh_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shardfile, "_dsync_refused", False)


def _calls(monkeypatch: pytest.MonkeyPatch, refuse: int | None = None) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    pwritev, fdatasync = os.pwritev, os.fdatasync

    def spy_pwritev(fd: int, bufs: Any, offset: int, flags: int = 0) -> int:
        seen.append(("pwritev", flags))
        if refuse is not None and flags:
            raise OSError(refuse, os.strerror(refuse))
        return pwritev(fd, bufs, offset, flags)

    def spy_fdatasync(fd: int) -> None:
        seen.append(("fdatasync", None))
        fdatasync(fd)

    monkeypatch.setattr(os, "pwritev", spy_pwritev)
    monkeypatch.setattr(os, "fdatasync", spy_fdatasync)
    return seen


def test_writes_at_the_offset_and_at_the_position_in_one_synced_call(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _calls(monkeypatch)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        shardfile.write_durable(fd, [b"abc", memoryview(b"defg")], 0)
        shardfile.write_durable(fd, [b"XY"], 2)  # in place
        os.lseek(fd, 0, os.SEEK_END)
        shardfile.write_durable(fd, [b"hij", b"k"], -1)  # at the file's position
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"abXYefghijk"
    assert seen == [("pwritev", os.RWF_DSYNC)] * 3  # no separate fdatasync


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.EINVAL])
def test_a_refused_flag_falls_back_to_fdatasync_for_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         err: int) -> None:
    seen = _calls(monkeypatch, refuse=err)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        shardfile.write_durable(fd, [b"one"], 0)
        shardfile.write_durable(fd, [b"two"], 3)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"onetwo"
    assert seen == [("pwritev", os.RWF_DSYNC), ("pwritev", 0), ("fdatasync", None),
                    ("pwritev", 0), ("fdatasync", None)]


def test_other_errors_are_raised_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _calls(monkeypatch, refuse=errno.ENOSPC)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as exc:
            shardfile.write_durable(fd, [b"data"], 0)
    finally:
        os.close(fd)
    assert exc.value.errno == errno.ENOSPC and seen == [("pwritev", os.RWF_DSYNC)]
    assert not shardfile._dsync_refused


def test_more_parts_than_one_call_takes_are_synced_once_at_the_end(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """RWF_DSYNC syncs at every call: a group longer than one call's buffers is written plain
    and synced once."""
    seen = _calls(monkeypatch)
    parts = [bytes([i % 256]) * 3 for i in range(shardfile._IOV_MAX + 5)]
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        shardfile.write_durable(fd, parts, 0)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(parts)
    assert seen == [("pwritev", 0), ("pwritev", 0), ("fdatasync", None)]

"""The metadata journal (appliance/engine/journal.py): records, torn tails, reading across disks,
disk ownership, quorum with a failing disk, and start-up redo of commits LevelDB lost."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.engine import journal, keys
from appliance.engine.journal import (
    DiskOwned,
    FileScan,
    Journal,
    JournalTarget,
    decode_record,
    encode,
    list_files,
    merged_records,
    own_disk,
    read_file,
    release_disks,
)
from appliance.engine.metadb import MetaDB


def _targets(tmp_path: Path, n: int) -> list[JournalTarget]:
    out = []
    for i in range(n):
        root = tmp_path / f"d{i}"
        root.mkdir()
        out.append(JournalTarget(f"d{i}", root))
    return out


def _write(targets: list[JournalTarget], records: int, quorum: int = 2) -> None:
    j = Journal("app", targets, quorum)
    try:
        for lsn in range(1, records + 1):
            j.append(lsn, encode(lsn, {f"k{lsn}".encode(): b"v", b"gone": None}, lsn))
        j.wait(records)
    finally:
        j.close()


def test_records_round_trip() -> None:
    rec = decode_record(encode(7, {b"a": b"1", b"b": None, b"": b""}, 99))
    assert (rec.lsn, rec.committed_ns, rec.writes) == (7, 99, [(b"a", b"1"), (b"b", None), (b"", b"")])


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_a_torn_tail_ends_the_file_and_another_disk_covers_it(tmp_path: Path, damage: str) -> None:
    targets = _targets(tmp_path, 2)
    _write(targets, 5)
    [(first, path)] = list_files(targets[0].path)
    size = path.stat().st_size
    if damage == "cut":
        os.truncate(path, size - 3)
    else:
        with open(path, "r+b") as f:
            f.seek(size - 2)
            f.write(b"\xff\xff")
    scan = FileScan(path, first)
    assert [lsn for lsn, _ in read_file(path, first, scan)] == [1, 2, 3, 4]
    assert scan.torn and scan.last == 4
    scans: list[tuple[str, FileScan]] = []
    merged = [lsn for lsn, _ in merged_records({t.disk_id: t.path for t in targets}, 0, scans)]
    assert merged == [1, 2, 3, 4, 5]  # the 5th from the other disk
    assert [lsn for lsn, _ in merged_records({t.disk_id: t.path for t in targets}, 3, [])] == [4, 5]


def test_a_disk_is_owned_by_one_process_at_a_time(tmp_path: Path) -> None:
    [t] = _targets(tmp_path, 1)
    j = Journal("app", [t], 1)
    try:
        with pytest.raises(DiskOwned, match=f"pid {os.getpid()}"):
            own_disk(t.path)
    finally:
        j.close()
    fd = own_disk(t.path)  # released by close
    release_disks([fd])
    assert stat.S_IMODE((t.path / "journal").stat().st_mode) == 0o700


def test_a_failing_disk_leaves_the_journal_and_commits_go_on(tmp_path: Path) -> None:
    targets = _targets(tmp_path, 3)
    j = Journal("app", targets, 2)
    try:
        j.append(1, encode(1, {b"a": b"1"}, 1))
        j.wait(1)
        d0 = j.logs["d0"].dir
        d0.rename(d0.with_name("moved"))
        d0.write_bytes(b"")  # no directory to start the next file in: d0 fails at the roll
        j.roll()
        j.append(2, encode(2, {b"b": b"2"}, 2))
        j.wait(2)
        status = j.status()
        assert status.disks == ["d1", "d2"] and "d0" in status.stopped and status.last_lsn == 2
    finally:
        j.close()


def test_start_up_applies_a_record_the_db_lost(tmp_path: Path) -> None:
    targets = _targets(tmp_path, 3)
    db = MetaDB(tmp_path / "meta")
    db.open_journal(targets, 2)
    b = db.batch()
    b.put(b"Bkept", b"1")
    db.commit_now(b)
    lsn = db.lsn
    db.close()
    # a commit that reached the journal but not LevelDB (a crash between the two)
    j = Journal("", targets, 2)
    j.append(lsn + 1, encode(lsn + 1, {b"Blost": b"2", keys.JOURNAL_LSN: keys.pack_seq(lsn + 1)}, 0))
    j.wait(lsn + 1)
    j.close()
    db = MetaDB(tmp_path / "meta")
    try:
        start = db.open_journal(targets, 2)
        assert start.redone == 1 and not start.checkpoint_due
        assert db.get(b"Blost") == b"2" and db.get(b"Bkept") == b"1" and db.lsn == lsn + 1
        b = db.batch()
        b.put(b"Bnext", b"3")
        db.commit_now(b)
        assert db.lsn == lsn + 2
    finally:
        db.close()


def _on_disk(t: JournalTarget) -> list[int]:
    [(first, path)] = list_files(t.path)
    return [lsn for lsn, _ in read_file(path, first, FileScan(path, first))]


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_lazy_record_is_synced_when_waited_for_or_with_the_next_urgent_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazy record (the mount's close) costs no fsync of its own: it stays queued until a
    commit waits for it or an urgent record is written, and then shares that write and fsync."""
    monkeypatch.setattr(journal, "LAZY_SECONDS", 3600.0)
    [t] = _targets(tmp_path, 1)
    j = Journal("app", [t], 1)
    try:
        dl = j.logs["d0"]
        j.append(1, encode(1, {b"a": b"1"}, 1), lazy=True)
        assert dl.durable == 0 and len(dl.items) == 1  # queued, nothing written
        j.wait(1)  # a waiter has it written
        assert dl.durable == 1 and _on_disk(t) == [1]
        j.append(2, encode(2, {b"b": b"2"}, 2), lazy=True)
        j.append(3, encode(3, {b"c": b"3"}, 3))  # urgent: takes the lazy one along
        j.wait(3)
        assert _on_disk(t) == [1, 2, 3]
        assert j.batches.total == 3 and j.batches.counts[1] == 1  # one write carried 2 and 3
    finally:
        j.close()


def test_a_lazy_record_is_written_within_the_interval_or_at_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [t] = _targets(tmp_path, 1)
    monkeypatch.setattr(journal, "LAZY_SECONDS", 0.05)
    j = Journal("app", [t], 1)
    try:
        j.append(1, encode(1, {b"a": b"1"}, 1), lazy=True)
        _until(lambda: j.logs["d0"].durable == 1)  # nobody waits: written after LAZY_SECONDS
        monkeypatch.setattr(journal, "LAZY_SECONDS", 3600.0)
        big = b"x" * (journal.LAZY_BYTES // 2)
        j.append(2, encode(2, {b"b": big}, 2), lazy=True)
        assert j.logs["d0"].durable == 1
        j.append(3, encode(3, {b"c": big}, 3), lazy=True)  # more than LAZY_BYTES queued
        _until(lambda: j.logs["d0"].durable == 3)
        j.append(4, encode(4, {b"d": b"4"}, 4), lazy=True)
    finally:
        j.close()  # writes what is queued, lazy or not
    assert _on_disk(t) == [1, 2, 3, 4]


def test_spare_disks_sync_lazily_and_step_in_when_a_quorum_disk_lags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit needs `quorum` disks: those fsync every group, the spares write with the lazy
    records (fewer fsyncs and thread wake-ups per commit); a commit whose quorum disk does not
    answer within SPARE_AFTER has the spares sync it instead."""
    monkeypatch.setattr(journal, "LAZY_SECONDS", 3600.0)
    monkeypatch.setattr(journal, "SPARE_AFTER", 3600.0)  # however slow this machine's fsyncs
    targets = _targets(tmp_path, 3)
    j = Journal("app", targets, 2)
    try:
        j.append(1, encode(1, {b"a": b"1"}, 1))
        j.wait(1)
        assert [j.logs[d].durable for d in ("d0", "d1", "d2")] == [1, 1, 0]
        assert len(j.logs["d2"].items) == 1  # queued on the spare, not yet written

        stuck = threading.Event()
        flush = journal._DiskLog._flush

        def slow_d0(self: journal._DiskLog, buf: list[bytes]) -> None:
            if self.target.disk_id == "d0" and buf:
                stuck.wait(30)
            flush(self, buf)

        monkeypatch.setattr(journal._DiskLog, "_flush", slow_d0)
        j.append(2, encode(2, {b"b": b"2"}, 2))
        _until(lambda: j.logs["d1"].durable == 2)
        # the loop's check (MetaDB.durable): one disk is not a quorum, and asking neither
        # blocks on the hung disk nor has the spare step in (only a waiter does)
        assert j.covers(1) and not j.covers(2)
        monkeypatch.setattr(journal, "SPARE_AFTER", 0.05)
        j.wait(2)  # d0 hangs: d1 and the spare d2 make the quorum
        assert j.covers(2)
        assert j.logs["d0"].durable == 1 and j.logs["d2"].durable == 2
        stuck.set()
        _until(lambda: j.logs["d0"].durable == 2)
    finally:
        j.close()
    assert [_on_disk(t) for t in targets] == [[1, 2]] * 3


def test_a_stray_file_named_like_a_journal_says_nothing_of_the_lsns(tmp_path: Path) -> None:
    """Its name was taken as its first lsn before its header was read: ffffffffffffffff.jnl made
    the next lsn 2^64 and every start failed (struct.error); found by fuzzing."""
    d = tmp_path / journal.JOURNAL_DIR
    d.mkdir()
    (d / "ffffffffffffffff.jnl").write_bytes(b"not a journal")
    (d / "0000000100000000.jnl").write_bytes(b"")
    dj = journal.scan_disk("disk-x", tmp_path, 0)
    assert dj.max_lsn == 0 and not dj.ahead

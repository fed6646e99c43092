"""The metadata database: LevelDB through plyvel, with versioned records.

Point reads stay inline in the trio loop (microseconds); the synchronous commit of a
WriteBatch (an fsync of LevelDB's log) runs in a worker thread so the loop keeps serving.
The appliance format version is stored in the DB itself; a DB written by a newer format is
refused with a clear message instead of being misread.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import plyvel
import trio

from . import keys
from .errors import FormatError
from .records import Record

DB_FORMAT = 1
R = TypeVar("R", bound=Record)


class Batch:
    """A WriteBatch plus an overlay, so a transaction reads its own writes."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self.writes: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes | Record) -> None:
        self.writes[key] = value.encode() if isinstance(value, Record) else value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.db.get(key)

    def get_record(self, cls: type[R], key: bytes) -> R | None:
        raw = self.get(key)
        return cls.decode(raw) if raw is not None else None

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """All (key, value) under prefix, merged with this batch's writes, in key order."""
        merged = dict(self.db.scan(prefix))
        for k, v in self.writes.items():
            if k.startswith(prefix):
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        return sorted(merged.items())


class MetaDB:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.db = plyvel.DB(str(path), create_if_missing=True)
        except plyvel.Error as exc:
            raise FormatError(f"cannot open metadata DB at {path}: {exc}") from exc
        self.path = path
        self._write_lock = trio.Lock()
        self._check_format()

    def _check_format(self) -> None:
        raw = self.db.get(keys.appliance("format"))
        if raw is None:
            self.db.put(keys.appliance("format"), str(DB_FORMAT).encode(), sync=True)
            self.db.put(keys.appliance("id"), secrets.token_hex(8).encode(), sync=True)
        elif int(raw) > DB_FORMAT:
            raise FormatError(
                f"metadata DB at {self.path} has format {int(raw)}; this Stowage reads format "
                f"{DB_FORMAT} — upgrade Stowage, do not downgrade"
            )

    @property
    def appliance_id(self) -> str:
        return (self.db.get(keys.appliance("id")) or b"").decode()

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.db.get(key)
        return value

    def get_record(self, cls: type[R], key: bytes) -> R | None:
        raw = self.db.get(key)
        return cls.decode(raw) if raw is not None else None

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self.db.iterator(prefix=prefix) as it:
            yield from it

    def scan_records(self, cls: type[R], prefix: bytes) -> Iterator[tuple[bytes, R]]:
        for k, v in self.scan(prefix):
            yield k, cls.decode(v)

    def iterator(self, start: bytes, stop: bytes | None) -> plyvel.Iterator:
        return self.db.iterator(start=start, stop=stop)

    def batch(self) -> Batch:
        return Batch(self)

    def _write(self, batch: Batch, sync: bool) -> None:
        with self.db.write_batch(sync=sync) as wb:
            for k, v in batch.writes.items():
                if v is None:
                    wb.delete(k)
                else:
                    wb.put(k, v)

    async def commit(self, batch: Batch, sync: bool = True) -> None:
        """Write the batch atomically; with sync=True this is the durability point."""
        if batch.writes:
            await trio.to_thread.run_sync(self._write, batch, sync)

    def commit_now(self, batch: Batch, sync: bool = True) -> None:
        """Blocking commit, for start-up and tools outside the loop."""
        self._write(batch, sync)

    def put_hint(self, key: bytes, value: bytes | Record) -> None:
        """A non-synced single write, for hints that may be lost (heal queue entries)."""
        self.db.put(key, value.encode() if isinstance(value, Record) else value)

    def compact(self, prefix: bytes) -> None:
        """Compact the files holding the keys under `prefix` (blocking): overwritten and deleted
        values under it leave the LevelDB files, rather than lingering until LevelDB gets there."""
        self.db.compact_range(start=prefix, stop=keys.prefix_successor(prefix))

    def snapshot(self) -> plyvel.Snapshot:
        return self.db.snapshot()

    def close(self) -> None:
        self.db.close()

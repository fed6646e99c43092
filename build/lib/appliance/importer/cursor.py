"""The import cursor: an append-only file of the source versions already copied, one JSON line
each, under <state_dir>/import/ (0600; it holds names, never credentials). A re-run skips what it
lists, so running the import again right before a switch-over copies only what changed. A line
is appended (and flushed to disk) right after its version is written to Stowage: a crash in
between can at worst copy that one version again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def cursor_path(state_dir: str, endpoint: str) -> Path:
    name = hashlib.sha256(endpoint.rstrip("/").encode()).hexdigest()[:16]
    return Path(state_dir) / "import" / f"s3-{name}.jsonl"


def version_identity(version_id: str, etag: str, last_modified: str) -> str:
    """One source version: for an unversioned bucket ("null") an overwrite is a new identity."""
    return f"{version_id}|{etag}|{last_modified}"


class Cursor:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.Lock()
        self.copied: dict[tuple[str, str], set[str]] = {}  # (bucket, key) -> identities
        self.configured: set[str] = set()  # buckets whose configuration was copied once
        if path.exists():
            self._load()

    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line of an interrupted run
                if not isinstance(rec, dict):
                    continue
                bucket, key, ident = str(rec.get("b", "")), rec.get("k"), rec.get("v")
                if rec.get("gone") and isinstance(key, str):
                    self.copied.pop((bucket, key), None)
                elif isinstance(key, str) and isinstance(ident, str):
                    self.copied.setdefault((bucket, key), set()).add(ident)
                elif rec.get("config"):
                    self.configured.add(bucket)

    def done(self, bucket: str, key: str, ident: str) -> bool:
        return ident in self.copied.get((bucket, key), ())

    def keys(self, bucket: str) -> set[str]:
        return {k for b, k in self.copied if b == bucket}

    def _append(self, rec: dict[str, object]) -> None:
        if self.readonly:
            return
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fdatasync(fd)
            finally:
                os.close(fd)

    def record(self, bucket: str, key: str, ident: str) -> None:
        with self._lock:
            self.copied.setdefault((bucket, key), set()).add(ident)
        self._append({"b": bucket, "k": key, "v": ident})

    def forget(self, bucket: str, key: str) -> None:
        """The key is gone from the source (and was deleted in Stowage)."""
        with self._lock:
            self.copied.pop((bucket, key), None)
        self._append({"b": bucket, "k": key, "gone": True})

    def configured_bucket(self, bucket: str) -> None:
        self.configured.add(bucket)
        self._append({"b": bucket, "config": True})

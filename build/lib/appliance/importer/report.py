"""What an import did (or, with --dry-run, would do)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ImportReport:
    dry_run: bool = False
    buckets: list[str] = field(default_factory=list)
    versions: int = 0  # object versions copied (data)
    delete_markers: int = 0
    bytes: int = 0
    unchanged: int = 0  # versions a previous run had copied
    deleted: int = 0  # keys gone from the source, deleted in Stowage
    configuration: list[str] = field(default_factory=list)  # "bucket: policy", ...
    identities: list[str] = field(default_factory=list)  # "user alice", "policy readonly", ...
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"item", "reason"}
    failed: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, versions: int = 0, delete_markers: int = 0, nbytes: int = 0, unchanged: int = 0,
            deleted: int = 0) -> None:
        with self._lock:
            self.versions += versions
            self.delete_markers += delete_markers
            self.bytes += nbytes
            self.unchanged += unchanged
            self.deleted += deleted

    def skip(self, item: str, reason: str) -> None:
        with self._lock:
            self.skipped.append({"item": item, "reason": reason})

    def fail(self, item: str, reason: str) -> None:
        with self._lock:
            self.failed.append({"item": item, "reason": reason})

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

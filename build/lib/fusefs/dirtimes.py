"""Directory times: the mtime and ctime that entries created, removed or renamed through the
mount give their directories (as on ext4), and the ctime of a renamed directory.

They are shown at once and written to the directories' markers in the background, merged into
the marker's metadata in place (a create in a directory costs no extra commit). A directory
without a marker (implicit, or a bucket) keeps them in memory until the daemon stops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from appliance.engine import ObjectStore
from appliance.engine.errors import NoSuchBucket

from .attrs import Posix, format_time
from .paths import marker_key

Quiet = Callable[[str, list[str]], AbstractContextManager[None]]


class DirTimes:
    def __init__(self) -> None:
        self.times: dict[tuple[str, str], tuple[int, int]] = {}  # (bucket, path) -> (mtime, ctime)
        self.dirty: set[tuple[str, str]] = set()

    def changed(self, bucket: str, path: str, now: int) -> None:
        """An entry of the directory was added, removed or renamed."""
        self._set(bucket, path, (now, now))

    def status_changed(self, bucket: str, path: str, now: int, posix: Posix) -> None:
        """The directory itself was renamed: ctime only."""
        mtime, _ = self.times.get((bucket, path), (posix.mtime_ns, 0))
        self._set(bucket, path, (mtime, now))

    def _set(self, bucket: str, path: str, times: tuple[int, int]) -> None:
        self.times[(bucket, path)] = times
        if path:  # a bucket has no marker
            self.dirty.add((bucket, path))

    def apply(self, bucket: str, path: str, p: Posix) -> Posix:
        t = self.times.get((bucket, path))
        if t is not None:
            p.mtime_ns, p.ctime_ns = t
        return p

    def forget(self, bucket: str, path: str) -> None:
        """The directory was removed, or its marker now holds what it shows (chmod, ...)."""
        self.times.pop((bucket, path), None)
        self.dirty.discard((bucket, path))

    def move(self, bucket: str, old: str, new: str) -> None:
        below = old + "/"
        for k in [k for k in self.times if k[0] == bucket and (k[1] == old or k[1].startswith(below))]:
            q = (bucket, new + k[1][len(old):])
            self.times[q] = self.times.pop(k)
            self.dirty.discard(k)
            self.dirty.add(q)  # a flush in flight may have looked for it under the old name

    def _batches(self) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
        by_bucket: dict[str, dict[str, dict[str, str]]] = {}
        for bucket, path in self.dirty:
            mtime, ctime = self.times[(bucket, path)]
            by_bucket.setdefault(bucket, {})[marker_key(path)] = {"mtime": format_time(mtime),
                                                                  "ctime": format_time(ctime)}
        self.dirty.clear()
        yield from by_bucket.items()

    async def flush(self, store: ObjectStore, quiet: Quiet) -> None:
        """Write what changed to the markers; what has none stays in memory only."""
        for bucket, markers in list(self._batches()):
            try:
                with quiet(bucket, list(markers)):
                    missing = await store.touch_markers(bucket, markers)
            except NoSuchBucket:
                missing = list(markers)
            for key in set(markers) - set(missing):
                path = key[:-1]
                if (bucket, path) not in self.dirty:  # not changed again meanwhile
                    self.times.pop((bucket, path), None)

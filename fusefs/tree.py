"""Namespace queries: what a path is, its attributes, and directory pages (all point reads or
seek-based range scans of the metadata DB, so cheap enough to do on every request)."""

from __future__ import annotations

import stat
import time
from dataclasses import dataclass

from appliance.engine import ObjectStore, ObjectVersion
from appliance.engine.errors import NoSuchBucket, NoSuchKey

from .access import BucketDefaults
from .attrs import Posix, Version, posix_of, trusted_mode
from .inodes import BUCKET, DIR, FILE, FILE_TYPE, KIND_OF_TYPE, LINK, ROOT, Node
from .listcache import ListCache, Listed
from .paths import dir_prefix, join, marker_key, segment_visible

PAGE = 1000
# A light page is used when at most one file in this many has no kept attributes (each of those
# is a point read and a whole record; past that, one whole-record page costs less).
MISSING_SHARE = 4
MAX_COUNTS = 100_000  # subdirectory counts kept (a few MB)
# The mount's root: anyone may pass through to a bucket opened to them; only root lists buckets
# (bucket names are something S3's ListBuckets may keep from a user).
ROOT_MODE = stat.S_IFDIR | 0o711


# A directory entry: (name, kind, what a listing shows of it: None for a directory)
Entry = tuple[str, str, Listed | None]


@dataclass
class Found:
    kind: str
    version: ObjectVersion | None  # the file's version, or the directory's marker


class Tree:
    def __init__(self, store: ObjectStore, defaults: BucketDefaults) -> None:
        self.store = store
        self.defaults = defaults
        self.started_ns = time.time_ns()
        # subdirectory counts (a scan of the directory's keys), kept until a change could move them
        self.counts: dict[tuple[str, str], int] = {}
        self.cache = ListCache()  # what listings showed of files, for the next listing

    def head(self, bucket: str, key: str) -> ObjectVersion | None:
        try:
            return self.store.head_object(bucket, key)
        except (NoSuchKey, NoSuchBucket):
            return None

    def peek(self, bucket: str, key: str) -> ObjectVersion | None:
        """head() for a caller that only reads the version (ObjectStore.shared_latest)."""
        try:
            return self.store.shared_latest(bucket, key)
        except NoSuchBucket:
            return None

    def bucket_exists(self, name: str) -> bool:
        try:
            self.store.require_bucket(name)
            return True
        except NoSuchBucket:
            return False

    def has_children(self, bucket: str, path: str, ignore_marker: bool = False) -> bool:
        prefix = dir_prefix(path)
        try:
            page = self.store.list_objects(bucket, prefix=prefix, max_keys=2)
        except NoSuchBucket:
            return False
        keys = [v.key for v in page.entries]
        if ignore_marker:
            keys = [k for k in keys if k != prefix]
        return bool(keys)

    def lookup(self, bucket: str, path: str) -> Found | None:
        """What (bucket, path) is; a directory hides a file of the same name."""
        if not bucket:
            return Found(ROOT, None)
        if not path:
            return Found(BUCKET, None) if self.bucket_exists(bucket) else None
        marker = self.head(bucket, marker_key(path))
        if marker is not None or self.has_children(bucket, path):
            return Found(DIR, marker)
        v = self.head(bucket, path)
        if v is None:
            return None
        return Found(kind_of_version(v), v)

    def posix(self, node: Node, found: Found | None) -> tuple[Posix, int]:
        """(attributes, size) of a node as stored."""
        if node.kind == ROOT:
            return Posix(ROOT_MODE, 0, 0, self.started_ns, self.started_ns, self.started_ns), 0
        d = self.defaults.of(node.bucket)
        if node.kind == BUCKET:
            try:
                created = self.store.shared_bucket(node.bucket).created_ns
            except NoSuchBucket:
                created = self.started_ns
            return posix_of(None, stat.S_IFDIR, d, created), 0
        v = found.version if found else None
        p = posix_of(v, node.ftype, d, self.started_ns)
        return p, v.size if v and node.kind in (FILE, LINK) else 0

    def subdirs(self, node: Node) -> int:
        """How many subdirectories a directory shows (its nlink is 2 more)."""
        if node.kind == ROOT:
            return len(self.store.list_buckets())
        n = self.counts.get((node.bucket, node.path))
        if n is None:
            try:
                n = self.store.count_common_prefixes(node.bucket, dir_prefix(node.path), segment_visible)
            except NoSuchBucket:
                return 0
            if len(self.counts) >= MAX_COUNTS:
                self.counts.clear()
            self.counts[(node.bucket, node.path)] = n
        return n

    def dirs_changed(self, bucket: str, key: str) -> None:
        """A key was added or removed: every directory above it may have gained or lost a
        subdirectory (an implicit one appears with its first key)."""
        parts = key.rstrip("/").split("/")
        for i in range(len(parts)):
            self.counts.pop((bucket, "/".join(parts[:i])), None)

    def tree_moved(self, bucket: str, path: str) -> None:
        """A directory was made, removed or renamed: its parents' counts, and its own and those of
        everything below it, are no longer known."""
        self.dirs_changed(bucket, path)
        below = path + "/" if path else ""
        for k in [k for k in self.counts if k[0] == bucket and (k[1] == path or k[1].startswith(below))]:
            del self.counts[k]

    def listed(self, v: Version) -> Listed:
        """What a listing shows of the file whose version is v (kept for the next listing)."""
        kind = kind_of_version(v)
        rec = self.store.inode_of(v) if v.inode else None
        item = Listed.of(v.seq, kind, posix_of(v, FILE_TYPE[kind], self.defaults.of(v.bucket), self.started_ns),
                         v.size if kind in (FILE, LINK) else 0, rec.inode_id if rec is not None else "")
        self.cache.put(v, item)
        return item

    def page(self, node: Node, after: str, light: bool = True) -> tuple[list[Entry], str, bool, bool]:
        """One page of a directory: ([(name, kind, listed file or None)], next marker, more?, and
        whether the next page should be tried `light`: from the light listing and the files'
        attributes kept from earlier listings (listcache.py), when most of them are kept."""
        if node.kind == ROOT:
            names = [b.name for b in self.store.list_buckets() if b.name > after]
            return [(n, BUCKET, None) for n in names], "", False, False
        prefix = dir_prefix(node.path)
        files: list[tuple[str, Listed]] | None = None
        if light:
            lp = self.store.list_entries(node.bucket, prefix=prefix, delimiter="/", start_after=after, max_keys=PAGE)
            # (the directory's own marker is skipped below: neither kept nor read)
            files = self._kept(node.bucket, [(e.key, e.seq) for e in lp.entries if e.key != prefix])
            cps, truncated, marker = lp.common_prefixes, lp.is_truncated, lp.next_marker
        if files is None:
            page = self.store.list_posix_entries(node.bucket, prefix=prefix, delimiter="/", start_after=after,
                                                 max_keys=PAGE)
            files = [(v.key, self.listed(v)) for v in page.entries if v.key != prefix]
            cps, truncated, marker = page.common_prefixes, page.is_truncated, page.next_marker
            light = False
        items: list[tuple[str, Listed | None]] = [(cp, None) for cp in cps]
        items += files
        items.sort(key=lambda t: t[0])
        cp_set = set(cps)
        last = items[-1][0] if items else ""
        out: list[Entry] = []
        for key, item in items:
            name = key[len(prefix):]
            if item is None:
                name = name[:-1]
                if segment_visible(name):
                    out.append((name, DIR, None))
                continue
            if not segment_visible(name):
                continue  # an unrepresentable key
            if key + "/" in cp_set:
                continue  # the directory of the same name wins
            if truncated and last.startswith(key) and self.has_children(node.bucket, key):
                continue
            out.append((name, item.kind, item))
        return out, marker, truncated, light

    def _kept(self, bucket: str, listed: list[tuple[str, int]]) -> list[tuple[str, Listed]] | None:
        """The files of a light page with their kept attributes, those not kept read one by one;
        None when too many are not kept (a whole-record page is then cheaper)."""
        found = [(key, self.cache.get(bucket, key, seq)) for key, seq in listed]
        missing = [key for key, item in found if item is None]
        if len(missing) > len(found) // MISSING_SHARE:
            return None
        out: list[tuple[str, Listed]] = []
        for key, item in found:
            if item is None:
                v = self.head(bucket, key)
                if v is None:
                    continue  # removed since the listing
                item = self.listed(v)
            out.append((key, item))
        return out

    def child_path(self, node: Node, name: str) -> tuple[str, str]:
        if node.kind == ROOT:
            return name, ""
        return node.bucket, join(node.path, name)


def kind_of_version(v: Version) -> str:
    """An object is a symlink or a special file only when its trusted mode says so (S3 writers
    that may not set POSIX attributes cannot make one)."""
    mode = trusted_mode(v)
    return FILE if mode is None else KIND_OF_TYPE.get(stat.S_IFMT(mode), FILE)

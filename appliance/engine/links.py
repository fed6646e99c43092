"""What the mount needs beyond objects: hard links, directory times, subdirectory counts.

Hard links: every name of a file is a normal key; the file's identity is an InodeRecord
(`F<bucket>\\0<inode id>`) listing them, and each link's current version carries `inode` =
that id, the same data and the same metadata. The Txn (storecore.py) keeps the list and the
versions in step: a version written with `inode` joins its key to the file, any other write to
the key (an S3 PUT, copy, delete) takes the key out, and a record left with no links is
deleted. Writes through the mount pass PutMeta.inode and reach every link in one commit
(StoreCore.put_file_in).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import keys, listing, lock
from .errors import InvalidArgument, NoSuchKey, PreconditionFailed
from .names import check_key
from .records import InodeRecord, ObjectVersion
from .storecore import Content, PutMeta, StoreCore, new_inode_id


class LinkStore(StoreCore):
    """StoreCore plus the mount's namespace operations."""

    def get_inode(self, bucket: str, inode_id: str) -> InodeRecord | None:
        return self.db.get_record(InodeRecord, keys.inode(bucket, inode_id)) if inode_id else None

    def inode_of(self, v: ObjectVersion | listing.PosixEntry) -> InodeRecord | None:
        """The file whose hard link v's key is, while it is one (None: a file with one name)."""
        rec = self.get_inode(v.bucket, v.inode)
        return rec if rec is not None and v.key in rec.links else None

    async def link_object(self, bucket: str, src_key: str, dst_key: str, meta: PutMeta) -> ObjectVersion:
        """Make dst_key another name of the file at src_key (PreconditionFailed if dst_key exists).
        Every name gets a new version with `meta` (the file's new ctime) in the same commit.
        Returns dst_key's version; its `inode` is the file's identity."""
        check_key(dst_key)
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            cur = t.latest(bucket, src_key)
            if cur is None:
                raise NoSuchKey(bucket=bucket, key=src_key)
            if t.latest(bucket, dst_key) is not None:
                raise PreconditionFailed(condition="link", key=dst_key)
            rec = t.linked(cur)
            if rec is None:  # the file's first extra name: it gets an identity
                rec = InodeRecord(bucket, new_inode_id(), [], time.time_ns())
                t.batch.put(keys.inode(bucket, rec.inode_id), rec)
            c = Content.of(cur)
            for k in rec.links or [src_key]:
                self.put_content_in(t, b, k, meta, c, rec.inode_id)
            return self.put_content_in(t, b, dst_key, meta, c, rec.inode_id)

    async def unlink_object(self, bucket: str, key: str, others: PutMeta | None = None) -> int:
        """Remove one name of a file (its current version, as delete_object does). When the file
        has other names left, they get `others` (the file's new ctime) in the same commit.
        Returns how many names the file has left."""
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            cur = t.latest(bucket, key)
            if cur is None:
                raise NoSuchKey(bucket=bucket, key=key)
            rec = t.linked(cur)
            self._delete_current_in(t, b, key)
            after = t.inode(bucket, rec.inode_id) if rec is not None else None
            if after is None:
                return 0
            if others is not None:
                c = Content.of(cur)
                for k in after.links:
                    self.put_content_in(t, b, k, others, c, after.inode_id)
            return len(after.links)

    async def touch_markers(self, bucket: str, times: dict[str, dict[str, str]]) -> list[str]:
        """Directory times kept by the mount: merge times[marker key] into the user metadata of
        each marker's current version, in place (like tags: no new version, same Last-Modified).
        Returns the keys that had no current version (implicit directories) or one object lock
        protects (no version under object lock is changed in place, not even its metadata)."""
        missing = []
        now = time.time_ns()
        async with self.txn() as t:
            self._bucket_in(t, bucket)
            for key, values in times.items():
                v = t.latest(bucket, key)
                if v is None or lock.protection(v, now):
                    missing.append(key)
                    continue
                v.user_meta.update(values)
                t.batch.put(keys.version(bucket, key, v.seq), v)
                t.batch.put(keys.latest(bucket, key), v)
                t.changed.append((bucket, key))
        return missing

    def count_common_prefixes(self, bucket: str, prefix: str, accept: Callable[[str], bool]) -> int:
        """How many common prefixes (with delimiter "/") lie directly under `prefix` whose name
        (without `prefix` and the trailing "/") passes `accept`: a directory's subdirectories.
        A key-only scan that seeks past each one (blocking for a directory of very many files)."""
        if prefix and not prefix.endswith("/"):
            raise InvalidArgument("prefix must end with '/'")
        self.require_bucket(bucket)
        return listing.count_prefixes(self.db, bucket, prefix, accept)

"""Server-side encryption in the mount: SSE-S3 and SSE-KMS files read and write transparently.

A new file (or symlink, special file, directory marker) gets its bucket's default encryption,
the rule of an S3 write without encryption headers. A write into an existing file keeps the
file's protection (its mode, KMS key and encryption context), so a file is never part plaintext
and part encrypted, nor under two keys. SSE-C files need their owner's key, which no filesystem
call can bring: they show their size and attributes and their metadata may change (that shares
the data), but reading them, opening them for writing and truncating them are EACCES.
"""

from __future__ import annotations

import errno

from appliance.engine import KeyResolver, ObjectStore, ObjectVersion, SegmentKey
from appliance.iam.kms import MODE_C, MODE_S3
from appliance.iam.objectkeys import ObjectKeys, Protection, protection_of

from .errnos import fail


class MountKeys:
    def __init__(self, store: ObjectStore, keys: ObjectKeys) -> None:
        self.store = store
        self.keys = keys
        self.resolver: KeyResolver = keys.resolver()  # SSE-C envelopes refuse it (EACCES)

    async def for_new(self, bucket: str, key: str) -> Protection:
        """The protection of a new object: its bucket's default."""
        return await self.keys.bucket_default(self.store.shared_bucket(bucket), key)  # read only

    async def for_write(self, bucket: str, key: str, base: ObjectVersion | None) -> Protection:
        """The protection new data of `base` (the version a write started from) is written with."""
        if base is None:
            return await self.for_new(bucket, key)
        p = protection_of(self.store, base)
        if p.mode == MODE_C:
            raise fail(errno.EACCES)
        return await self.keys.resolved(p)  # a KMS key disabled since: KMS.DisabledException

    def check_writable(self, v: ObjectVersion | None) -> None:
        """EACCES for a file whose data cannot be rewritten here (SSE-C)."""
        if v is not None and protection_of(self.store, v).mode == MODE_C:
            raise fail(errno.EACCES)

    def new_key(self, p: Protection) -> SegmentKey | None:
        return self.keys.new_key(p)

    def key_for(self, p: Protection, body: bytes) -> SegmentKey | None:
        """`new_key` for a body written whole; none for an empty SSE-S3 one, which stores no
        segment (segments.py), so its key would be made and wrapped for nothing (every creat
        writes one: half of the 2.1% of a `tar -x` profile spent making keys). SSE-KMS and SSE-C
        still make theirs: making it is what refuses a disabled KMS key."""
        if not body and p.mode == MODE_S3:
            return None
        return self.new_key(p)

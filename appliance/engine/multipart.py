"""Multipart uploads: parts are segments; completion concatenates segment lists (no data copied).

The ETag of a completed upload is S3's: hex MD5 of the concatenated binary part MD5s, "-N". A
completion sent again gets the same answer for a while (completions.py).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from diskmgr.crashpoints import crash_point

from . import completions, keys, listing, lock
from .crypto import KeyResolver, SegmentKey
from .errors import EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartOrder, NoSuchUpload
from .names import check_key, check_new_key, cli_safe_token
from .records import ObjectVersion, PartRecord, UploadRecord
from .refs import slice_refs
from .segments import BodySummary
from .storecore import PutMeta, StoreCore, copy_grants, unquote_etag, whole_ref

MIN_PART_SIZE = 5 << 20
MAX_PART_NUMBER = 10000


def multipart_etag(part_etags: list[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags)).hexdigest()
    return f"{digest}-{len(part_etags)}"


def upload_id_at(initiated_ns: int) -> str:
    """A new upload id: its initiation time in fixed-width hex, then 32 random bytes. Uploads
    are keyed by key and upload id, so those of one key list in initiation order, as S3 lists
    them, and the upload-id marker stays a plain lexicographic one."""
    return f"{initiated_ns:016x}{cli_safe_token(32)}"


class MultipartStore(StoreCore):
    """StoreCore plus multipart uploads."""

    async def create_multipart(self, bucket: str, key: str, meta: PutMeta | None = None,
                               checksum_algorithm: str = "", checksum_type: str = "") -> UploadRecord:
        check_key(key)
        b = self.get_bucket(bucket)
        check_new_key(key, self.db.get(keys.latest(bucket, key)) is not None, long_key=False)
        meta = meta or PutMeta()
        self.placement(meta.storage_class)  # InvalidStorageClass before the upload exists
        lock.check_settings(b, meta.lock_mode, meta.legal_hold)  # the default retention applies at completion
        now = time.time_ns()
        up = UploadRecord(
            upload_id=upload_id_at(now), bucket=bucket, key=key, initiated_ns=now,
            content_type=meta.content_type, headers=dict(meta.headers), user_meta=dict(meta.user_meta),
            tags=dict(meta.tags), storage_class=meta.storage_class, checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type, owner=meta.owner or b.owner, acl=copy_grants(meta.acl),
            posix_trusted=meta.posix_trusted, sse=dict(meta.sse) if meta.sse else None,
            lock_mode=meta.lock_mode, retain_until_ns=meta.retain_until_ns, legal_hold=meta.legal_hold,
        )
        async with self.txn() as t:
            self._bucket_in(t, bucket)
            t.batch.put(keys.upload(bucket, key, up.upload_id), up)
        return up

    def get_upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        self.require_bucket(bucket)
        up = self.db.get_record(UploadRecord, keys.upload(bucket, key, upload_id)) if "\x00" not in upload_id else None
        if up is None:
            raise NoSuchUpload(upload_id=upload_id)
        return up

    @staticmethod
    def _check_part_number(part_number: int) -> None:
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive")

    async def _commit_part(self, bucket: str, key: str, upload_id: str, part: PartRecord,
                           new_segment: Any = None) -> None:
        async with self.txn() as t:
            if t.batch.get(keys.upload(bucket, key, upload_id)) is None:
                raise NoSuchUpload(upload_id=upload_id)
            old = t.batch.get_record(PartRecord, keys.part(upload_id, part.part_number))
            if old is not None:
                t.decref(old.segments)
            if new_segment is not None:
                t.add_segment(new_segment)
            t.incref(part.segments)
            t.batch.put(keys.part(upload_id, part.part_number), part)

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: bytes | AsyncIterable[bytes | bytearray],
        finalize: Callable[[BodySummary], dict[str, str] | None] | None = None,
        size_hint: int | None = None,
        *,
        encrypt_with: SegmentKey | None = None,
    ) -> PartRecord:
        self._check_part_number(part_number)
        up = self.get_upload(bucket, key, upload_id)
        identity = {"bucket": bucket, "key": key, "upload_id": upload_id, "part": part_number}
        place = self.placement(up.storage_class)
        seg, summary = await self.write_body(body, identity, place.pool, size_hint, encrypt_with,
                                             geometry=place.geometry)
        try:
            checksums = finalize(summary) if finalize else None
            part = PartRecord(part_number, summary.size, summary.etag, time.time_ns(), whole_ref(seg),
                              dict(checksums or {}))
            await self._commit_part(bucket, key, upload_id, part, seg)
        except BaseException:
            await self.discard_segment(seg)
            raise
        return part

    async def upload_part_copy(self, bucket: str, key: str, upload_id: str, part_number: int,
                               src: ObjectVersion, start: int, end: int, *, decrypt_with: KeyResolver | None = None,
                               rewrite: bool = False, encrypt_with: SegmentKey | None = None,
                               observe: Callable[[bytes | bytearray], None] | None = None,
                               finalize: Callable[[BodySummary], dict[str, str] | None] | None = None) -> PartRecord:
        """A part that references a byte range of another object. The range is read once to
        compute its MD5 (the part's ETag), but no data is written. `observe` sees every byte of
        the range as it is read (the caller's checksums); `finalize`, as for upload_part, returns
        the part's checksums before the commit.

        rewrite=True streams the range into a new segment encrypted with `encrypt_with` (None:
        plaintext) instead: the upload's key differs from the source's (see copy_object)."""
        source = self._observed(self.read_object(src, start, end, decrypt_with=decrypt_with), observe)
        if rewrite:
            return await self.upload_part(bucket, key, upload_id, part_number, source, finalize,
                                          size_hint=end - start, encrypt_with=encrypt_with)
        if encrypt_with is not None:
            raise ValueError("upload_part_copy: encrypt_with needs rewrite=True")
        self._check_part_number(part_number)
        self.get_upload(bucket, key, upload_id)
        md5 = hashlib.md5()
        async for piece in source:
            md5.update(piece)
        summary = BodySummary(end - start, md5.hexdigest())
        checksums = finalize(summary) if finalize else None
        part = PartRecord(part_number, end - start, summary.md5, time.time_ns(),
                          slice_refs(src.segments, start, end), dict(checksums or {}))
        await self._commit_part(bucket, key, upload_id, part)
        return part

    @staticmethod
    async def _observed(stream: AsyncIterator[bytes | bytearray], observe: Callable[[bytes | bytearray], None] | None
                        ) -> AsyncIterator[bytes | bytearray]:
        async for piece in stream:
            if observe is not None:
                observe(piece)
            yield piece

    def list_parts(self, upload_id: str, part_number_marker: int = 0,
                   max_parts: int = 1000) -> tuple[list[PartRecord], bool]:
        parts: list[PartRecord] = []
        start = keys.part(upload_id, part_number_marker + 1)
        with self.db.iterator(start=start, stop=keys.prefix_successor(keys.part_prefix(upload_id))) as it:
            for _, raw in it:
                if len(parts) == max_parts:
                    return parts, True
                parts.append(PartRecord.decode(raw))
        return parts, False

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self.get_upload(bucket, key, upload_id)
        async with self.txn() as t:
            if t.batch.get(keys.upload(bucket, key, upload_id)) is None:
                raise NoSuchUpload(upload_id=upload_id)
            self._drop_upload_in(t, bucket, key, upload_id)

    async def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        min_part_size: int = MIN_PART_SIZE,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        finalize: Callable[[list[PartRecord]], dict[str, str] | None] | None = None,
    ) -> ObjectVersion:
        if not parts:
            raise InvalidArgument("You must specify at least one part", code_hint="MalformedXML")
        numbers = [n for n, _ in parts]
        for n in numbers:
            self._check_part_number(n)
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise InvalidPartOrder()
        async with self.txn() as t:
            b = self._bucket_in(t, bucket)
            up = t.batch.get_record(UploadRecord, keys.upload(bucket, key, upload_id))
            if up is None:
                done = completions.repeated_in(t, bucket, key, upload_id, parts)
                if done is not None:
                    return done  # the same completion again: its answer again
                raise NoSuchUpload(upload_id=upload_id)
            chosen: list[PartRecord] = []
            for n, etag in parts:
                p = t.batch.get_record(PartRecord, keys.part(upload_id, n))
                if p is None or unquote_etag(etag) != p.etag:
                    raise InvalidPart(part_number=n)
                chosen.append(p)
            for p in chosen[:-1]:
                if p.size < min_part_size:
                    raise EntityTooSmall(part_number=p.part_number, size=p.size)
            self._check_conditions(t.latest(bucket, key), if_match, if_none_match)
            checksums = finalize(chosen) if finalize else None
            segments = [s for p in chosen for s in p.segments]
            meta = PutMeta(up.content_type, dict(up.headers), dict(up.user_meta), dict(up.tags), up.storage_class,
                           up.posix_trusted, up.owner, copy_grants(up.acl), sse=dict(up.sse) if up.sse else None,
                           lock_mode=up.lock_mode, retain_until_ns=up.retain_until_ns, legal_hold=up.legal_hold)
            v = self._new_version(b, key, meta, sum(p.size for p in chosen),
                                  multipart_etag([p.etag for p in chosen]), segments)
            v.parts = [p.size for p in chosen]
            if checksums:
                v.checksums = dict(checksums)
                v.checksum_type = up.checksum_type or "COMPOSITE"
                v.part_checksums = [{a: p.checksums[a] for a in checksums if a in p.checksums} for p in chosen]
            t.put_version(v)
            completions.remember_in(t, upload_id, v, parts)
            self._drop_upload_in(t, bucket, key, upload_id)
        crash_point("multipart.completed")
        return v

    def list_uploads(self, bucket: str, prefix: str = "", delimiter: str = "", key_marker: str = "",
                     upload_id_marker: str = "", max_uploads: int = 1000) -> listing.UploadPage:
        self.require_bucket(bucket)
        return listing.list_uploads(self.db, bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads)

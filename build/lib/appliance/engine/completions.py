"""Completed multipart uploads, remembered for an hour: CompleteMultipartUpload is idempotent.

A client whose completion succeeded but whose answer was lost (a timeout, a dropped connection,
a daemon restart after the commit) sends the same completion again. AWS answers that repeat with
the same result while the version the completion made is still the current version of the key;
without a record of the completion the upload would simply be gone (NoSuchUpload).

So the commit that completes an upload also stores a CompletionRecord (C key) naming the
version it made and a digest of the part list, plus a time-ordered expiry entry (Q key). A
repeat with the same part list whose version is still the key's latest gets that version back;
anything else (another part list, a newer write, a delete) is NoSuchUpload, as before. The GC
pass drops records older than COMPLETION_SECONDS (gc.expire_completions), so they never pile up.
"""

from __future__ import annotations

import hashlib
import time

from . import keys
from .records import CompletionRecord, ObjectVersion
from .storecore import Txn, unquote_etag

COMPLETION_SECONDS = 3600.0  # how long a completed upload answers a repeated completion


def parts_digest(parts: list[tuple[int, str]]) -> str:
    h = hashlib.sha256()
    for number, etag in parts:
        h.update(f"{number}:{unquote_etag(etag)}\n".encode())
    return h.hexdigest()


def remember_in(t: Txn, upload_id: str, v: ObjectVersion, parts: list[tuple[int, str]]) -> None:
    """In the completing commit, after `v` was put (it has its seq)."""
    now = time.time_ns()
    t.batch.put(keys.completion(upload_id),
                CompletionRecord(upload_id, v.bucket, v.key, v.version_id, v.seq, v.etag, parts_digest(parts), now))
    t.batch.put(keys.completion_expiry(now, upload_id), b"")


def repeated_in(t: Txn, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> ObjectVersion | None:
    """The version an earlier, identical completion of this upload made, if it is still the
    current version of the key (and the record has not expired); else None."""
    rec = t.batch.get_record(CompletionRecord, keys.completion(upload_id))
    if rec is None or (rec.bucket, rec.key) != (bucket, key) or rec.parts_digest != parts_digest(parts):
        return None
    if time.time_ns() - rec.completed_ns > COMPLETION_SECONDS * 1e9:
        return None  # expired, not yet swept
    current = t.latest(bucket, key)
    if current is None or (current.seq, current.version_id, current.etag) != (rec.seq, rec.version_id, rec.etag):
        return None
    return current

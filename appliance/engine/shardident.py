"""What a segment's shard headers record of the object version it holds (their `identity`).

Two readers depend on it: `recover-metadata`, which rebuilds a version from the headers when
the journal is incomplete (recover.py), and the GC's object-lock safety net, which keeps a
segment whose headers name a version that still references it and is protected
(lockstore.protected_writer). A PUT's segment names its version when it is written; the
segment writer adds the ETag and size it computed (segments.py). A segment re-encoded into
another storage class (transcode.py) replaces that segment in exactly one version, so it names
that same version, with what the move changed (the class) and what the original write could not
know yet (the checksums, computed after the data was sealed; its Last-Modified). An SSE-C
replica's segments (sealed.py) name the replica's version, whose id is its source's and known
before the write, with the source's ETag and size when one segment holds it whole. A file
changed in place through the mount (patch.py) names the version its commit makes: rewritten
whole, like a PUT's; spliced into its base version, with how to splice it again (of_patch). So
does one written in order (fusefs/staging.py), like a PUT's, also when streamed while written
(fusefs/streaming.py: the version is chosen at the commit, before its segment is sealed:
SegmentIO.write's `named`); a stream's segment that did not become a version names none.
"""

from __future__ import annotations

import json
from typing import Any

from . import lock
from .records import BucketRecord, ObjectVersion, SegmentRecord

DEFAULT_CLASS = "STANDARD"  # left out of a header: what a version without a class is


def of_new_version(bucket: BucketRecord, key: str, version_id: str, storage_class: str, lock_mode: str,
                   retain_until_ns: int, legal_hold: bool) -> dict[str, Any]:
    """The identity of a new version's segment (the writer adds "etag" and "size")."""
    out: dict[str, Any] = {"bucket": bucket.name, "key": key, "version_id": version_id,
                           **lock.identity_fields(bucket, lock_mode, retain_until_ns, legal_hold)}
    if storage_class != DEFAULT_CLASS:
        out["storage_class"] = storage_class
    return out


def of_transcoded(bucket: BucketRecord, v: ObjectVersion, old: SegmentRecord, storage_class: str) -> dict[str, Any]:
    """The identity of the segment re-encoding `old` for version `v`, which is then in
    `storage_class`. Its lock fields are the version's now (a retention may have been extended
    since the PUT). `transcode_of` names the segment it replaces: recovery swaps it in where a
    version it knows still uses `old`. Only a segment that is the whole version (a single PUT's)
    carries the version's ETag and size; one holding a piece of it (a multipart part, a ranged
    copy's slice) is marked `partial`, so that recovery never takes it for the whole object,
    while the GC still sees which version it belongs to."""
    out = of_new_version(bucket, v.key, v.version_id, storage_class, v.lock_mode, v.retain_until_ns, v.legal_hold)
    out["transcode_of"] = old.segment_id
    out["last_modified_ns"] = v.last_modified_ns
    whole = (not v.parts and len(v.segments) == 1 and v.segments[0].segment_id == old.segment_id
             and v.segments[0].offset == 0 and v.segments[0].length == old.plain_length == v.size)
    return with_content(out, whole, v.etag, v.size, v.checksums, v.checksum_type)


def with_content(out: dict[str, Any], whole: bool, etag: str, size: int, checksums: dict[str, str],
                 checksum_type: str) -> dict[str, Any]:
    """`out` with the version's ETag, size and checksums when its segment holds the whole version
    (recovery can then rebuild the version from it alone), else marked `partial`."""
    if not whole:
        out["partial"] = True
        return out
    out.update(etag=etag, size=size)
    if checksums:
        out.update(checksums=dict(checksums), checksum_type=checksum_type)
    return out


# what a patch's identity may take of its header's 8 KiB (the rest: the envelope, the geometry):
# one with more dirty runs (or a very long key) names its version, for the GC, but cannot be
# rebuilt from its headers
PATCH_IDENTITY_BYTES = 4096


def of_patch(out: dict[str, Any], base: ObjectVersion, runs: list[tuple[bool, int, int]], size: int
             ) -> dict[str, Any]:
    """`out` (of_new_version's) for the segment of a patch (patch.py) that holds only the new
    version's dirty runs, the rest being `base`'s: how to splice the version again from `base`
    (its version id, key when another, and ETag, so that recovery never splices into another
    version of that id), the new size and the dirty runs [start, end) as one flat list. The
    ETag the writer adds is the segment's, from which the version's composite one is computed."""
    out["partial"] = True
    how = {"patch_of": base.version_id, "patch_base_etag": base.etag, "patch_size": size,
           "patch_dirty": [x for d, s, e in runs if d for x in (s, e)]}
    if base.key != out["key"]:
        how["patch_key"] = base.key
    # a base without a version id is the mount's stream, no version's yet: nothing to splice into.
    # (json.dumps escapes to ASCII, as the header's JSON does.)
    if base.version_id and len(json.dumps({**out, **how})) <= PATCH_IDENTITY_BYTES:
        out.update(how)
    return out

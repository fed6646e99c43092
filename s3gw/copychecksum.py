"""CopyObject with x-amz-checksum-algorithm: the copy gets a full-object checksum in the named
algorithm, as on AWS, which also makes it the way to give an existing object another checksum
(a copy onto itself that changes only the algorithm is a change, not the refused no-op copy).

A copy by reference writes no data, but a checksum the source does not have is the content's:
the source is read once to compute it (hashed in a worker thread, like request bodies). A
source that already has a full-object checksum in that algorithm keeps it without a read.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import trio

from appliance.engine import KeyResolver, ObjectStore, ObjectVersion

from .body import THREAD_MIN
from .checksums import ALGORITHMS, new_hasher
from .errors import S3Error


def requested(headers: Mapping[str, str]) -> str | None:
    """The algorithm a copy asks for (None: keep the source's checksums)."""
    raw = headers.get("x-amz-checksum-algorithm")
    if raw is None:
        return None
    alg = raw.strip().upper()
    if alg not in ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
    return alg


def changes(src: ObjectVersion, algorithm: str | None) -> bool:
    """Whether asking for `algorithm` changes the checksum the copy would otherwise keep."""
    return algorithm is not None and (src.checksum_type != "FULL_OBJECT" or set(src.checksums) != {algorithm})


async def checksums_for(store: ObjectStore, src: ObjectVersion, algorithm: str,
                        decrypt_with: KeyResolver | None = None) -> dict[str, str]:
    """{algorithm: base64 checksum} of the source's content (read with `decrypt_with`, the
    source's keys, when it is encrypted)."""
    if src.checksum_type == "FULL_OBJECT" and algorithm in src.checksums:
        return {algorithm: src.checksums[algorithm]}
    h = new_hasher(algorithm)
    async for piece in store.read_object(src, decrypt_with=decrypt_with):
        if len(piece) >= THREAD_MIN:
            await trio.to_thread.run_sync(h.update, piece)
        else:
            h.update(piece)
    return {algorithm: base64.b64encode(h.digest()).decode()}

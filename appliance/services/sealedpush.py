"""SSE-C versions replicated to a Stowage target as ciphertext (appliance/engine/sealed.py):
their customer key is never stored, so they cannot be decrypted here; their segments' stored
blocks move as they are, with each segment's envelope (the data key wrapped by the customer key,
and the key check value), so the replica opens with the same customer key there and nowhere
without it.

One PutObject carrying the replica version id (authorized by s3:ReplicateObject on the target)
and SEALED_HEADER, base64 of the JSON description; the body is the segments' stored bytes one
after the other, read into memory (bounded by replication.multipart_threshold).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict

from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import ObjectVersion
from appliance.engine.sealed import NotSealable, sealed_object

from .s3push import Endpoint

SEALED_HEADER = "x-stowage-replica-sealed"  # the same name as s3gw/sealedreplica.py's
MAX_DESCRIPTION = 16 * 1024


async def put_sealed(store: ObjectStore, ep: Endpoint, dest: str, v: ObjectVersion, headers: dict[str, str],
                     limit: int) -> int:
    """Write the version's ciphertext to a Stowage target; returns the bytes sent."""
    obj, segs = sealed_object(store, v)
    if obj.stored > limit:
        raise NotSealable(f"SSE-C objects over {limit} bytes are not replicated as ciphertext yet")
    doc = {"v": 1, **asdict(obj)}
    encoded = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    if len(encoded) > MAX_DESCRIPTION:
        raise NotSealable("the SSE-C object has too many segments to be replicated as ciphertext")
    body = bytearray()
    for s in segs:
        async for block in store.seg.read_stored(s):
            body += block
    await ep.acall("put_object", {**headers, SEALED_HEADER: encoded}, Bucket=dest, Key=v.key, Body=bytes(body),
                   ContentLength=len(body))
    return obj.stored

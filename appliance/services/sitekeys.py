"""Site replication's keys and what it replicates (docs/site-replication.md).

    e p<peer>                 SitePeerRecord: another box of the site
    e s<replicated key>       SiteStamp: the hybrid logical clock of that record's last write
    e c<hlc:8>                SiteConflict: a concurrent write, resolved (the last 100 kept)
    f<peer>\\0<seq:8>          SiteChange: a change waiting to be sent to that peer, in order

Replicated records (their keys, byte for byte, with their values as stored: secrets stay wrapped
by the master key the boxes of a site share): buckets (B: versioning, policy, ACL, tags, default
encryption, object lock), lifecycle rules (Y), CORS (c), access logging (l), notification and
replication rules (O b), users (W), groups (R), policies (M), access keys (K), KMS keys (N).
"""

from __future__ import annotations

from appliance.engine import events_keys, keys

PEER = keys.SITE + b"p"
STAMP = keys.SITE + b"s"
CONFLICT = keys.SITE + b"c"

_SPACES = (keys.BUCKET, keys.LIFECYCLE, keys.CORS, keys.BUCKET_LOGGING, keys.USER, keys.GROUP, keys.POLICY,
           keys.CREDENTIAL, keys.KMS_KEY)
_FIRST = frozenset(_SPACES)
IDENTITY = frozenset((keys.USER, keys.GROUP, keys.POLICY, keys.CREDENTIAL))
SCAN_PREFIXES = (*_SPACES, events_keys.CONFIGS)


def replicated(k: bytes) -> bool:
    first = k[:1]
    return first in _FIRST or (first == keys.EVENT_CONFIG and k.startswith(events_keys.CONFIGS))


def peer(name: str) -> bytes:
    return PEER + name.encode()


def stamp(k: bytes) -> bytes:
    return STAMP + k


def conflict(hlc: int) -> bytes:
    return CONFLICT + keys.pack_seq(hlc)


def queue_prefix(peer_name: str) -> bytes:
    return keys.SITE_QUEUE + peer_name.encode() + keys.SEP


def queued(peer_name: str, seq: int) -> bytes:
    return queue_prefix(peer_name) + keys.pack_seq(seq)


def queued_seq(raw: bytes) -> int:
    return keys.unpack_seq(raw[-8:])

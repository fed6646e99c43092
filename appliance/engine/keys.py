"""The LevelDB key schema: the only module that builds or parses metadata keys.

One leading byte names the key space. Bucket names and object keys never contain NUL
(the facade rejects them), so NUL separates components and byte order of the encoded key
equals S3's UTF-8 byte order of (bucket, key). Listings are therefore range scans, and a
delimiter listing seeks past a whole common prefix with `prefix_successor`.

    A<name>                         appliance-wide values (format version, ids, counters;
                                    A account: AccountRecord)
    B<bucket>                       BucketRecord
    L<bucket>\\0<key>                ObjectVersion: the current (non-delete-marker) version
    V<bucket>\\0<key>\\0<~seq:8>      ObjectVersion: every version, newest first
    I<bucket>\\0<key>\\0<version id>  8-byte seq of that version (version ids are opaque)
    S<segment id>                   SegmentRecord
    U<bucket>\\0<key>\\0<upload id>   UploadRecord
    P<upload id>\\0<part:4>          PartRecord
    G<queued ns:8><segment id>      GcEntry (time ordered)
    H<segment id>                   HealEntry
    D<disk id>                      DiskRecord
    K<access key>                   CredentialRecord (the secret wrapped by the master key)
    W<user>                         UserRecord
    R<group>                        GroupRecord
    M<policy name>                  PolicyRecord (customer-managed policies)
    N<kms key id>                   KmsKeyRecord (built-in KMS keys, material wrapped by the master key)
    T<segment id>                   staged segment: written, not yet part of an object
    E<queued ns:8><bucket>\\0<key>\\0<version id>   expiry of the I key of a removed version
    X<name>                         service progress (scrub cursor, ...)
    F<bucket>\\0<inode id>           InodeRecord: the keys that are hard links of one file
    C<upload id>                    CompletionRecord: a completed multipart upload, for a while
    Q<completed ns:8><upload id>    expiry of that C key (time ordered)
    g<name>                         OperatorRecord: operator settings and state (metrics token digest,
                                    alert state)
    l<bucket>                       BucketLoggingRecord: a bucket's access-log switch and S3 server
                                    access logging target
    c<bucket>                       CorsRecord: the bucket's CORS rules (PutBucketCors)
    O<kind><name>                   events (events_keys.py): b<bucket> EventConfigRecord, t<name>
                                    notification target, r<name> replication target, s<name> counters
    o<target>\\0<seq:8>              QueuedEvent: a notification waiting for delivery to a target
    J<target>\\0<seq:8>              QueuedEvent: a version waiting for replication to a target
    j<bucket>\\0<key>\\0<version id>  ReplicationState of a version (PENDING, COMPLETED, FAILED, REPLICA)
    Y<bucket>                       LifecycleRecord: the bucket's lifecycle rules
    y<name>                         LifecycleCursor: where the lifecycle worker's pass stands
    Z<bucket>\\0<key>\\0<version id>   RestoreRecord: a RestoreObject of an archived version
    zb<bucket>                      UsageRecord: the bucket's versions and bytes per storage class
    zq<bucket> / zu<user>           QuotaRecord: a hard quota of a bucket / of a user's buckets
    z!ready                         the usage counters are complete (set by their first count)
    zA<bucket>\\0<key>\\0<version id>  last read of an INTELLIGENT_TIERING version (8-byte ns)
    b<pool>                         RebalanceCursor: where the rebalance of a pool stands
    ac<bucket>\\0<id>                 TieringConfigRecord: an S3 Intelligent-Tiering configuration
    at<bucket>\\0<key>\\0<version id>  ArchiveTierRecord: an INTELLIGENT_TIERING version in an archive tier
    u<name>                         upgrades: the version that last ran this data dir (appliance/migrate.py)
    e<kind><name>                   site replication (services/sitekeys.py): p<peer> SitePeerRecord,
                                    s<replicated key> SiteStamp, c<hlc:8> SiteConflict
    f<peer>\\0<seq:8>                SiteChange: a change of a replicated record waiting for a peer
"""

from __future__ import annotations

import struct

SEP = b"\x00"
MAX_SEQ = (1 << 64) - 1

APPLIANCE = b"A"
BUCKET = b"B"
LATEST = b"L"
VERSION = b"V"
VID = b"I"
SEGMENT = b"S"
UPLOAD = b"U"
PART = b"P"
GC = b"G"
HEAL = b"H"
DISK = b"D"
CREDENTIAL = b"K"
USER = b"W"
GROUP = b"R"
POLICY = b"M"
KMS_KEY = b"N"
PROGRESS = b"X"
STAGED = b"T"
VID_EXPIRY = b"E"
INODE = b"F"
COMPLETION = b"C"
COMPLETION_EXPIRY = b"Q"
OPERATOR = b"g"
BUCKET_LOGGING = b"l"
CORS = b"c"
EVENT_CONFIG = b"O"  # notifications and replication: built in events_keys.py
NOTIFY_QUEUE = b"o"
REPLICATION_QUEUE = b"J"
REPLICATION_STATE = b"j"
LIFECYCLE = b"Y"
LIFECYCLE_STATE = b"y"
RESTORE = b"Z"
USAGE = b"z"
USAGE_BUCKET = USAGE + b"b"
QUOTA_BUCKET = USAGE + b"q"
QUOTA_USER = USAGE + b"u"
USAGE_READY = USAGE + b"!ready"
ACCESS = USAGE + b"A"
UPGRADE = b"u"
SITE = b"e"
SITE_QUEUE = b"f"
REBALANCE = b"b"
TIERING = b"a"
TIERING_CONFIG = TIERING + b"c"
ARCHIVE_TIER = TIERING + b"t"


def prefix_successor(prefix: bytes) -> bytes | None:
    """Smallest byte string greater than every string starting with `prefix` (None: no bound)."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None


def appliance(name: str) -> bytes:
    return APPLIANCE + name.encode()


def bucket(name: str) -> bytes:
    return BUCKET + name.encode()


def latest_prefix(bucket_name: str) -> bytes:
    return LATEST + bucket_name.encode() + SEP


def latest(bucket_name: str, key: str) -> bytes:
    return latest_prefix(bucket_name) + key.encode()


def latest_key_of(raw: bytes, bucket_name: str) -> str:
    return raw[len(bucket_name.encode()) + 2 :].decode()


def version_bucket_prefix(bucket_name: str) -> bytes:
    return VERSION + bucket_name.encode() + SEP


def version_key_prefix(bucket_name: str, key: str) -> bytes:
    return version_bucket_prefix(bucket_name) + key.encode() + SEP


def version(bucket_name: str, key: str, seq: int) -> bytes:
    return version_key_prefix(bucket_name, key) + struct.pack(">Q", MAX_SEQ - seq)


def split_version(raw: bytes, bucket_name: str) -> tuple[str, int]:
    """(key, seq) from a V key."""
    body = raw[len(bucket_name.encode()) + 2 :]
    key, inv = body[:-9], body[-8:]
    return key.decode(), MAX_SEQ - struct.unpack(">Q", inv)[0]


def vid(bucket_name: str, key: str, version_id: str) -> bytes:
    return VID + bucket_name.encode() + SEP + key.encode() + SEP + version_id.encode()


def inode_prefix(bucket_name: str) -> bytes:
    return INODE + bucket_name.encode() + SEP


def inode(bucket_name: str, inode_id: str) -> bytes:
    return inode_prefix(bucket_name) + inode_id.encode()


def staged(segment_id: str) -> bytes:
    return STAGED + segment_id.encode()


def pack_seq(seq: int) -> bytes:
    return struct.pack(">Q", seq)


def unpack_seq(raw: bytes) -> int:
    return int(struct.unpack(">Q", raw)[0])


def segment(segment_id: str) -> bytes:
    return SEGMENT + segment_id.encode()


def upload_bucket_prefix(bucket_name: str) -> bytes:
    return UPLOAD + bucket_name.encode() + SEP


def upload(bucket_name: str, key: str, upload_id: str) -> bytes:
    return upload_bucket_prefix(bucket_name) + key.encode() + SEP + upload_id.encode()


def split_upload(raw: bytes, bucket_name: str) -> tuple[str, str]:
    """(key, upload id) from a U key; upload ids never contain NUL."""
    body = raw[len(bucket_name.encode()) + 2 :]
    key, _, uid = body.rpartition(SEP)
    return key.decode(), uid.decode()


def part_prefix(upload_id: str) -> bytes:
    return PART + upload_id.encode() + SEP


def part(upload_id: str, part_number: int) -> bytes:
    return part_prefix(upload_id) + struct.pack(">I", part_number)


def gc(queued_ns: int, segment_id: str) -> bytes:
    return GC + struct.pack(">Q", queued_ns) + segment_id.encode()


def heal(segment_id: str) -> bytes:
    return HEAL + segment_id.encode()


def disk(disk_id: str) -> bytes:
    return DISK + disk_id.encode()


def credential(access_key: str) -> bytes:
    return CREDENTIAL + access_key.encode()


def user(name: str) -> bytes:
    return USER + name.encode()


def group(name: str) -> bytes:
    return GROUP + name.encode()


def policy(name: str) -> bytes:
    return POLICY + name.encode()


def kms_key(key_id: str) -> bytes:
    return KMS_KEY + key_id.encode()


ACCOUNT = appliance("account")
# Set when plain-text secrets were re-wrapped: the metadata snapshots taken before still hold them,
# and the daemon replaces them with a fresh one at its next start (identity.py).
SNAPSHOTS_HOLD_PLAINTEXT = appliance("snapshots-hold-plaintext")
# The id of the first master key this DB was used with: a DB with it and no key file lost its key.
MASTER_MARK = appliance("master-key")
# The journal position (u64) of the last commit written to this DB: every commit sets it in its own
# batch, so a snapshot of the DB says which journal records it holds (journal.py).
JOURNAL_LSN = appliance("journal-lsn")
# Set when the journal on the data disks may lack a commit this DB holds (a power cut, writes made
# without a journal, a rebuilt DB): the next metadata snapshot is due at once (its presence only).
CHECKPOINT_DUE = appliance("checkpoint-due")


def upgrade(name: str) -> bytes:
    return UPGRADE + name.encode()


def progress(name: str) -> bytes:
    return PROGRESS + name.encode()


def vid_expiry(queued_ns: int, bucket_name: str, key: str, version_id: str) -> bytes:
    return VID_EXPIRY + struct.pack(">Q", queued_ns) + bucket_name.encode() + SEP + key.encode() + SEP + \
        version_id.encode()


def split_vid_expiry(raw: bytes) -> tuple[str, str, str]:
    """(bucket, key, version id) of an E key; version ids and bucket names never contain NUL."""
    body = raw[9:]
    bucket_name, _, rest = body.partition(SEP)
    key, _, version_id = rest.rpartition(SEP)
    return bucket_name.decode(), key.decode(), version_id.decode()


def completion(upload_id: str) -> bytes:
    return COMPLETION + upload_id.encode()


def completion_expiry(completed_ns: int, upload_id: str) -> bytes:
    return COMPLETION_EXPIRY + struct.pack(">Q", completed_ns) + upload_id.encode()


def split_completion_expiry(raw: bytes) -> str:
    """The upload id of a Q key."""
    return raw[9:].decode()


def operator(name: str) -> bytes:
    return OPERATOR + name.encode()


def bucket_logging(bucket_name: str) -> bytes:
    return BUCKET_LOGGING + bucket_name.encode()


def cors(bucket_name: str) -> bytes:
    return CORS + bucket_name.encode()


def lifecycle(bucket_name: str) -> bytes:
    return LIFECYCLE + bucket_name.encode()


def lifecycle_state(name: str) -> bytes:
    return LIFECYCLE_STATE + name.encode()


def restore(bucket_name: str, key: str, version_id: str) -> bytes:
    return RESTORE + bucket_name.encode() + SEP + key.encode() + SEP + version_id.encode()


def usage(bucket_name: str) -> bytes:
    return USAGE_BUCKET + bucket_name.encode()


def bucket_quota(bucket_name: str) -> bytes:
    return QUOTA_BUCKET + bucket_name.encode()


def user_quota(user: str) -> bytes:
    return QUOTA_USER + user.encode()


def rebalance(pool: str) -> bytes:
    return REBALANCE + pool.encode()


def tiering_config(bucket_name: str, config_id: str) -> bytes:
    return TIERING_CONFIG + bucket_name.encode() + SEP + config_id.encode()


def tiering_config_prefix(bucket_name: str) -> bytes:
    return TIERING_CONFIG + bucket_name.encode() + SEP


def archive_tier(bucket_name: str, key: str, version_id: str) -> bytes:
    return ARCHIVE_TIER + bucket_name.encode() + SEP + key.encode() + SEP + version_id.encode()


def access(bucket_name: str, key: str, version_id: str) -> bytes:
    return ACCESS + bucket_name.encode() + SEP + key.encode() + SEP + version_id.encode()

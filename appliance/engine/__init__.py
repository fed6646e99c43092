"""The object engine: everything that touches the metadata DB and the shard files.

What lives here: the versioned records and their key schema (records, keys), the LevelDB
wrapper (metadb), erasure coding and shard files (codec, shardfile), the runtime disk set and
placement (disks, diskload, placement), the data path (segments) and its encryption (crypto),
listings and multipart, object lock (lock: the rules, enforced by every removal of a version;
lockstore: the settings), and the object-store facade (objectstore.ObjectStore) that both frontends
and the services call. The stored side of key management (keystore: KMS key records, segment
envelopes) lives here too; the keys themselves are appliance.iam's. Also
the engine-side halves of the services: the narrow queries they make (upkeep), segment repair,
GC, metadata snapshots (metasnap), their versioned progress records (progress), and
`recover-metadata`.

May import: diskmgr (labels, durable writes, the root of the error model) and appliance.config.
Never imports appliance.services, appliance.iam, the frontends or the daemon: keys it needs
(for encryption) are handed in by its callers.

This package's namespace *is* the facade: s3gw and fusefs import from `appliance.engine` (and
`appliance.engine.errors`), never from its modules. The identity records and their view are part
of it, for the gateway's IAM API.
"""

from __future__ import annotations

from .bucketcors import find_cors, get_cors, put_cors
from .crypto import KeyResolver, SegmentKey
from .eventrules import (
    ARN_SERVICES,
    EVENT_TYPES,
    EventConfigError,
    NotificationRule,
    ReplicationRule,
    ReplicationRules,
    parse_target_arn,
)
from .events import Cause, caused_by
from .identity import IdentityView
from .lifecycle_rules import NoncurrentTransition, RuleFilter, Transition
from .lifecycle_rules import Rule as LifecycleRule
from .listing import EntryPage, ListEntry, ListPage, PosixEntry, PosixPage, UploadPage, VersionPage
from .lock import MAX_DAYS as MAX_RETENTION_DAYS
from .lock import MAX_YEARS as MAX_RETENTION_YEARS
from .lock import MODES as LOCK_MODES
from .lock import DefaultRetention, LockConfig
from .lock import remaining_days as remaining_retention_days
from .names import MAX_KEY_BYTES, S3_MAX_KEY_BYTES
from .objectstore import (
    BodySummary,
    Capacity,
    DeleteResult,
    NewVersion,
    ObjectStore,
    PutMeta,
    ReadRange,
    multipart_etag,
    unquote_etag,
)
from .records import (
    BucketLoggingRecord,
    BucketRecord,
    CorsRecord,
    CredentialRecord,
    GroupRecord,
    InodeRecord,
    ObjectVersion,
    PartRecord,
    PolicyRecord,
    PolicyVersion,
    SegmentRef,
    TieringConfigRecord,
    UploadRecord,
    UserRecord,
)
from .sealed import SealedObject, SealedSegment, complete_sealed, put_sealed, put_sealed_part
from .storecore import CONTENT_HEADERS

__all__ = [
    "ARN_SERVICES",
    "CONTENT_HEADERS",
    "EVENT_TYPES",
    "LOCK_MODES",
    "MAX_KEY_BYTES",
    "MAX_RETENTION_DAYS",
    "MAX_RETENTION_YEARS",
    "S3_MAX_KEY_BYTES",
    "BodySummary",
    "BucketLoggingRecord",
    "BucketRecord",
    "Capacity",
    "Cause",
    "CorsRecord",
    "CredentialRecord",
    "DefaultRetention",
    "DeleteResult",
    "EntryPage",
    "EventConfigError",
    "GroupRecord",
    "IdentityView",
    "InodeRecord",
    "KeyResolver",
    "LifecycleRule",
    "ListEntry",
    "ListPage",
    "LockConfig",
    "NewVersion",
    "NoncurrentTransition",
    "NotificationRule",
    "ObjectStore",
    "ObjectVersion",
    "PartRecord",
    "PolicyRecord",
    "PolicyVersion",
    "PosixEntry",
    "PosixPage",
    "PutMeta",
    "ReadRange",
    "ReplicationRule",
    "ReplicationRules",
    "RuleFilter",
    "SealedObject",
    "SealedSegment",
    "SegmentKey",
    "SegmentRef",
    "TieringConfigRecord",
    "Transition",
    "UploadPage",
    "UploadRecord",
    "UserRecord",
    "VersionPage",
    "caused_by",
    "complete_sealed",
    "find_cors",
    "get_cors",
    "multipart_etag",
    "parse_target_arn",
    "put_cors",
    "put_sealed",
    "put_sealed_part",
    "remaining_retention_days",
    "unquote_etag",
]

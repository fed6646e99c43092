"""Versioned metadata records stored as LevelDB values.

Encoding: one format-version byte, then compact JSON of the record's fields. JSON is
explicit, language-neutral and fast enough here (a few microseconds a record); no pickle.
msgspec's C codec writes and reads it (`json_dumps`, `json_loads`): the same bytes as the
standard library's json.dumps with compact separators and ensure_ascii=False, ~3x faster.

Each record class writes format `FORMAT` and decodes every format it has ever written through
its decoder table (`decoders()`: format version -> decoder). Changing a record's layout means a
new FORMAT and a new entry in that table, never an edit of an old decoder. Golden bytes for
every (class, version) pair live in tests/engine/golden/ and tests/engine/test_formats.py fails
when one is missing, so a format change cannot slip through unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, TypeVar

import msgspec

from .crypto import plain_length
from .errors import FormatError

RECORD_FORMAT = 1

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_FIELD_SETS: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def fields_dict(obj: object) -> dict[str, Any]:
    """A dataclass's fields as a dict, in field order, values as they are: what asdict gives
    to json.dumps without its deep copy, which made it most of a record's encoding time (nested
    dataclasses are converted by `_json_default` as json meets them: the same JSON)."""
    return {n: getattr(obj, n) for n in _field_names(type(obj))}


def _json_default(o: object) -> dict[str, Any]:
    if is_dataclass(o) and not isinstance(o, type):
        return fields_dict(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")

_ENCODER = msgspec.json.Encoder(enc_hook=_json_default)
_DECODER = msgspec.json.Decoder()


def json_dumps(obj: Any) -> bytes:
    """Compact JSON in UTF-8: byte for byte `json.dumps(obj, separators=(",", ":"),
    ensure_ascii=False, default=_json_default).encode()` for what records hold (a test holds
    them equal), from msgspec's encoder: a version record took ~10 us with json, ~3 us here, and
    a 4 KiB PUT encodes several on the event loop (profiled: ~8% of its loop time). A string
    with a lone surrogate raises UnicodeEncodeError, as the encode after json.dumps did."""
    return _ENCODER.encode(obj)


def json_loads(data: bytes | memoryview) -> Any:
    """JSON from bytes: msgspec's decoder (~3x json.loads on a version record); what it refuses
    goes to json.loads, so anything json read before (NaN, say) still reads the same, and what
    neither reads raises json's ValueError."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        return json.loads(bytes(data).decode())


R = TypeVar("R", bound="Record")

# (class, format) -> msgspec's decoder straight into the dataclass, for the formats whose
# decoder is the plain `Record._from_json`; None: decode through the dict (_typed_decoder)
_TYPED: dict[tuple[type, int], msgspec.json.Decoder[Any] | None] = {}


def _typed_decoder(cls: type[Record], version: int) -> msgspec.json.Decoder[Any] | None:
    """A decoder that builds `cls` in C (~2.5x faster than a dict and `cls(**raw)`: a small PUT
    decodes a few records on the event loop), when the format is read by the plain field-wise
    `_from_json`: same fields, same defaults for the missing, unknown names ignored. A body it
    refuses (a value of another type than the field's annotation) goes the dict's way, so
    what that path read before reads the same."""
    try:
        return _TYPED[cls, version]
    except KeyError:
        pass
    dec: msgspec.json.Decoder[Any] | None = None
    plain = Record._from_json.__func__  # type: ignore[attr-defined]
    decoder = cls.decoders().get(version)
    if getattr(decoder, "__func__", None) is plain and getattr(cls._from_json, "__func__", None) is plain:
        try:
            dec = msgspec.json.Decoder(cls)
        except (TypeError, NameError):  # a field type msgspec cannot build: the dict path
            dec = None
    _TYPED[cls, version] = dec
    return dec


class Record:
    """Mixin: encode/decode with a leading format byte."""

    FORMAT: ClassVar[int] = RECORD_FORMAT  # the format this version writes

    @classmethod
    def decoders(cls: type[R]) -> dict[int, Callable[[dict[str, Any]], R]]:
        """Format version -> decoder of the JSON body. Format 1 is round 1's layout."""
        return {1: cls._from_json}

    def encode(self) -> bytes:
        if type(self)._to_json is Record._to_json:
            # msgspec writes a dataclass's fields itself, in order: the bytes of json_dumps(
            # fields_dict(self)) without the dict (tests/engine/test_records_codec.py)
            return bytes([self.FORMAT]) + _ENCODER.encode(self)
        return bytes([self.FORMAT]) + json_dumps(self._to_json())

    def _to_json(self) -> dict[str, Any]:
        return fields_dict(self)

    @classmethod
    def decode(cls: type[R], data: bytes) -> R:
        if not data:
            raise FormatError(f"empty {cls.__name__} record")
        version = data[0]
        typed = _typed_decoder(cls, version)
        if typed is not None:
            try:
                rec: R = typed.decode(memoryview(data)[1:])
                return rec
            except msgspec.DecodeError:
                pass  # the dict path below reads it as before, or names what is wrong
        decoder = cls.decoders().get(version)
        if decoder is None:
            raise FormatError(f"{cls.__name__} record format {version} is not supported by this version")
        try:
            raw = json_loads(memoryview(data)[1:])
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return decoder(raw)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
            raise FormatError(f"damaged {cls.__name__} record: {exc}") from exc

    @classmethod
    def _from_json(cls: type[R], raw: dict[str, Any]) -> R:
        names = _FIELD_SETS.get(cls)
        if names is None:
            names = _FIELD_SETS[cls] = frozenset(_field_names(cls))
        if names.issuperset(raw):
            return cls(**raw)
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A byte range [offset, offset+length) of one immutable segment."""

    segment_id: str
    offset: int
    length: int


@dataclass(slots=True)
class BucketRecord(Record):
    """A bucket and its configuration. Format 2 added the access-control settings; format 3
    default encryption and object lock."""

    FORMAT: ClassVar[int] = 3

    name: str
    created_ns: int
    versioning: str = ""  # "" (never enabled) | "Enabled" | "Suspended"
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    policy: str = ""  # the bucket policy's JSON text; "" = none
    acl: list[dict[str, str]] | None = None  # grants (see Grant below); None = owner FULL_CONTROL only
    ownership: str = ""  # "" = the configured default | ObjectWriter | BucketOwnerPreferred | BucketOwnerEnforced
    public_access_block: dict[str, bool] | None = None  # the four PublicAccessBlock flags; None = not set
    # Default encryption of new objects: {"algorithm": "AES256" | "aws:kms", "kms_key_id": id,
    # "bucket_key": bool}; None = none configured (objects are written as their requests say).
    encryption: dict[str, Any] | None = None
    # Object lock: {"enabled": True, "mode": "" | "GOVERNANCE" | "COMPLIANCE", "days": N, "years": N}
    # (the default retention of new versions); None = object lock not enabled (and never can be
    # after creation, as on AWS).
    object_lock: dict[str, Any] | None = None

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], BucketRecord]]:
        return {1: cls._from_json, 2: cls._from_json, 3: cls._from_json}  # older formats: defaults


@dataclass(slots=True)
class ObjectVersion(Record):
    """One version of an object (or a delete marker). Format 2 added `acl` and `posix_trusted`
    (format-1 versions decode as trusted: round 1 had no such distinction); format 3 `inode`;
    format 4 the server-side encryption and object lock of the version; format 5 the checksums
    of a multipart object's parts."""

    FORMAT: ClassVar[int] = 5

    bucket: str
    key: str
    version_id: str  # "null" for unversioned / suspended writes
    seq: int  # monotonic commit order; newer versions have larger seq
    last_modified_ns: int
    delete_marker: bool = False
    size: int = 0
    etag: str = ""  # without quotes
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # content-encoding, cache-control, ...
    user_meta: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    tags: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm (upper) -> base64 value
    checksum_type: str = ""  # "" | "FULL_OBJECT" | "COMPOSITE"
    storage_class: str = "STANDARD"
    segments: list[SegmentRef] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)  # part sizes, for multipart objects
    # Each part's checksum in the object's algorithm (algorithm -> base64), parallel to `parts`:
    # what GetObjectAttributes lists and GetObject?partNumber returns. Empty without checksums.
    part_checksums: list[dict[str, str]] = field(default_factory=list)
    owner: str = ""
    acl: list[dict[str, str]] | None = None  # object ACL grants; None = owner FULL_CONTROL only
    # The POSIX attributes in user_meta (mode, uid, gid, ...) were written by the mount or by a
    # principal allowed stowage:PutPosixAttributes; otherwise the mount shows bucket defaults.
    posix_trusted: bool = True
    # The InodeRecord of the file whose hard link this key is ("" = a file with one name). It
    # counts only while that record lists this key (Txn keeps the two in step).
    inode: str = ""
    # What HEAD/GET report of its server-side encryption: {"mode": "AES256" | "aws:kms" | "SSE-C",
    # "kms_key_id": ..., "context": ..., "customer_key_md5": ...}; None = stored in plaintext.
    # The keys themselves are in the segments' envelopes, wrapped.
    sse: dict[str, str] | None = None
    lock_mode: str = ""  # object lock retention: "" | "GOVERNANCE" | "COMPLIANCE"
    retain_until_ns: int = 0  # retention end (server clock); 0 = no retention
    legal_hold: bool = False

    def _to_json(self) -> dict[str, Any]:
        d = fields_dict(self)
        d["segments"] = [[s.segment_id, s.offset, s.length] for s in self.segments]
        return d

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], ObjectVersion]]:
        return {1: cls._from_json, 2: cls._from_json, 3: cls._from_json, 4: cls._from_json, 5: cls._from_json}

    @classmethod
    def _from_json(cls, raw: dict[str, Any]) -> ObjectVersion:
        raw = dict(raw)
        raw["segments"] = [SegmentRef(s[0], s[1], s[2]) for s in raw.get("segments", [])]
        return super(ObjectVersion, cls)._from_json(raw)


@dataclass(slots=True)
class InodeRecord(Record):
    """The identity of a file with hard links: the keys that are its names. Each link is a normal
    object whose current version carries `inode` = inode_id and the same data and metadata as
    the others (the mount writes them together, in one commit)."""

    bucket: str
    inode_id: str
    links: list[str]  # in the order they were made
    created_ns: int


@dataclass(slots=True)
class SegmentRecord(Record):
    """Placement and health of one erasure-coded segment. Format 2 added `enc`, the envelope of
    an encrypted segment's data key (engine/crypto.py); format-1 segments are unencrypted.
    Format 3 added `cipher_id`: a segment re-encoded into another geometry (a storage-class
    change, transcode.py) holds the blocks of the segment it was copied from as they were
    sealed, and block keys derive from that segment's id. Format 4 added `packs`: where the
    shards packed into volume files lie (volumes.py); a shard without a place is a shard file."""

    FORMAT: ClassVar[int] = 4

    segment_id: str
    k: int
    m: int
    block_size: int
    length: int  # bytes stored in the shards (with an encrypted segment's block tags)
    shards: list[str | None]  # disk id per shard index; None = never written / lost
    refcount: int
    created_ns: int
    pool: str = "default"
    damaged: list[int] = field(default_factory=list)  # shard indices known missing/corrupt
    enc: dict[str, Any] | None = None  # opaque envelope (wrapped data key, mode, key id); None = plaintext
    cipher_id: str = ""  # the segment id the blocks were sealed under; "" = segment_id
    # per shard index: [volume, record offset, data offset] of a packed shard, None for a shard
    # file; an empty list: every shard is a file
    packs: list[list[int] | None] = field(default_factory=list)

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], SegmentRecord]]:
        return {1: cls._from_json, 2: cls._from_json, 3: cls._from_json, 4: cls._from_json}

    def pack_of(self, i: int) -> list[int] | None:
        """Where shard i lies in its disk's volumes, or None: a shard file."""
        return self.packs[i] if i < len(self.packs) else None

    def places(self, disk_id: str, volume: int, offset: int, shard: int) -> bool:
        """Whether this record places shard `shard` on `disk_id` at (volume, record offset)."""
        if shard >= len(self.shards) or self.shards[shard] != disk_id:
            return False
        place = self.pack_of(shard)
        return place is not None and place[:2] == [volume, offset]

    def packed(self) -> list[tuple[int, str, list[int]]]:
        """(shard index, disk id, place) of each packed shard that has a disk."""
        return [(i, d, p) for i, (d, p) in enumerate(zip(self.shards, self.packs, strict=False))
                if d is not None and p is not None]

    def set_pack(self, i: int, place: list[int] | None) -> None:
        """Shard i is now packed at `place`, or (None) a shard file (rebuilt or moved)."""
        if place is None and not self.packs:
            return
        if not self.packs:
            self.packs = [None] * len(self.shards)
        self.packs[i] = place
        if not any(self.packs):
            self.packs = []

    @property
    def plain_length(self) -> int:
        """The segment's content bytes: what SegmentRefs address."""
        return self.length if self.enc is None else plain_length(self.length, self.block_size)


@dataclass(slots=True)
class UploadRecord(Record):
    """An in-progress multipart upload. Format 2 added `acl` and `posix_trusted`; format 3 the
    encryption and object lock settings the completed object gets; format 4 `checksum_type`."""

    FORMAT: ClassVar[int] = 4

    upload_id: str
    bucket: str
    key: str
    initiated_ns: int
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    user_meta: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksum_algorithm: str = ""
    # How the completed object's checksum is made of the parts' (S3's x-amz-checksum-type):
    # "COMPOSITE" (the checksum of the parts' checksums, "-N") or "FULL_OBJECT" (the CRC of the
    # whole content, combined from the parts' CRCs); "" with no checksum algorithm.
    checksum_type: str = ""
    owner: str = ""
    acl: list[dict[str, str]] | None = None  # given to the completed object
    posix_trusted: bool = True
    # As ObjectVersion.sse, plus for SSE-C a salted HMAC of the customer key ("customer_key_hmac")
    # so every part can be checked to bring the same key; never the key itself.
    sse: dict[str, str] | None = None
    lock_mode: str = ""
    retain_until_ns: int = 0
    legal_hold: bool = False

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], UploadRecord]]:
        # format 3 and older: an algorithm meant a composite checksum (all this version made)
        return {1: cls._from_v3, 2: cls._from_v3, 3: cls._from_v3, 4: cls._from_json}

    @classmethod
    def _from_v3(cls, raw: dict[str, Any]) -> UploadRecord:
        up = cls._from_json(raw)
        up.checksum_type = "COMPOSITE" if up.checksum_algorithm else ""
        return up


@dataclass(slots=True)
class PartRecord(Record):
    part_number: int
    size: int
    etag: str
    last_modified_ns: int
    segments: list[SegmentRef] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)

    def _to_json(self) -> dict[str, Any]:
        d = fields_dict(self)
        d["segments"] = [[s.segment_id, s.offset, s.length] for s in self.segments]
        return d

    @classmethod
    def _from_json(cls, raw: dict[str, Any]) -> PartRecord:
        raw = dict(raw)
        raw["segments"] = [SegmentRef(s[0], s[1], s[2]) for s in raw.get("segments", [])]
        return super(PartRecord, cls)._from_json(raw)


@dataclass(slots=True)
class CompletionRecord(Record):
    """A multipart upload that was completed, remembered for a while (engine/completions.py): the
    same completion sent again gets the same answer while the version it made is current."""

    upload_id: str
    bucket: str
    key: str
    version_id: str
    seq: int  # the version it made (the latest version of the key while it is still current)
    etag: str  # ... and its ETag
    parts_digest: str  # SHA-256 of the completed part list (part numbers and ETags)
    completed_ns: int


@dataclass(slots=True)
class CorsRecord(Record):
    """A bucket's CORS configuration (engine/bucketcors.py): its rules in order, each
    {"id", "origins", "methods", "headers", "expose", "max_age"} as PutBucketCors gave them
    (validated by the gateway, s3gw/cors.py); max_age None when the rule sets none."""

    bucket: str
    rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DiskRecord(Record):
    """A data or metadata disk known to this appliance."""

    disk_id: str
    path: str
    role: str = "data"  # data | meta
    pool: str = "default"
    state: str = "ok"  # ok | warning | failing | failed | offline | draining | removed
    added_ns: int = 0
    device: str = ""
    uuid: str = ""


@dataclass(slots=True)
class GcEntry(Record):
    segment_id: str
    queued_ns: int


@dataclass(slots=True)
class HealEntry(Record):
    segment_id: str
    queued_ns: int
    shards: list[int] = field(default_factory=list)
    reason: str = ""


def derived_id(prefix: str, *parts: object, length: int = 17) -> str:
    """A stable id computed from what identifies a record: for records of a format that had no id
    (round 1's users), so the id a decoder gives them is the same on every read."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:length]


def derived_canonical_id(*parts: object) -> str:
    """A stable 64-hex-digit canonical user id (the form S3 ACLs use), as derived_id."""
    return hashlib.sha256(("canonical\x00" + "\x00".join(str(p) for p in parts)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KmsKeyVersion:
    version: int
    wrapped: str  # base64 of the key material wrapped by the appliance master key
    created_ns: int


@dataclass(slots=True)
class KmsKeyRecord(Record):
    """A named key of the built-in KMS (appliance/iam/kms.py). Each rotation adds a version of
    key material; the newest wraps new data keys, the older ones still unwrap theirs. The
    material is stored wrapped by the master key only."""

    key_id: str  # AWS-style key id (a UUID)
    name: str
    created_ns: int
    enabled: bool = True
    description: str = ""
    versions: list[KmsKeyVersion] = field(default_factory=list)  # oldest first

    def _to_json(self) -> dict[str, Any]:
        d = fields_dict(self)
        d["versions"] = [[v.version, v.wrapped, v.created_ns] for v in self.versions]
        return d

    @classmethod
    def _from_json(cls, raw: dict[str, Any]) -> KmsKeyRecord:
        raw = dict(raw)
        raw["versions"] = [KmsKeyVersion(int(v[0]), str(v[1]), int(v[2])) for v in raw.get("versions", [])]
        return super(KmsKeyRecord, cls)._from_json(raw)


@dataclass(slots=True)
class CredentialRecord(Record):
    """An access key of an IAM user. Format 2 keeps the secret wrapped by the appliance master key
    (`wrapped_secret`: base64 of appliance.iam.masterkey's blob, bound to the access key), so the
    secret is never stored in plain text.

    Format 3 added the key's own limits: `session_policy` (an identity policy document, "" for
    none: the key may do only what both its user's policies and this allow) and `expires_ns`
    (Unix ns after which the key is refused; 0 for never). Format 2 decodes with neither.

    Format 1 (round 1) stored `secret_key` in plain text. It decodes with the secret in
    `legacy_secret` (never printed by repr) and cannot be encoded again: the identity layer
    re-wraps it (appliance/iam/sealing.py) and the engine compacts the key range afterwards so the
    plain text leaves the LevelDB files (identity.py)."""

    FORMAT: ClassVar[int] = 3

    access_key: str
    user: str
    created_ns: int
    active: bool = True
    wrapped_secret: str = ""
    session_policy: str = ""
    expires_ns: int = 0
    legacy_secret: str = field(default="", repr=False, compare=False)

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], CredentialRecord]]:
        return {1: cls._from_v1, 2: cls._from_json, 3: cls._from_json}

    @classmethod
    def _from_v1(cls, raw: dict[str, Any]) -> CredentialRecord:
        return cls(str(raw["access_key"]), str(raw["user"]), int(raw["created_ns"]), bool(raw.get("active", True)),
                   legacy_secret=str(raw["secret_key"]))

    def _to_json(self) -> dict[str, Any]:
        if self.legacy_secret:
            raise FormatError(f"access key {self.access_key}: a plain-text secret must be wrapped before it is stored")
        return {"access_key": self.access_key, "user": self.user, "created_ns": self.created_ns,
                "active": self.active, "wrapped_secret": self.wrapped_secret, "session_policy": self.session_policy,
                "expires_ns": self.expires_ns}


@dataclass(slots=True)
class UserRecord(Record):
    """An IAM user. Format 2 added its ids, path, the disabled flag and its policies (the names of
    attached managed policies, and inline policies by name). A format-1 user (round 1) decodes
    with ids derived from its name and creation time and no policies, except that round 1's
    `admin` flag becomes the canned `admin` policy attached."""

    FORMAT: ClassVar[int] = 2

    name: str
    created_ns: int
    user_id: str = ""  # AWS's unique id (AIDA...), aws:userid
    canonical_id: str = ""  # the S3 canonical user id ACL grants name
    path: str = "/"
    disabled: bool = False
    policies: list[str] = field(default_factory=list)  # attached managed policies, by name
    inline: dict[str, str] = field(default_factory=dict)  # inline policy name -> JSON document

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], UserRecord]]:
        return {1: cls._from_v1, 2: cls._from_json}

    @classmethod
    def _from_v1(cls, raw: dict[str, Any]) -> UserRecord:
        name, created = str(raw["name"]), int(raw["created_ns"])
        return cls(name, created, user_id=derived_id("AIDA", "user", name, created),
                   canonical_id=derived_canonical_id("user", name, created),
                   policies=["admin"] if raw.get("admin") else [])


@dataclass(slots=True)
class GroupRecord(Record):
    """An IAM group: its members (user names) and its policies, as a user's."""

    name: str
    created_ns: int
    group_id: str  # AGPA...
    path: str = "/"
    members: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    inline: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version_id: str  # "v1", "v2", ...: never reused within a policy
    document: str  # the JSON text as given (validated when stored)
    created_ns: int


@dataclass(slots=True)
class PolicyRecord(Record):
    """A customer-managed policy: up to five versions, one of them the default (the one enforced)."""

    name: str
    created_ns: int
    policy_id: str  # ANPA...
    path: str = "/"
    description: str = ""
    updated_ns: int = 0
    default_version: str = "v1"
    versions: list[PolicyVersion] = field(default_factory=list)
    next_version: int = 2  # the number of the next version created

    def _to_json(self) -> dict[str, Any]:
        d = fields_dict(self)
        d["versions"] = [[v.version_id, v.document, v.created_ns] for v in self.versions]
        return d

    @classmethod
    def _from_json(cls, raw: dict[str, Any]) -> PolicyRecord:
        raw = dict(raw)
        raw["versions"] = [PolicyVersion(str(v[0]), str(v[1]), int(v[2])) for v in raw.get("versions", [])]
        return super(PolicyRecord, cls)._from_json(raw)

    def version(self, version_id: str) -> PolicyVersion | None:
        return next((v for v in self.versions if v.version_id == version_id), None)

    @property
    def document(self) -> str:
        """The default version's document."""
        found = self.version(self.default_version)
        return found.document if found is not None else ""


@dataclass(slots=True)
class AccountRecord(Record):
    """The appliance's one account: its 12-digit id (IAM ARNs) and the root user's canonical id."""

    account_id: str
    root_canonical_id: str
    created_ns: int


@dataclass(slots=True)
class OperatorRecord(Record):
    """An operator setting or piece of state (key g<name>): the metrics bearer token's SHA-256
    ("metrics-token": {"sha256": hex}), the alerts that are firing ("alerts": {"active": {...}})."""

    name: str
    value: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BucketLoggingRecord(Record):
    """A bucket's logging settings (key l<bucket>): whether its requests go to the structured
    access log, and S3 server access logging (PutBucketLogging): the bucket and key prefix that
    AWS-format log objects are delivered to ("" = off)."""

    bucket: str
    access_log: bool = False
    target_bucket: str = ""
    target_prefix: str = ""


# --- notifications and replication (events_keys.py) ----------------------------------------------


@dataclass(slots=True)
class EventConfigRecord(Record):
    """A bucket's notification and replication configuration, as parsed from their documents
    (engine/eventrules.py reads them): `notifications` is a list of rules {"id", "kind": Queue |
    Topic | CloudFunction, "arn", "target", "events": [...], "prefix", "suffix"}; `replication`
    {"role", "rules": [...]} or None (no replication configured)."""

    bucket: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    replication: dict[str, Any] | None = None
    updated_ns: int = 0


@dataclass(slots=True)
class EventTargetRecord(Record):
    """Where events go: a notification target (kind "webhook" or "file") or a replication target
    (kind "s3": a remote S3 endpoint). `settings` holds what is not secret (url, path, region,
    tls_verify, access key, bucket...); `wrapped` holds the secret (the webhook's authorization
    header, the remote's secret key) wrapped by the master key with the context
    b"event-target:<name>" — never in plain text."""

    name: str
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    wrapped: str = ""  # base64 of the master-key-wrapped secret; "" = none
    created_ns: int = 0


@dataclass(slots=True)
class QueuedEvent(Record):
    """One entry of a delivery queue: a notification (`payload` is the S3 event record) or a
    version to replicate (`payload` says what: {"op": "put" | "delete", "rule": ID, ...})."""

    target: str
    bucket: str
    key: str
    version_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    queued_ns: int = 0


@dataclass(slots=True)
class ReplicationState(Record):
    """x-amz-replication-status of one version: PENDING, COMPLETED, FAILED (with the reason) on
    the source, REPLICA on a target."""

    status: str
    reason: str = ""
    updated_ns: int = 0


@dataclass(slots=True)
class LifecycleRecord(Record):
    """A bucket's lifecycle configuration (keys.lifecycle): its rules as
    engine/lifecycle_rules.Rule.to_json() gives them, in the order they were put."""

    bucket: str
    rules: list[dict[str, Any]]
    updated_ns: int


@dataclass(slots=True)
class LifecycleCursor(Record):
    """Where the lifecycle worker's pass stands (keys.lifecycle_state): saved after every batch,
    so a restart resumes after the last key it finished instead of starting over."""

    pass_started_ns: int = 0  # 0: no pass in progress
    bucket: str = ""  # the bucket being walked ("" = not started)
    phase: str = ""  # "versions" | "uploads"
    after: str = ""  # the last key (or upload key) done in that bucket and phase
    last_complete_ns: int = 0
    # totals since the worker first ran (what `stowage status` shows)
    expired: int = 0
    markers_removed: int = 0
    transitioned: int = 0
    transitioned_bytes: int = 0
    aborted: int = 0
    locked: int = 0  # expirations refused by object lock
    tiered: int = 0  # intelligent-tiering moves (either way)


@dataclass(slots=True)
class RestoreRecord(Record):
    """A RestoreObject of an archived version (keys.restore): queued while `ongoing`, then a
    temporary copy of its data in the hot pool (`copy`, holding one reference on each of its
    segments) until `expiry_ns`, when the restore worker drops it."""

    bucket: str
    key: str
    version_id: str
    seq: int  # the version's: a record outliving its version (or a reused id) is dropped
    days: int
    tier: str  # Expedited | Standard | Bulk
    requested_ns: int
    ongoing: bool = True
    completed_ns: int = 0
    expiry_ns: int = 0
    copy: list[list[Any]] = field(default_factory=list)  # [segment id, offset, length] of the copy's refs
    copied_bytes: int = 0


@dataclass(slots=True)
class UsageRecord(Record):
    """What a bucket holds (keys.usage), kept up to date by every commit (engine/usage.py): per
    storage class, [versions, bytes] of every version that is not a delete marker."""

    bucket: str
    classes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def objects(self) -> int:
        return sum(c[0] for c in self.classes.values())

    @property
    def bytes(self) -> int:
        return sum(c[1] for c in self.classes.values())


@dataclass(slots=True)
class QuotaRecord(Record):
    """A hard quota (keys.bucket_quota, keys.user_quota): 0 = no limit."""

    name: str
    max_bytes: int = 0
    max_objects: int = 0


@dataclass(slots=True)
class SitePeerRecord(Record):
    """Another box of this box's site (services/site.py): where it is and the key this box signs
    its requests with (`wrapped`: base64 of the secret wrapped by the master key, which every box
    of a site shares). `root_canonical_id`: that box's root user, whose buckets are this box's
    root's here."""

    name: str  # the peer's site name (its appliance id)
    url: str
    access_key: str
    wrapped: str
    region: str = "us-east-1"
    tls_verify: bool = True
    root_canonical_id: str = ""
    added_ns: int = 0


@dataclass(slots=True)
class SiteStamp(Record):
    """The last write of one replicated record (keys e s<key>): its hybrid logical clock and the
    site that made it; kept after a delete (the tombstone a later, older write loses to)."""

    hlc: int
    origin: str


@dataclass(slots=True)
class SiteChange(Record):
    """A change of a replicated record queued for a peer (keys f<peer>\\0<seq>): the record's key
    and new value (base64; None: deleted) as written, its stamp, and `prev`, the stamp the writer
    replaced (-1: a state transfer of a join, not a write)."""

    key: str
    value: str | None
    hlc: int
    origin: str
    prev: int = 0
    queued_ns: int = 0


@dataclass(slots=True)
class SiteConflict(Record):
    """Two sites changed one record concurrently (neither had seen the other's write): the
    higher hybrid logical clock won (the site name breaks a tie)."""

    key: str
    local_hlc: int
    local_origin: str
    remote_hlc: int
    remote_origin: str
    winner: str
    reason: str = ""
    at_ns: int = 0


@dataclass(slots=True)
class RebalanceCursor(Record):
    """Where the rebalance of a pool stands (keys.rebalance): saved every few seconds through a
    commit (so the journal, and recover-metadata, keep it), so a restarted daemon resumes the
    walk after the last segment it looked at."""

    pool: str
    pass_started_ns: int = 0  # 0: no rebalance in progress
    after: str = ""  # the last segment id looked at in this pass
    disks: list[str] = field(default_factory=list)  # the pool's writable disks when last balanced
    last_complete_ns: int = 0
    # totals since the pool was first rebalanced (what `stowage status` shows)
    moved_shards: int = 0
    moved_bytes: int = 0


@dataclass(slots=True)
class TieringConfigRecord(Record):
    """One S3 Intelligent-Tiering configuration of a bucket (keys.tiering_config): the opt-in
    archive tiers for the INTELLIGENT_TIERING objects its filter selects (0 days: that tier is
    not asked for)."""

    bucket: str
    config_id: str
    status: str  # Enabled | Disabled
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    archive_days: int = 0  # ARCHIVE_ACCESS after this many days without access (90..730)
    deep_archive_days: int = 0  # DEEP_ARCHIVE_ACCESS after this many (180..730)


@dataclass(slots=True)
class ArchiveTierRecord(Record):
    """An INTELLIGENT_TIERING version in an archive tier (keys.archive_tier): its data is in the
    archive placement and reads are refused until a RestoreObject brings it back."""

    seq: int  # the version's: a record outliving its version (or a reused id) is ignored
    tier: str  # ARCHIVE_ACCESS | DEEP_ARCHIVE_ACCESS
    since_ns: int

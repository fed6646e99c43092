"""Versioned metadata records stored as LevelDB values.

Encoding: one format-version byte, then compact JSON of the record's fields. JSON is
explicit, language-neutral and fast enough here (a few microseconds a record); no pickle.

Each record class writes format `FORMAT` and decodes every format it has ever written through
its decoder table (`decoders()`: format version -> decoder). Changing a record's layout means a
new FORMAT and a new entry in that table, never an edit of an old decoder. Golden bytes for
every (class, version) pair live in tests/engine/golden/ and tests/engine/test_formats.py fails
when one is missing, so a format change cannot slip through unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from .errors import FormatError

RECORD_FORMAT = 1

R = TypeVar("R", bound="Record")


class Record:
    """Mixin: encode/decode with a leading format byte."""

    FORMAT: ClassVar[int] = RECORD_FORMAT  # the format this version writes

    @classmethod
    def decoders(cls: type[R]) -> dict[int, Callable[[dict[str, Any]], R]]:
        """Format version -> decoder of the JSON body. Format 1 is round 1's layout."""
        return {1: cls._from_json}

    def encode(self) -> bytes:
        body = json.dumps(self._to_json(), separators=(",", ":"), ensure_ascii=False)
        return bytes([self.FORMAT]) + body.encode()

    def _to_json(self) -> dict[str, Any]:
        return asdict(cast("DataclassInstance", self))

    @classmethod
    def decode(cls: type[R], data: bytes) -> R:
        if not data:
            raise FormatError(f"empty {cls.__name__} record")
        version = data[0]
        decoder = cls.decoders().get(version)
        if decoder is None:
            raise FormatError(f"{cls.__name__} record format {version} is not supported by this version")
        try:
            raw = json.loads(data[1:])
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return decoder(raw)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise FormatError(f"damaged {cls.__name__} record: {exc}") from exc

    @classmethod
    def _from_json(cls: type[R], raw: dict[str, Any]) -> R:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A byte range [offset, offset+length) of one immutable segment."""

    segment_id: str
    offset: int
    length: int


@dataclass(slots=True)
class BucketRecord(Record):
    """A bucket and its configuration. Format 2 added the access-control settings."""

    FORMAT: ClassVar[int] = 2

    name: str
    created_ns: int
    versioning: str = ""  # "" (never enabled) | "Enabled" | "Suspended"
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    policy: str = ""  # the bucket policy's JSON text; "" = none
    acl: list[dict[str, str]] | None = None  # grants (see Grant below); None = owner FULL_CONTROL only
    ownership: str = ""  # "" = the configured default | ObjectWriter | BucketOwnerPreferred | BucketOwnerEnforced
    public_access_block: dict[str, bool] | None = None  # the four PublicAccessBlock flags; None = not set

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], BucketRecord]]:
        return {1: cls._from_json, 2: cls._from_json}  # format 1 lacks the new fields: defaults


@dataclass(slots=True)
class ObjectVersion(Record):
    """One version of an object (or a delete marker). Format 2 added `acl` and `posix_trusted`
    (format-1 versions decode as trusted: round 1 had no such distinction); format 3 `inode`."""

    FORMAT: ClassVar[int] = 3

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
    owner: str = ""
    acl: list[dict[str, str]] | None = None  # object ACL grants; None = owner FULL_CONTROL only
    # The POSIX attributes in user_meta (mode, uid, gid, ...) were written by the mount or by a
    # principal allowed stowage:PutPosixAttributes; otherwise the mount shows bucket defaults.
    posix_trusted: bool = True
    # The InodeRecord of the file whose hard link this key is ("" = a file with one name). It
    # counts only while that record lists this key (Txn keeps the two in step).
    inode: str = ""

    def _to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [[s.segment_id, s.offset, s.length] for s in self.segments]
        return d

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], ObjectVersion]]:
        return {1: cls._from_json, 2: cls._from_json, 3: cls._from_json}

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
    """Placement and health of one erasure-coded segment."""

    segment_id: str
    k: int
    m: int
    block_size: int
    length: int  # data bytes in the segment
    shards: list[str | None]  # disk id per shard index; None = never written / lost
    refcount: int
    created_ns: int
    pool: str = "default"
    damaged: list[int] = field(default_factory=list)  # shard indices known missing/corrupt


@dataclass(slots=True)
class UploadRecord(Record):
    """An in-progress multipart upload. Format 2 added `acl` and `posix_trusted`."""

    FORMAT: ClassVar[int] = 2

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
    owner: str = ""
    acl: list[dict[str, str]] | None = None  # given to the completed object
    posix_trusted: bool = True

    @classmethod
    def decoders(cls) -> dict[int, Callable[[dict[str, Any]], UploadRecord]]:
        return {1: cls._from_json, 2: cls._from_json}


@dataclass(slots=True)
class PartRecord(Record):
    part_number: int
    size: int
    etag: str
    last_modified_ns: int
    segments: list[SegmentRef] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)

    def _to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [[s.segment_id, s.offset, s.length] for s in self.segments]
        return d

    @classmethod
    def _from_json(cls, raw: dict[str, Any]) -> PartRecord:
        raw = dict(raw)
        raw["segments"] = [SegmentRef(s[0], s[1], s[2]) for s in raw.get("segments", [])]
        return super(PartRecord, cls)._from_json(raw)


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


@dataclass(slots=True)
class CredentialRecord(Record):
    access_key: str
    secret_key: str
    user: str
    created_ns: int
    active: bool = True


@dataclass(slots=True)
class UserRecord(Record):
    name: str
    created_ns: int
    admin: bool = False

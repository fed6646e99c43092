"""Versioned records the services keep in the progress key space (`X<name>`, keys.progress).

    X scrub               ScrubCursor     where the scrubber's pass stands
    X snapshots           SnapshotList    the metadata snapshots kept on the data disks
    X lost/<segment id>   LostSegment     a segment with fewer than k readable chunks
    X recovered           RecoveryReport  what the last `recover-metadata` did (or, unfinished, where it is)
    X rotate-master       MasterRotation  a `stowage kms rotate-master` in progress

Encoding as in records.py: one format byte, then compact JSON. Round 1 wrote these values as
plain JSON with no format byte (its scrub cursor and snapshot list carried a "format": 1 field
inside). A leading '{' can never be a format byte, so such a value reads as format 1, and every
class keeps a decoder per format it has ever written (`decoders`); this version writes format
2. tests/healing/test_formats.py holds golden bytes of both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from . import keys
from .errors import FormatError

ROUND1_FORMAT = 1  # plain JSON, no format byte
PROGRESS_FORMAT = 2

SCRUB_CURSOR = "scrub"
SNAPSHOTS = "snapshots"
RECOVERED = "recovered"
MASTER_ROTATION = "rotate-master"
LOST_PREFIX = "lost/"
RECOVERY_DONE = "done"

P = TypeVar("P", bound="ProgressRecord")
Decoder = Callable[[dict[str, Any]], P]


class ProgressRecord:
    """Mixin for dataclasses: a leading format byte, then JSON; a decoder per format version."""

    FORMAT: ClassVar[int] = PROGRESS_FORMAT

    def encode(self) -> bytes:
        body = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)
        return bytes([self.FORMAT]) + body.encode()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return doc

    @classmethod
    def from_json(cls: type[P], raw: dict[str, Any]) -> P:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def decoders(cls: type[P]) -> dict[int, Decoder[P]]:
        """Format version -> decoder of the parsed JSON. Round 1 wrote the same fields."""
        return {ROUND1_FORMAT: cls.from_json, PROGRESS_FORMAT: cls.from_json}

    @classmethod
    def decode(cls: type[P], data: bytes) -> P:
        if not data:
            raise FormatError(f"empty {cls.__name__} record")
        version = ROUND1_FORMAT if data[:1] == b"{" else data[0]
        decoder = cls.decoders().get(version)
        if decoder is None:
            raise FormatError(f"{cls.__name__} record format {version} is not supported by this version")
        try:
            raw = json.loads(data if version == ROUND1_FORMAT else data[1:])
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return decoder(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise FormatError(f"damaged {cls.__name__} record: {exc}") from exc


def _round1_with_format_field(cls: type[P], raw: dict[str, Any]) -> P:
    """Round 1's scrub cursor and snapshot list: JSON carrying "format": 1."""
    if raw.get("format") != 1:
        raise ValueError(f"format {raw.get('format')!r} inside a round-1 {cls.__name__}")
    return cls.from_json(raw)


@dataclass
class ScrubCursor(ProgressRecord):
    """Where the scrubber's pass stands, saved every few seconds so a restart resumes it."""

    cursor: str = ""  # last segment id verified in the current pass ("" = not started)
    pass_started_ns: int = 0  # 0: no pass in progress
    last_complete_ns: int = 0
    segments: int = 0
    bytes_read: int = 0
    found: int = 0  # segments with damage found in the current/last pass
    repaired: int = 0
    unrecoverable: int = 0

    @classmethod
    def decoders(cls) -> dict[int, Decoder[ScrubCursor]]:
        return {ROUND1_FORMAT: lambda raw: _round1_with_format_field(cls, raw), PROGRESS_FORMAT: cls.from_json}

    @classmethod
    def decode(cls, data: bytes | None) -> ScrubCursor:
        """A damaged or unknown cursor starts a new pass rather than stopping the scrubber."""
        if not data:
            return cls()
        try:
            return super().decode(data)
        except FormatError:
            return cls()


@dataclass(frozen=True)
class SnapshotInfo:
    segment_id: str
    created_ns: int
    seq: int  # the commit sequence number the snapshot includes
    length: int
    records: int
    journal_lsn: int = 0  # the last metadata-journal record it holds (0: unknown, an older snapshot)


@dataclass
class SnapshotList(ProgressRecord):
    """The metadata snapshots kept (oldest first); each holds one reference on its segment."""

    FORMAT: ClassVar[int] = 3  # format 3: each snapshot's journal_lsn

    snapshots: list[SnapshotInfo] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SnapshotList:
        return cls([SnapshotInfo(**s) for s in raw.get("snapshots", [])])

    @classmethod
    def decoders(cls) -> dict[int, Decoder[SnapshotList]]:
        return {ROUND1_FORMAT: lambda raw: _round1_with_format_field(cls, raw), PROGRESS_FORMAT: cls.from_json,
                3: cls.from_json}


# What references a segment: {"bucket", "key", "version_id"} for an object version,
# {"upload_id", "part"} for a part of a multipart upload in progress.
ObjectRef = dict[str, str | int]


def describe_ref(r: Mapping[str, object]) -> str:
    if "bucket" in r:
        v = r.get("version_id")
        return f"{r['bucket']}/{r['key']}" + (f" (version {v})" if v and v != "null" else "")
    return f"multipart upload {r.get('upload_id')} part {r.get('part')}"


@dataclass
class LostSegment(ProgressRecord):
    """A segment found with fewer than k verified chunks in some block, and who referenced it."""

    segment_id: str
    found_ns: int
    bad_shards: list[int]
    k: int
    m: int
    objects: list[ObjectRef] = field(default_factory=list)

    @staticmethod
    def key(segment_id: str) -> bytes:
        return keys.progress(LOST_PREFIX + segment_id)


@dataclass
class RecoveryReport(ProgressRecord):
    """What `recover-metadata` did (printed by the CLI, kept under `X recovered`). While a
    recovery runs it is also its resume point: `phase` says which step is next."""

    FORMAT: ClassVar[int] = 3

    appliance_id: str = ""
    disks: list[str] = field(default_factory=list)
    shard_files: int = 0
    snapshot: dict[str, str | int] | None = None  # {"segment_id", "created_ns"} of the snapshot restored
    restored_records: int = 0
    versions_added: list[str] = field(default_factory=list)  # from shard headers (no complete journal)
    parts_added: int = 0
    versions_dropped: list[str] = field(default_factory=list)
    segments_unreadable: list[str] = field(default_factory=list)
    segments_ignored: int = 0  # staged / unknown identity: left to the orphan sweep
    degraded_segments: int = 0
    # format 3: the journal, resuming, and what came back or did not
    phase: str = RECOVERY_DONE  # snapshot | journal | reconcile | done
    journal: dict[str, int | bool] | None = None  # files, from_lsn, to_lsn, records, complete
    journal_gaps: list[str] = field(default_factory=list)  # "records A..B": on no disk
    journal_torn: list[str] = field(default_factory=list)  # files whose reading stopped early, and why
    segments_uncommitted: int = 0  # data written but never committed (a complete journal knows)
    restored: dict[str, int] = field(default_factory=dict)  # what the rebuilt DB holds, by kind
    not_restored: list[str] = field(default_factory=list)  # "what: why"

    @classmethod
    def decoders(cls) -> dict[int, Decoder[RecoveryReport]]:
        # round 1 wrapped the fields: {"report": {...}}; format 2 had no journal fields
        return {ROUND1_FORMAT: lambda raw: cls.from_json(raw["report"]), PROGRESS_FORMAT: cls.from_json,
                3: cls.from_json}


@dataclass
class MasterRotation(ProgressRecord):
    """A master-key rotation in progress (appliance/iam/rotation.py): kept until it finishes, so
    an interrupted `rotate-master` resumes with the same new key where it stopped."""

    new_key: str
    old_keys: list[str] = field(default_factory=list)  # retired when every wrap is the new key's
    phase: str = "secrets"  # secrets | segments | finish
    cursor: str = ""  # last segment id whose envelope is done
    started_ns: int = 0
    scanned: int = 0  # segment records looked at
    rewrapped: int = 0  # envelopes and secrets re-wrapped

    @classmethod
    def decoders(cls) -> dict[int, Decoder[MasterRotation]]:
        return {PROGRESS_FORMAT: cls.from_json}  # new in this version: no round-1 bytes

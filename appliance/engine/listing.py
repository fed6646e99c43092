"""S3 listings as range scans over the key schema.

A delimiter listing never reads the keys under a common prefix: when one key reveals a prefix,
the iterator seeks to `prefix_successor(prefix)`. One page of a bucket with a million keys
under a thousand prefixes therefore reads about max_keys index entries, not a million.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import msgspec

from . import keys
from .metadb import MetaDB
from .records import ObjectVersion, UploadRecord

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """A page of a listing of the latest versions, items of the type the caller decodes to."""

    entries: list[T] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_marker: str = ""


ListPage = Page[ObjectVersion]


# The ObjectVersion formats ListEntry.decode reads directly: each keeps the fields below under
# these names and types. A new format is not read here until it is added, after checking that
# (test_list_entry fails until then); until then its records go through ObjectVersion.decode.
FAST_FORMATS = frozenset({1, 2, 3, 4, 5})


class ListEntry(msgspec.Struct, frozen=True, gc=False):
    """What an S3 listing shows of an object, decoded straight from its record's JSON by msgspec
    into these fields alone (json.loads of the whole record, then an ObjectVersion, was most
    of a listing's time: ~10 us a key against ~1 us). Not tracked by the cyclic GC: it holds
    only strings, ints and a dict of strings."""

    bucket: str  # required, as by ObjectVersion: a record lacking one fails both ways
    key: str
    version_id: str
    seq: int
    last_modified_ns: int
    etag: str = ""
    size: int = 0
    storage_class: str = "STANDARD"
    checksums: dict[str, str] = {}
    checksum_type: str = ""
    owner: str = ""
    delete_marker: bool = False  # (only in a listing of versions: the latest version never is one)

    @classmethod
    def decode(cls, value: bytes) -> ListEntry:
        """A record that does not decode here (another format, damage, or a field of another
        type than these) goes through ObjectVersion.decode, its defaults and its FormatError."""
        if value and value[0] in FAST_FORMATS:
            try:
                return _decode_entry(value[1:])  # (a copy, but cheaper than a memoryview's slice)
            except msgspec.DecodeError:
                pass
        return cls.of(ObjectVersion.decode(value))

    @classmethod
    def of(cls, v: ObjectVersion) -> ListEntry:
        return cls(v.bucket, v.key, v.version_id, v.seq, v.last_modified_ns, v.etag, int(v.size), v.storage_class,
                   v.checksums or {}, v.checksum_type, v.owner, v.delete_marker)


_decode_entry = msgspec.json.Decoder(ListEntry).decode


class PosixEntry(msgspec.Struct, frozen=True, gc=False):
    """What the mount's directory listing shows of a file (its attributes come from user
    metadata, fusefs/attrs.py), decoded like ListEntry: ~3 us a record against ~24 us for a whole
    ObjectVersion of a mount-written file, which was most of a cold `ls -l`. Untracked by the
    cyclic GC for the same reason."""

    bucket: str
    key: str
    version_id: str
    seq: int
    last_modified_ns: int
    size: int = 0
    user_meta: dict[str, str] = {}
    posix_trusted: bool = True  # (format 1 had no such field: its versions are trusted)
    inode: str = ""
    delete_marker: bool = False

    @classmethod
    def decode(cls, value: bytes) -> PosixEntry:
        """As ListEntry.decode: anything the fast decoder refuses goes through ObjectVersion."""
        if value and value[0] in FAST_FORMATS:
            try:
                return _decode_posix(value[1:])
            except msgspec.DecodeError:
                pass
        return cls.of(ObjectVersion.decode(value))

    @classmethod
    def of(cls, v: ObjectVersion) -> PosixEntry:
        return cls(v.bucket, v.key, v.version_id, v.seq, v.last_modified_ns, int(v.size), v.user_meta,
                   v.posix_trusted, v.inode, v.delete_marker)


_decode_posix = msgspec.json.Decoder(PosixEntry).decode

EntryPage = Page[ListEntry]
PosixPage = Page[PosixEntry]


@dataclass
class VersionPage:
    entries: list[tuple[ObjectVersion, bool]] = field(default_factory=list)  # (version, is_latest)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str = ""
    next_version_id_marker: str = ""


@dataclass
class VersionEntryPage:
    entries: list[tuple[ListEntry, bool]] = field(default_factory=list)  # (version, is_latest)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str = ""
    next_version_id_marker: str = ""


@dataclass
class UploadPage:
    uploads: list[UploadRecord] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str = ""
    next_upload_id_marker: str = ""


def _scan(
    db: MetaDB,
    base: bytes,
    prefix: str,
    delimiter: str,
    start: bytes,
    key_of: Callable[[bytes], str],
    after: str,
    max_items: int,
    on_entry: Callable[[bytes, bytes, str], None],
) -> tuple[list[str], bool, str]:
    """Generic prefix/delimiter walk. Returns (common prefixes, truncated, last item name).

    `after`: common prefixes <= after are skipped (they were returned on an earlier page).
    """
    lo = base + prefix.encode()
    hi = keys.prefix_successor(lo) if prefix else keys.prefix_successor(base)
    start = max(start, lo)
    prefixes: list[str] = []
    count = 0
    last = ""
    if max_items <= 0:
        return prefixes, False, last
    with db.iterator(start=start, stop=hi) as it:
        for raw, value in it:
            key = key_of(raw)
            if delimiter:
                pos = key.find(delimiter, len(prefix))
                if pos >= 0:
                    cp = key[: pos + len(delimiter)]
                    nxt = keys.prefix_successor(base + cp.encode())
                    if cp > after or not after:
                        if count == max_items:
                            return prefixes, True, last
                        prefixes.append(cp)
                        count += 1
                        last = cp
                    if nxt is None:
                        break
                    it.seek(nxt)
                    continue
            if count == max_items:
                return prefixes, True, last
            on_entry(raw, value, key)
            count += 1
            last = key
    return prefixes, False, last


def list_objects(
    db: MetaDB, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
) -> ListPage:
    return _page(ListPage(), ObjectVersion.decode, db, bucket, prefix, delimiter, start_after, max_keys)


def list_entries(
    db: MetaDB, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
) -> EntryPage:
    """list_objects with ListEntry items: what ListObjects(V2) needs, at a fraction of the cost."""
    return _page(EntryPage(), ListEntry.decode, db, bucket, prefix, delimiter, start_after, max_keys)


def list_posix_entries(
    db: MetaDB, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
) -> PosixPage:
    """list_objects with PosixEntry items: what the mount's directory listing needs."""
    return _page(PosixPage(), PosixEntry.decode, db, bucket, prefix, delimiter, start_after, max_keys)


def _page(page: Page[T], decode: Callable[[bytes], T], db: MetaDB, bucket: str, prefix: str, delimiter: str,
          start_after: str, max_keys: int) -> Page[T]:
    """One page of the latest versions, each record decoded by `decode` (the page's item type)."""
    page.common_prefixes, page.is_truncated, page.next_marker = _latest(
        db, bucket, prefix, delimiter, start_after, max_keys, decode, page.entries)
    return page


def _latest(db: MetaDB, bucket: str, prefix: str, delimiter: str, start_after: str, max_keys: int,
            decode: Callable[[bytes], T], out: list[T]) -> tuple[list[str], bool, str]:
    """A page of the latest versions into `out`: (common prefixes, truncated, next marker).

    _scan's walk for the L keys, on bytes: the key is the raw key minus the bucket's prefix,
    and UTF-8 is self-synchronizing, so finding the delimiter's bytes in the key's bytes finds
    exactly the str matches; byte order is code point order. Only the common prefixes and the
    page's last key are decoded to str (a listed key's str comes from its record)."""
    if max_keys <= 0:
        return [], False, ""
    base = keys.latest_prefix(bucket)
    lo = base + prefix.encode()
    hi = keys.prefix_successor(lo)
    after = start_after.encode()
    start = max(base + after + b"\x00" if start_after else base, lo)
    prefixes: list[str] = []
    last = b""
    truncated = False
    with db.iterator(start=start, stop=hi) as it:
        if not delimiter:
            # the page plus one record that says whether it is truncated, read in one C call
            pairs = list(itertools.islice(it, max_keys + 1))
            truncated = len(pairs) > max_keys
            if truncated:
                del pairs[max_keys:]
            out += [decode(value) for _raw, value in pairs]
            if pairs:
                last = pairs[-1][0]
        else:
            dl = delimiter.encode()
            skip, cut = len(lo), len(base)
            count = 0
            for raw, value in it:
                pos = raw.find(dl, skip)
                if pos >= 0:
                    cp = raw[: pos + len(dl)]
                    if not after or cp[cut:] > after:
                        if count == max_keys:
                            truncated = True
                            break
                        prefixes.append(cp[cut:].decode())
                        count += 1
                        last = cp
                    nxt = keys.prefix_successor(cp)
                    if nxt is None:
                        break
                    it.seek(nxt)
                    continue
                if count == max_keys:
                    truncated = True
                    break
                out.append(decode(value))
                count += 1
                last = raw
    return prefixes, truncated, last[len(base):].decode() if truncated else ""


class _Versioned(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def version_id(self) -> str: ...


V = TypeVar("V", bound=_Versioned)


def list_versions(
    db: MetaDB,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    version_id_marker: str = "",
    max_keys: int = 1000,
) -> VersionPage:
    page = VersionPage()
    page.common_prefixes, page.is_truncated, page.next_key_marker, page.next_version_id_marker = _versions(
        db, bucket, prefix, delimiter, key_marker, version_id_marker, max_keys, ObjectVersion.decode, page.entries)
    return page


def list_version_entries(
    db: MetaDB,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    version_id_marker: str = "",
    max_keys: int = 1000,
) -> VersionEntryPage:
    """list_versions with ListEntry items: what ListObjectVersions shows."""
    page = VersionEntryPage()
    page.common_prefixes, page.is_truncated, page.next_key_marker, page.next_version_id_marker = _versions(
        db, bucket, prefix, delimiter, key_marker, version_id_marker, max_keys, ListEntry.decode, page.entries)
    return page


def _versions(db: MetaDB, bucket: str, prefix: str, delimiter: str, key_marker: str, version_id_marker: str,
              max_keys: int, decode: Callable[[bytes], V],
              out: list[tuple[V, bool]]) -> tuple[list[str], bool, str, str]:
    """A page of versions into `out` as (version, is latest): (common prefixes, truncated, next
    key marker, next version id marker)."""
    base = keys.version_bucket_prefix(bucket)
    if key_marker and version_id_marker:
        # The I key resolves the marker, also for a version removed since (Txn._drop keeps it).
        # "null" is the one id that moves: a null version replaced between two pages is the key's
        # newest, so the next page resumes above the one the client saw and lists again the
        # versions between the two (duplicates, never a skip). Which null the client saw cannot
        # be told from the marker; resuming at the old one would skip those versions for a client
        # that saw the new one.
        raw_seq = db.get(keys.vid(bucket, key_marker, version_id_marker))
        if raw_seq is not None:
            start = keys.version(bucket, key_marker, keys.unpack_seq(raw_seq)) + b"\x00"
        else:
            start = keys.prefix_successor(keys.version_key_prefix(bucket, key_marker)) or base
    elif key_marker:
        start = keys.prefix_successor(keys.version_key_prefix(bucket, key_marker)) or base
    else:
        start = base
    seen_key: list[str] = [key_marker if version_id_marker else ""]

    def on_entry(raw: bytes, value: bytes, key: str) -> None:
        v = decode(value)
        is_latest = key != seen_key[0]
        seen_key[0] = key
        out.append((v, is_latest))

    def key_of(raw: bytes) -> str:
        return keys.split_version(raw, bucket)[0]

    prefixes, truncated, last = _scan(db, base, prefix, delimiter, start, key_of, key_marker, max_keys, on_entry)
    next_key = next_vid = ""
    if truncated:
        next_key = last
        if out and out[-1][0].key == last:
            next_vid = out[-1][0].version_id
    return prefixes, truncated, next_key, next_vid


def list_uploads(
    db: MetaDB,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    upload_id_marker: str = "",
    max_uploads: int = 1000,
) -> UploadPage:
    base = keys.upload_bucket_prefix(bucket)
    if key_marker and upload_id_marker:
        start = keys.upload(bucket, key_marker, upload_id_marker) + b"\x00"
    elif key_marker:
        start = keys.prefix_successor(base + key_marker.encode() + keys.SEP) or base
    else:
        start = base
    page = UploadPage()

    def on_entry(raw: bytes, value: bytes, key: str) -> None:
        page.uploads.append(UploadRecord.decode(value))

    def key_of(raw: bytes) -> str:
        return keys.split_upload(raw, bucket)[0]

    page.common_prefixes, page.is_truncated, last = _scan(
        db, base, prefix, delimiter, start, key_of, key_marker, max_uploads, on_entry
    )
    if page.is_truncated:
        page.next_key_marker = last
        if page.uploads and page.uploads[-1].key == last:
            page.next_upload_id_marker = page.uploads[-1].upload_id
    return page


def count_prefixes(db: MetaDB, bucket: str, prefix: str, accept: Callable[[str], bool]) -> int:
    """Common prefixes ("/" delimiter) directly under `prefix` whose name passes `accept`: a
    key-only walk that seeks past each prefix it finds."""
    base = keys.latest_prefix(bucket)
    lo = base + prefix.encode()
    hi = keys.prefix_successor(lo)
    n = 0
    with db.db.iterator(start=lo, stop=hi, include_value=False) as it:
        for raw in it:
            key = keys.latest_key_of(raw, bucket)
            pos = key.find("/", len(prefix))
            if pos < 0:
                continue
            if accept(key[len(prefix):pos]):
                n += 1
            nxt = keys.prefix_successor(base + key[: pos + 1].encode())
            if nxt is None:
                break
            it.seek(nxt)
    return n

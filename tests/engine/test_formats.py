"""Golden files for every persisted format: a format change must be deliberate (new version)."""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import pytest

from appliance.engine import keys, records
from appliance.engine.codec import Geometry, decode_block, encode_block
from appliance.engine.crypto import SegmentCipher
from appliance.engine.errors import FormatError
from appliance.engine.records import ObjectVersion, SegmentRecord, SegmentRef
from appliance.engine.shardfile import ShardHeader, read_chunks, read_header

GOLDEN = Path(__file__).parent / "golden"


def test_object_version_v1() -> None:
    raw = (GOLDEN / "object_version.v1").read_bytes()
    v = ObjectVersion.decode(raw)
    assert v.key == "dir/ключ" and v.segments == [SegmentRef("ab" * 16, 0, 5)] and v.user_meta == {"mode": "33188"}
    assert v.acl is None and v.posix_trusted  # format 1 predates ACLs; its POSIX attributes stay trusted
    assert ObjectVersion.decode(v.encode()) == v


def test_object_version_v3_and_inode_v1() -> None:
    v = ObjectVersion.decode((GOLDEN / "object_version.v3").read_bytes())
    assert v.inode == "0123456789abcdef01234567" and v.user_meta["mode"] == "4480"  # a FIFO, hard-linked
    assert ObjectVersion.decode((GOLDEN / "object_version.v2").read_bytes()).inode == ""  # one name
    rec = records.InodeRecord.decode((GOLDEN / "inode.v1").read_bytes())
    assert rec.links == ["dir/ключ", "dir/ссылка"] and rec.inode_id == v.inode


def test_object_version_v5_and_upload_v4_multipart_checksums() -> None:
    v = ObjectVersion.decode((GOLDEN / "object_version.v5").read_bytes())
    assert v.parts == [5242880, 5] and v.part_checksums == [{"CRC32": "AAAAAA=="}, {"CRC32": "NhCmhg=="}]
    assert ObjectVersion.decode((GOLDEN / "object_version.v4").read_bytes()).part_checksums == []
    up = records.UploadRecord.decode((GOLDEN / "upload.v4").read_bytes())
    assert (up.checksum_algorithm, up.checksum_type) == ("CRC64NVME", "FULL_OBJECT")
    # before format 4 an upload with an algorithm always completed with a composite checksum
    old = records.UploadRecord.decode((GOLDEN / "upload.v3").read_bytes())
    assert (old.checksum_algorithm, old.checksum_type) == ("CRC32C", "COMPOSITE")


def test_segment_v1() -> None:
    raw = (GOLDEN / "segment.v1").read_bytes()
    s = SegmentRecord.decode(raw)
    assert s.shards == ["d0", "d1", None, "d3", "d4", "d5"] and s.damaged == [2]
    assert s.enc is None and s.plain_length == s.length  # format 1 predates encryption
    assert SegmentRecord.decode(s.encode()) == s


def test_segment_v2_encrypted() -> None:
    s = SegmentRecord.decode((GOLDEN / "segment.v2").read_bytes())
    assert s.enc == {"v": 1, "mode": "AES256", "wrapped": "AQ5tay0wMTIzNDU2Nzg5YWJjZGVm"}
    assert (s.length, s.plain_length) == (100032, 100000)  # a 16-byte tag per 64 KiB block


def test_segment_v3_transcoded() -> None:
    s = SegmentRecord.decode((GOLDEN / "segment.v3").read_bytes())
    assert (s.k, s.m, s.cipher_id) == (5, 1, "cd" * 16)  # re-encoded from segment.v2's blocks
    assert SegmentRecord.decode((GOLDEN / "segment.v2").read_bytes()).cipher_id == ""


def test_segment_v4_packed() -> None:
    s = SegmentRecord.decode((GOLDEN / "segment.v4").read_bytes())
    assert s.packs == [[1, 64, 400], None, [3, 8256, 8600]]
    assert (s.pack_of(0), s.pack_of(1), s.pack_of(2)) == ([1, 64, 400], None, [3, 8256, 8600])
    s.set_pack(0, None)
    s.set_pack(2, None)
    assert s.packs == []  # every shard a file again: the record reads as before format 4
    assert SegmentRecord.decode((GOLDEN / "segment.v3").read_bytes()).packs == []


def test_unknown_record_version_refused() -> None:
    raw = b"\x09" + (GOLDEN / "segment.v1").read_bytes()[1:]
    with pytest.raises(FormatError, match="format 9"):
        SegmentRecord.decode(raw)


def test_shard_file_v1() -> None:
    path = GOLDEN / "shard.v1"
    h = read_header(str(path))
    assert (h.segment_id, h.shard, h.k, h.m, h.block_size, h.length) == ("ab" * 16, 1, 4, 2, 65536, 100000)
    assert h.identity == {"bucket": "bkt", "key": "k", "version_id": "null"}
    rnd = random.Random(1)
    data = bytes(rnd.randrange(256) for _ in range(100000))
    geo = Geometry(4, 2, 65536)
    chunks = read_chunks(str(path), geo, 100000, 0, 1)
    assert chunks[0] == encode_block(geo, data[:65536])[1]
    assert chunks[1] == encode_block(geo, data[65536:])[1]
    # decode from shard 1 plus three others
    full = encode_block(geo, data[65536:])
    assert decode_block(geo, {1: chunks[1], 0: full[0], 4: full[4], 5: full[5]}, 100000 - 65536) == data[65536:]


def test_shard_file_v2_encrypted() -> None:
    """Format 2: an encrypted segment's shard carries the envelope; its chunks are ciphertext."""
    path = GOLDEN / "shard.v2"
    h = read_header(str(path))
    assert (h.segment_id, h.shard, h.k, h.m, h.block_size, h.length) == ("cd" * 16, 1, 4, 2, 65536, 100032)
    assert h.enc == {"v": 1, "mode": "AES256", "wrapped": "AQ5tay0wMTIzNDU2Nzg5YWJjZGVm"}
    # re-encoded (rotate-master's rewrite_header): format 3, the same JSON where it always was
    raw = path.read_bytes()[:8192]
    n = int.from_bytes(raw[10:14], "little")
    assert h.encode()[:8] + h.encode()[10:14 + n] == raw[:8] + raw[10:14 + n]
    rnd = random.Random(1)
    data = bytes(rnd.randrange(256) for _ in range(100000))
    geo = Geometry(4, 2, 65536)
    cipher = SegmentCipher(bytes(range(32)), h.segment_id)
    chunks = read_chunks(str(path), geo, h.length, 0, 1)
    for b, (lo, hi) in enumerate([(0, 65520), (65520, 100000)]):
        sealed = cipher.seal(b, data[lo:hi], b == 1)
        full = encode_block(geo, sealed)
        assert chunks[b] == full[1] and data[lo:lo + 100] not in chunks[b]
        rebuilt = decode_block(geo, {1: chunks[b], 0: full[0], 4: full[4], 5: full[5]}, len(sealed))
        assert cipher.open(b, rebuilt, b == 1) == data[lo:hi]
    # encrypted or not, a header is written as format 3 (checksummed)
    assert h.encode()[8:10] == ShardHeader(**{**asdict(h), "enc": None}).encode()[8:10] == b"\x03\x00"


def test_shard_file_v3_checksummed() -> None:
    """Format 3: format 1/2's header with its own CRC32C after the JSON (the chunks as before)."""
    path = GOLDEN / "shard.v3"
    h = read_header(str(path))
    assert (h.segment_id, h.shard, h.k, h.m, h.block_size, h.length) == ("ab" * 16, 1, 4, 2, 65536, 100000)
    assert h.identity == {"bucket": "bkt", "key": "k", "version_id": "null"} and h.enc is None
    raw = path.read_bytes()
    assert h.encode() == raw[:8192]  # the current format writes exactly the golden bytes
    assert raw[8192:] == (GOLDEN / "shard.v1").read_bytes()[8192:]
    enc = {"v": 1, "mode": "AES256", "wrapped": "AQ5tay0wMTIzNDU2Nzg5YWJjZGVm"}
    assert ShardHeader.decode(ShardHeader(**{**asdict(h), "enc": enc}).encode()).enc == enc


def test_shard_header_checksum_catches_a_change_that_still_decodes() -> None:
    """A changed letter of the key, or digit of the length: the JSON still parses (format 1
    reads it as another object); format 3's CRC finds it."""
    def changed(raw: bytes) -> list[bytes]:
        at = raw.index(b'"key":"k"') + 7
        return [raw[:at] + b"j" + raw[at + 1:], raw.replace(b'"length":100000', b'"length":100001')]

    v1 = (GOLDEN / "shard.v1").read_bytes()[:8192]
    key, length = changed(v1)  # what an old header cannot tell
    assert ShardHeader.decode(key).identity["key"] == "j" and ShardHeader.decode(length).length == 100001
    v3 = (GOLDEN / "shard.v3").read_bytes()[:8192]
    n = int.from_bytes(v3[10:14], "little")
    no_crc = v3[:14 + n] + bytes(4) + v3[18 + n:]
    too_long = v3[:10] + (8192).to_bytes(4, "little") + v3[14:]  # a length past the header's end
    for bad in [*changed(v3), no_crc, too_long]:
        with pytest.raises(FormatError, match="checksum"):
            ShardHeader.decode(bad)
    for old in (1, 2):  # the format number damaged too: read as an old format, the JSON went unchecked
        key_flipped = changed(v3)[0]
        with pytest.raises(FormatError, match="checksum"):
            ShardHeader.decode(key_flipped[:8] + bytes([old]) + key_flipped[9:])


def test_shard_header_rejects_foreign_and_future() -> None:
    raw = (GOLDEN / "shard.v1").read_bytes()[:8192]
    with pytest.raises(FormatError):
        ShardHeader.decode(b"NOTSHARD" + raw[8:])
    with pytest.raises(FormatError, match="format 4"):
        ShardHeader.decode(raw[:8] + b"\x04" + raw[9:])
    with pytest.raises(FormatError, match="envelope"):  # format 2 without its envelope
        ShardHeader.decode(raw[:8] + b"\x02" + raw[9:])


def test_key_schema_order() -> None:
    """Encoded keys sort like S3: by UTF-8 bytes of the key, versions newest first."""
    names = ["a", "a/b", "a0", "ab", "é", "z", "a!"]
    assert sorted(names, key=lambda n: keys.latest("b", n)) == sorted(names, key=lambda n: n.encode())
    assert keys.version("b", "k", 10) > keys.version("b", "k", 11)
    assert keys.version("b", "k", 1) < keys.version("b", "k0", 99)
    assert keys.split_version(keys.version("b", "x/y", 12345), "b") == ("x/y", 12345)
    assert keys.prefix_successor(b"ab\xff") == b"ac" and keys.prefix_successor(b"\xff") is None
    assert keys.latest("bkt", "k") == b"Lbkt\x00k"


# Every Record class, every format version it decodes: golden bytes written by the version that
# introduced the format (format 1: round 1, commit 993b8cb). Adding a record class or a format
# without its golden file fails here.
GOLDEN_NAMES = {
    "BucketRecord": "bucket", "ObjectVersion": "object_version", "SegmentRecord": "segment",
    "UploadRecord": "upload", "PartRecord": "part", "DiskRecord": "disk", "GcEntry": "gc",
    "HealEntry": "heal", "CredentialRecord": "credential", "UserRecord": "user", "GroupRecord": "group",
    "PolicyRecord": "policy", "AccountRecord": "account", "KmsKeyRecord": "kms_key", "InodeRecord": "inode",
    "CompletionRecord": "completion", "OperatorRecord": "operator", "BucketLoggingRecord": "bucket_logging",
    "CorsRecord": "cors", "EventConfigRecord": "event_config", "EventTargetRecord": "event_target",
    "QueuedEvent": "queued_event", "ReplicationState": "replication_state", "LifecycleRecord": "lifecycle",
    "LifecycleCursor": "lifecycle_cursor", "RestoreRecord": "restore", "UsageRecord": "usage", "QuotaRecord": "quota",
    "SitePeerRecord": "site_peer", "SiteStamp": "site_stamp", "SiteChange": "site_change",
    "SiteConflict": "site_conflict",
    "RebalanceCursor": "rebalance_cursor", "TieringConfigRecord": "tiering_config", "ArchiveTierRecord": "archive_tier",
}


def _record_classes() -> list[type[records.Record]]:
    return [c for c in vars(records).values()
            if isinstance(c, type) and issubclass(c, records.Record) and c is not records.Record]


def test_every_record_class_has_golden_files_for_every_format() -> None:
    def has_golden(cls: type[records.Record], version: int) -> bool:
        stem = GOLDEN_NAMES.get(cls.__name__)
        return stem is not None and (GOLDEN / f"{stem}.v{version}").exists()

    missing = [f"{c.__name__} format {v}" for c in _record_classes() for v in c.decoders() if not has_golden(c, v)]
    assert missing == []


@pytest.mark.parametrize("cls", _record_classes(), ids=lambda c: c.__name__)
def test_golden_records_decode_and_re_encode(cls: type[records.Record]) -> None:
    for version in cls.decoders():
        raw = (GOLDEN / f"{GOLDEN_NAMES[cls.__name__]}.v{version}").read_bytes()
        rec = cls.decode(raw)
        assert raw[0] == version
        if version == cls.FORMAT:
            assert rec.encode() == raw  # the current format writes exactly the golden bytes
        elif isinstance(rec, records.CredentialRecord) and rec.legacy_secret:
            # its plain secret must be wrapped first: the identity layer's job (test_identity_formats)
            with pytest.raises(FormatError, match="wrapped"):
                rec.encode()
        else:
            assert cls.decode(rec.encode()) == rec  # an old format upgrades losslessly


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x01[1,2]", b"\x01{\"name\": 5", b"\x01\xff\xfe",
                                 b"\x01{\"name\":\"x\"}"])
def test_damaged_records_raise_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        records.BucketRecord.decode(raw)


def test_identity_records() -> None:
    """Round 1's user and key, and the formats that replaced them."""
    user1 = records.UserRecord.decode((GOLDEN / "user.v1").read_bytes())
    assert (user1.name, user1.policies, user1.inline, user1.disabled) == ("alice", [], {}, False)
    assert user1.user_id.startswith("AIDA") and len(user1.canonical_id) == 64
    assert records.UserRecord.decode((GOLDEN / "user.v1").read_bytes()) == user1  # derived ids are stable
    admin = records.UserRecord.decode(b'\x01{"name":"boss","created_ns":7,"admin":true}')
    assert admin.policies == ["admin"] and admin.user_id != user1.user_id
    user2 = records.UserRecord.decode((GOLDEN / "user.v2").read_bytes())
    assert user2.disabled and user2.path == "/staff/" and user2.policies == ["readonly", "team-rw"]

    cred1 = records.CredentialRecord.decode((GOLDEN / "credential.v1").read_bytes())
    assert cred1.legacy_secret == "golden-secret-not-real" and cred1.wrapped_secret == ""
    assert "golden-secret" not in repr(cred1)
    cred2 = records.CredentialRecord.decode((GOLDEN / "credential.v2").read_bytes())
    assert not cred2.active and not cred2.legacy_secret and cred2.wrapped_secret
    assert (cred2.session_policy, cred2.expires_ns) == ("", 0)  # format 2 had no limits: none, never expires
    cred3 = records.CredentialRecord.decode((GOLDEN / "credential.v3").read_bytes())
    assert ':::photos/*"' in cred3.session_policy and cred3.expires_ns == 1893456000000000000 and cred3.active

    policy = records.PolicyRecord.decode((GOLDEN / "policy.v1").read_bytes())
    assert policy.default_version == "v3" and '"s3:*"' in policy.document and policy.version("v2") is None
    group = records.GroupRecord.decode((GOLDEN / "group.v1").read_bytes())
    assert group.members == ["alice", "bob"] and group.policies == ["readwrite"]


def test_key_spaces_are_distinct() -> None:
    """Every key space has its own leading byte (two features once both took b"N")."""
    spaces = {name: value for name, value in vars(keys).items()
              if name.isupper() and isinstance(value, bytes) and len(value) == 1 and name != "SEP"}
    assert len(set(spaces.values())) == len(spaces), spaces
    documented = {line.split()[0][0] for line in (keys.__doc__ or "").splitlines()[1:] if line.startswith("    ")}
    assert {v.decode() for v in spaces.values()} <= documented

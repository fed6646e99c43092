"""Site replication's change log on a real MetaDB (no daemon): a change of a replicated record
queues for every peer in its own commit, the last writer wins, concurrent writes are conflicts,
and what a peer sends is checked field by field."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.engine import keys
from appliance.engine.metadb import Batch, MetaDB
from appliance.engine.records import BucketRecord, SiteChange, SiteStamp
from appliance.services import sitekeys
from appliance.services.sitehlc import Hlc
from appliance.services.sitelog import STATE_TRANSFER, SiteLog, apply_change
from appliance.services.sitewire import BadDocument, load, parse_changes, parse_introduce, parse_join, parse_leave


@pytest.fixture
def db(tmp_path: Path) -> Iterator[MetaDB]:
    d = MetaDB(tmp_path / "meta")
    yield d
    d.close()


def commit(db: MetaDB, **puts: bytes | None) -> None:
    b = db.batch()
    for k, v in puts.items():
        if v is None:
            b.delete(k.encode())
        else:
            b.put(k.encode(), v)
    db.commit_now(b)


def queued(db: MetaDB, peer: str) -> list[SiteChange]:
    return [SiteChange.decode(raw) for _, raw in db.scan(sitekeys.queue_prefix(peer))]


def test_changes_of_replicated_records_queue_in_their_commit(db: MetaDB) -> None:
    log = SiteLog(db, "me", Hlc(), ("p1", "p2"))
    db.write_hooks.append(log.hook)
    commit(db, Walice=b"\x01{}", zbusage=b"1")  # a user (replicated) and a usage counter (not)
    commit(db, Walice=b"\x01{}")  # rewritten unchanged: nothing to tell
    commit(db, Walice=None)
    for peer in ("p1", "p2"):
        put, delete = queued(db, peer)
        assert base64.b64decode(put.key) == b"Walice" and put.value and put.prev == 0
        assert delete.value is None and delete.prev == put.hlc and delete.hlc > put.hlc
    stamp = db.get_record(SiteStamp, sitekeys.stamp(b"Walice"))
    assert stamp is not None and stamp.origin == "me"  # the tombstone stays


def change(key: bytes, value: bytes | None, hlc: int, origin: str, prev: int) -> SiteChange:
    return SiteChange(base64.b64encode(key).decode(), base64.b64encode(value).decode() if value else None, hlc,
                      origin, prev)


def test_last_writer_wins_and_concurrent_writes_are_conflicts(db: MetaDB) -> None:
    b = db.batch()
    r = apply_change(b, change(b"Mpol", b"v1", 10, "peer", 0), peer_root="", local_root="")
    assert r.applied and r.conflict is None and b.get(b"Mpol") == b"v1"
    # the writer had seen v1 (prev 10): a plain update
    r = apply_change(b, change(b"Mpol", b"v2", 20, "peer", 10), peer_root="", local_root="")
    assert r.applied and r.conflict is None
    assert apply_change(b, change(b"Mpol", b"v2", 20, "peer", 10), peer_root="", local_root="").applied is False
    # a local write at 30, then a peer's write at 25 that had not seen it: conflict, ours kept
    b.put(sitekeys.stamp(b"Mpol"), SiteStamp(30, "me"))
    b.put(b"Mpol", b"mine")
    r = apply_change(b, change(b"Mpol", b"theirs", 25, "peer", 20), peer_root="", local_root="")
    assert not r.applied and r.conflict is not None and r.conflict.winner == "me" and b.get(b"Mpol") == b"mine"
    # and one at 40 that had not seen it either: conflict, theirs wins
    r = apply_change(b, change(b"Mpol", b"later", 40, "peer", 20), peer_root="", local_root="")
    assert r.applied and r.conflict is not None and r.conflict.winner == "peer" and b.get(b"Mpol") == b"later"
    # a state transfer of the same value is no conflict
    r = apply_change(b, change(b"Mpol", b"later", 39, "other", STATE_TRANSFER), peer_root="", local_root="")
    assert r.conflict is None and not r.applied


def test_a_bucket_of_the_peers_root_is_ours_and_a_non_empty_bucket_is_not_deleted(db: MetaDB) -> None:
    b = db.batch()
    rec = BucketRecord("photos", 1, owner="their-root").encode()
    r = apply_change(b, change(b"Bphotos", rec, 10, "peer", 0), peer_root="their-root", local_root="our-root")
    assert r.applied
    got = b.get_record(BucketRecord, b"Bphotos")
    assert got is not None and got.owner == "our-root"
    db.commit_now(b)
    commit(db, **{keys.version("photos", "k", 1).decode("latin-1"): b"x"})
    b = db.batch()
    r = apply_change(b, change(b"Bphotos", None, 20, "peer", 10), peer_root="", local_root="")
    assert not r.applied and r.conflict is not None and "holds objects" in r.conflict.reason


def test_records_outside_site_replication_are_refused(db: MetaDB) -> None:
    for key in (b"Ssegment", b"Vb\x00k\x00", b"Otnotify-target", b"fpeer\x00", b"Aaccount"):
        with pytest.raises(ValueError):
            apply_change(db.batch(), change(key, b"x", 1, "peer", 0), peer_root="", local_root="")


GOOD_CHANGE = {"key": "V2FsaWNl", "value": None, "hlc": 5, "origin": "p", "prev": 0}


@pytest.mark.parametrize("doc", [
    {}, {"origin": "p"}, {"origin": "p", "changes": {}}, {"origin": 5, "changes": []},
    {"origin": "p" * 65, "changes": []}, {"origin": "p", "changes": [[]]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, key="not base64!")]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, hlc=0)]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, hlc=True)]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, hlc=1 << 64)]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, prev=-2)]},
    {"origin": "p", "changes": [dict(GOOD_CHANGE, value=7)]},
    {"origin": "p", "changes": [GOOD_CHANGE] * 1001},
])
def test_hostile_change_documents(doc: dict[str, object]) -> None:
    with pytest.raises(BadDocument):
        parse_changes(doc)


def test_a_good_change_document() -> None:
    origin, changes = parse_changes({"origin": "p", "changes": [GOOD_CHANGE]})
    assert origin == "p" and changes[0].hlc == 5 and changes[0].value is None


@pytest.mark.parametrize("body", [b"", b"[]", b"\xff\xfe", b"{", b'"x"', json.dumps({"name": "n"}).encode(),
                                  json.dumps({"name": "n", "url": "ftp://x", "access_key": "a",
                                              "wrapped_secret": "AA==", "root_canonical_id": ""}).encode(),
                                  json.dumps({"name": "n", "url": "http://x", "access_key": "a",
                                              "wrapped_secret": "%%", "root_canonical_id": ""}).encode()])
def test_hostile_join_documents(body: bytes) -> None:
    with pytest.raises(BadDocument):
        parse_join(load(body))


def test_join_defaults_and_refusals() -> None:
    base = {"name": "n", "url": "https://box:9000", "access_key": "a", "wrapped_secret": "AA==",
            "root_canonical_id": ""}
    j = parse_join(base)
    assert (j.region, j.tls_verify) == ("us-east-1", True)
    assert parse_join(dict(base, region="eu-1", tls_verify=False)).tls_verify is False
    for bad in ({"tls_verify": "no"}, {"region": 5}, {"region": "r" * 65}):
        with pytest.raises(BadDocument):
            parse_join(dict(base, **bad))


def test_introduce_and_leave_documents() -> None:
    base = {"name": "n", "url": "https://box:9000", "access_key": "a", "wrapped_secret": "AA==", "region": "r",
            "tls_verify": False, "self_url": "https://new:9000"}
    intro = parse_introduce(base)
    assert (intro.url, intro.self_url, intro.tls_verify) == ("https://box:9000", "https://new:9000", False)
    for bad in ({"self_url": "ftp://x"}, {"url": 5}, {"tls_verify": "no"}, {"wrapped_secret": "%%"}, {"name": ""},
                {"region": None}, {"access_key": "a" * 129}):
        with pytest.raises(BadDocument):
            parse_introduce(dict(base, **bad))
    assert parse_leave({"origin": "p"}) == "p"
    for doc in ({}, {"origin": ""}, {"origin": 5}, {"origin": "p" * 65}):
        with pytest.raises(BadDocument):
            parse_leave(doc)


def test_in_a_site_a_new_bucket_is_versioned_and_a_suspended_one_stays_so(db: MetaDB) -> None:
    log = SiteLog(db, "me", Hlc(), ("p1",))
    db.write_hooks.append(log.hook)
    commit(db, Bnew=BucketRecord("new", 1).encode(), Bsusp=BucketRecord("susp", 1, versioning="Suspended").encode())
    assert [db.get_record(BucketRecord, k).versioning for k in (b"Bnew", b"Bsusp")] == ["Enabled", "Suspended"]
    sent = {base64.b64decode(c.key): BucketRecord.decode(base64.b64decode(c.value or "")) for c in queued(db, "p1")}
    assert sent[b"Bnew"].versioning == "Enabled"


def test_a_conflict_never_takes_object_lock_off_a_bucket(db: MetaDB) -> None:
    """A peer's record of the bucket made before (or concurrently with) object lock being
    enabled here used to replace ours when it won: object lock off, versioning Suspended, the
    default retention gone. Both boxes now keep the lock, whichever record wins."""
    lock_on = {"enabled": True, "mode": "COMPLIANCE", "days": 30, "years": 0}
    ours = BucketRecord("vault", 1, versioning="Enabled", object_lock=lock_on)
    theirs = BucketRecord("vault", 1, versioning="Suspended", tags={"team": "x"})

    def on(b: Batch) -> BucketRecord:
        got = b.get_record(BucketRecord, b"Bvault")
        assert got is not None
        return got

    # theirs wins here (later): their settings, our object lock
    b = db.batch()
    b.put(b"Bvault", ours)
    b.put(sitekeys.stamp(b"Bvault"), SiteStamp(10, "me"))
    r = apply_change(b, change(b"Bvault", theirs.encode(), 20, "peer", 0), peer_root="", local_root="")
    assert r.applied and r.conflict is not None
    got = on(b)
    assert (got.object_lock, got.versioning, got.tags) == (lock_on, "Enabled", {"team": "x"})
    # the peer's side of the same conflict: ours loses there, and it takes our object lock too
    b = db.batch()
    b.put(b"Bvault", theirs)
    b.put(sitekeys.stamp(b"Bvault"), SiteStamp(20, "peer"))
    r = apply_change(b, change(b"Bvault", ours.encode(), 10, "me", 0), peer_root="", local_root="")
    assert not r.applied and r.conflict is not None
    got = on(b)
    assert (got.object_lock, got.versioning, got.tags) == (lock_on, "Enabled", {"team": "x"})
    assert b.get_record(SiteStamp, sitekeys.stamp(b"Bvault")) == SiteStamp(20, "peer")
    # a record with object lock that wins replaces ours as before (a new default retention)
    shorter = BucketRecord("vault", 1, versioning="Enabled", object_lock=dict(lock_on, days=1))
    assert apply_change(b, change(b"Bvault", shorter.encode(), 30, "peer", 20), peer_root="", local_root="").applied
    assert on(b).object_lock == shorter.object_lock

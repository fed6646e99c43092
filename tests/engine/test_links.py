"""Hard links in the engine: an InodeRecord lists a file's names, each name a normal key whose
current version carries the record's id; writes with PutMeta.inode reach every name; any other
write or delete of a name takes it out; the key-length rules (S3's 1024 for new keys, 4095 for
the mount and for keys that exist)."""

from __future__ import annotations

import pytest

from appliance.engine import MAX_KEY_BYTES, S3_MAX_KEY_BYTES, PutMeta
from appliance.engine.errors import KeyTooLong, NoSuchKey, PreconditionFailed
from appliance.engine.objectstore import ObjectStore

from .conftest import read_all


def names(store: ObjectStore, key: str) -> list[str]:
    rec = store.inode_of(store.head_object("bkt", key))
    return rec.links if rec is not None else []


async def test_links_share_one_identity_data_and_metadata(store: ObjectStore) -> None:
    await store.put_object("bkt", "a", b"data", PutMeta(user_meta={"mode": "33188"}))
    assert store.inode_of(store.head_object("bkt", "a")) is None
    v = await store.link_object("bkt", "a", "b", PutMeta(user_meta={"mode": "33188", "ctime": "2"}))
    assert v.key == "b" and v.inode and names(store, "a") == names(store, "b") == ["a", "b"]
    await store.link_object("bkt", "b", "dir/c", PutMeta(user_meta={"ctime": "3"}))
    for key in ("a", "b", "dir/c"):
        got = store.head_object("bkt", key)
        assert got.inode == v.inode and got.user_meta == {"ctime": "3"} and await read_all(store, "bkt", key) == b"data"
    with pytest.raises(PreconditionFailed):
        await store.link_object("bkt", "a", "b", PutMeta())
    with pytest.raises(NoSuchKey):
        await store.link_object("bkt", "missing", "x", PutMeta())

    # a write through the mount (meta.inode) reaches every name in one commit
    seg, summary = await store.write_segment(b"new content")
    assert seg is not None
    await store.put_object_segments("bkt", "b", [seg], summary.size, summary.md5, PutMeta(inode=v.inode),
                                    release_staged=[seg.segment_id])
    assert {await read_all(store, "bkt", k) for k in ("a", "b", "dir/c")} == {b"new content"}
    await store.update_meta("bkt", "a", PutMeta(user_meta={"mode": "33152"}, inode=v.inode))
    assert {store.head_object("bkt", k).user_meta["mode"] for k in ("a", "b", "dir/c")} == {"33152"}

    # a rename keeps the identity; a write without inode (an S3 PUT) takes the name out
    await store.rename_object("bkt", "dir/c", "dir/d", meta=PutMeta(user_meta={"ctime": "9"}))
    assert names(store, "a") == ["a", "b", "dir/d"]
    assert {store.head_object("bkt", k).user_meta.get("ctime") for k in ("a", "b", "dir/d")} == {"9"}
    await store.put_object("bkt", "b", b"replaced")
    assert names(store, "a") == ["a", "dir/d"] and store.inode_of(store.head_object("bkt", "b")) is None
    await store.copy_object(store.head_object("bkt", "a"), "bkt", "copy")  # a copy is a file of its own
    assert store.inode_of(store.head_object("bkt", "copy")) is None and names(store, "a") == ["a", "dir/d"]

    # unlink of one name updates the others; the last name removes the record
    assert await store.unlink_object("bkt", "a", PutMeta(user_meta={"ctime": "10"}, inode=v.inode)) == 1
    assert store.head_object("bkt", "dir/d").user_meta == {"ctime": "10"}
    await store.delete_object("bkt", "dir/d")
    assert store.get_inode("bkt", v.inode) is None


async def test_versioned_buckets_keep_links_in_step(store: ObjectStore) -> None:
    await store.set_versioning("bkt", "Enabled")
    await store.put_object("bkt", "a", b"x")
    v = await store.link_object("bkt", "a", "b", PutMeta())
    a = store.head_object("bkt", "a")
    await store.delete_object("bkt", "a", a.version_id)  # the current version goes: "a" is no name any more
    assert names(store, "b") == ["b"]
    assert store.inode_of(store.head_object("bkt", "a")) is None  # the older version is back, as a file
    await store.delete_object("bkt", "b")  # a delete marker
    assert store.get_inode("bkt", v.inode) is None


async def test_directory_times_in_place_and_subdirectory_counts(store: ObjectStore) -> None:
    await store.put_object("bkt", "d/", b"", PutMeta(user_meta={"mode": "16877"}))
    before = store.head_object("bkt", "d/")
    missing = await store.touch_markers("bkt", {"d/": {"mtime": "5", "ctime": "6"}, "implicit/": {"mtime": "1"}})
    after = store.head_object("bkt", "d/")
    assert missing == ["implicit/"] and after.user_meta == {"mode": "16877", "mtime": "5", "ctime": "6"}
    assert (after.version_id, after.last_modified_ns) == (before.version_id, before.last_modified_ns)
    for key in ("d/a/1", "d/a/2", "d/b/", "d/f", "d/.../x", "d/c/deep/er", "e/x"):
        await store.put_object("bkt", key, b"")
    assert store.count_common_prefixes("bkt", "d/", lambda name: name != "...") == 3
    assert store.count_common_prefixes("bkt", "", lambda name: True) == 2


async def test_key_lengths(store: ObjectStore) -> None:
    long_key = "k" * (S3_MAX_KEY_BYTES + 1)
    with pytest.raises(KeyTooLong):
        await store.put_object("bkt", long_key, b"s3 may not create it")
    with pytest.raises(KeyTooLong):
        await store.create_multipart("bkt", long_key)
    await store.put_object("bkt", long_key, b"the mount may", long_key=True)
    await store.put_object("bkt", long_key, b"and then S3 may overwrite it")
    await store.create_multipart("bkt", long_key)
    longest = "k" * MAX_KEY_BYTES
    await store.put_object("bkt", longest, b"", long_key=True)
    with pytest.raises(KeyTooLong):
        await store.put_object("bkt", longest + "k", b"", long_key=True)
    await store.rename_object("bkt", long_key, "r" * MAX_KEY_BYTES)
    assert await read_all(store, "bkt", "r" * MAX_KEY_BYTES) == b"and then S3 may overwrite it"

"""Completion records (engine/completions.py): a repeated CompleteMultipartUpload gets the same
version while it is current; the records expire and the GC pass removes them."""

from __future__ import annotations

import pytest

from appliance.engine import completions, keys
from appliance.engine.completions import COMPLETION_SECONDS
from appliance.engine.errors import NoSuchUpload
from appliance.engine.gc import expire_completions
from appliance.engine.objectstore import ObjectStore


async def _complete(store: ObjectStore, key: str = "mp") -> tuple[str, list[tuple[int, str]]]:
    up = await store.create_multipart("bkt", key)
    part = await store.upload_part("bkt", key, up.upload_id, 1, b"only part")
    parts = [(1, part.etag)]
    await store.complete_multipart("bkt", key, up.upload_id, parts)
    return up.upload_id, parts


async def test_repeat_returns_the_current_version(store: ObjectStore) -> None:
    uid, parts = await _complete(store)
    first = store.head_object("bkt", "mp")
    again = await store.complete_multipart("bkt", "mp", uid, [(1, f'"{parts[0][1]}"')])  # quoted ETags too
    assert (again.version_id, again.seq, again.etag) == (first.version_id, first.seq, first.etag)
    with pytest.raises(NoSuchUpload):  # not under another key
        await store.complete_multipart("bkt", "other", uid, parts)
    await store.set_tags("bkt", "mp", None, {"a": "1"})  # a subresource change keeps the version current
    assert (await store.complete_multipart("bkt", "mp", uid, parts)).seq == first.seq
    await store.put_object("bkt", "mp", b"newer")
    with pytest.raises(NoSuchUpload):
        await store.complete_multipart("bkt", "mp", uid, parts)


async def test_records_expire_and_are_swept(store: ObjectStore) -> None:
    uid, parts = await _complete(store)
    assert store.db.get(keys.completion(uid)) is not None
    assert await expire_completions(store) == 0  # not old enough
    assert store.db.get(keys.completion(uid)) is not None
    assert await expire_completions(store, older_than=0.0) == 1
    assert store.db.get(keys.completion(uid)) is None
    assert list(store.db.scan(keys.COMPLETION_EXPIRY)) == []
    with pytest.raises(NoSuchUpload):
        await store.complete_multipart("bkt", "mp", uid, parts)


async def test_an_expired_record_not_yet_swept_answers_nothing(store: ObjectStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    uid, parts = await _complete(store)
    real = completions.time.time_ns
    monkeypatch.setattr(completions.time, "time_ns", lambda: real() + int(COMPLETION_SECONDS * 1e9) + 1)
    with pytest.raises(NoSuchUpload):
        await store.complete_multipart("bkt", "mp", uid, parts)

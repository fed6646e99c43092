"""Listings: S3 order, prefixes and delimiters across pages, and seeks instead of full scans."""

from __future__ import annotations

import random

import pytest

from appliance.engine import keys, listing
from appliance.engine.records import ObjectVersion

from .conftest import read_all


def _fill(store, names: list[str]) -> None:
    b = store.db.batch()
    for i, name in enumerate(names):
        v = ObjectVersion("bkt", name, "null", i + 1, 0, size=1, etag="e")
        b.put(keys.latest("bkt", name), v)
    store.db.commit_now(b)


def _model(names: list[str], prefix: str, delimiter: str) -> list[tuple[str, str]]:
    """Reference: (kind, name) in S3 order, computed the naive way."""
    out: list[tuple[str, str]] = []
    seen = set()
    for n in sorted(names, key=lambda s: s.encode()):
        if not n.startswith(prefix):
            continue
        if delimiter and delimiter in n[len(prefix):]:
            cp = n[: n.index(delimiter, len(prefix)) + len(delimiter)]
            if cp not in seen:
                seen.add(cp)
                out.append(("p", cp))
            continue
        out.append(("k", n))
    return out


@pytest.mark.parametrize("entries", [False, True], ids=["list_objects", "list_entries"])
async def test_pagination_matches_model(store, entries: bool) -> None:
    rng = random.Random(5)
    alphabet = ["a", "b", "/", "é", "z", "-", "€", "0"]
    names = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(400)})
    _fill(store, names)
    for prefix in ["", "a", "b/", "é"]:
        for delimiter in ["", "/", "é"]:
            for page_size in [1, 3, 1000]:
                got: list[tuple[str, str]] = []
                marker = ""
                while True:
                    lister = store.list_entries if entries else store.list_objects
                    page = lister("bkt", prefix, delimiter, marker, page_size)
                    # entries and prefixes interleave in S3 order within a page
                    items = [("k", e.key) for e in page.entries] + [("p", p) for p in page.common_prefixes]
                    items.sort(key=lambda kv: kv[1].encode())
                    got += items
                    assert len(items) <= page_size
                    if not page.is_truncated:
                        break
                    marker = page.next_marker
                assert got == _model(names, prefix, delimiter), (prefix, delimiter, page_size)


class CountingDB:
    """Wraps MetaDB.iterator to count index entries the listing actually steps over."""

    def __init__(self, db) -> None:
        self.db = db
        self.steps = 0

    def iterator(self, start, stop):
        outer = self
        inner = self.db.iterator(start=start, stop=stop)

        class It:
            def __enter__(self):
                inner.__enter__()
                return self

            def __exit__(self, *a):
                return inner.__exit__(*a)

            def __iter__(self):
                return self

            def __next__(self):
                outer.steps += 1
                return next(inner)

            def seek(self, target):
                inner.seek(target)

        return It()

    def get(self, key):
        return self.db.get(key)


async def test_delimiter_listing_seeks_past_prefixes(store) -> None:
    """100,000 keys under 1,000 prefixes: one page reads about a page of index entries."""
    names = [f"dir{p:04d}/file{i:04d}" for p in range(1000) for i in range(100)]
    _fill(store, names)
    counting = CountingDB(store.db)
    page = listing.list_objects(counting, "bkt", "", "/", "", 1000)  # type: ignore[arg-type]
    assert len(page.common_prefixes) == 1000 and not page.is_truncated
    assert counting.steps <= 1001, counting.steps
    counting.steps = 0
    page = listing.list_objects(counting, "bkt", "dir0500/", "/", "", 1000)  # type: ignore[arg-type]
    assert len(page.entries) == 100
    assert counting.steps <= 101


async def test_version_marker_survives_the_deletion_of_its_version(store) -> None:  # type: ignore[no-untyped-def]
    """rclone's `backend cleanup-hidden` pages ListObjectVersions while it deletes what it has
    seen: the version named by NextVersionIdMarker may be gone when the next page is asked for.
    The next page must still start right after it (this was the root cause of a flaky
    tests/clients/test_rclone.py::test_versions: the oldest version was skipped, never deleted)."""
    await store.set_versioning("bkt", "Enabled")
    ids = [(await store.put_object("bkt", "v.txt", body)).version_id for body in (b"first", b"second", b"third")]
    first = store.list_versions("bkt", max_keys=2)
    assert [v.version_id for v, _ in first.entries] == [ids[2], ids[1]] and first.is_truncated
    await store.delete_object("bkt", "v.txt", first.next_version_id_marker)  # the marker's version goes
    rest = store.list_versions("bkt", key_marker=first.next_key_marker,
                               version_id_marker=first.next_version_id_marker, max_keys=2)
    assert [(v.version_id, latest) for v, latest in rest.entries] == [(ids[0], False)]
    # the deleted version itself stays gone for every other lookup
    from appliance.engine.errors import NoSuchVersion

    with pytest.raises(NoSuchVersion):
        store.head_object("bkt", "v.txt", ids[1])
    assert (await store.delete_object("bkt", "v.txt", ids[1])).version_id == ids[1]  # idempotent, as S3


async def test_version_markers_expire_but_a_reused_null_id_stays(store) -> None:  # type: ignore[no-untyped-def]
    from appliance.engine.gc import expire_version_markers

    await store.set_versioning("bkt", "Enabled")
    gone = (await store.put_object("bkt", "a", b"1")).version_id
    await store.put_object("bkt", "a", b"2")
    await store.delete_object("bkt", "a", gone)
    await store.set_versioning("bkt", "Suspended")
    await store.put_object("bkt", "n", b"1")
    await store.put_object("bkt", "n", b"2")  # replaces the null version: its old I key is reused
    assert store.db.get(keys.vid("bkt", "a", gone)) is not None
    assert await expire_version_markers(store, older_than=0) == 2
    assert store.db.get(keys.vid("bkt", "a", gone)) is None
    assert (await read_all(store, "bkt", "n", "null")) == b"2"
    assert list(store.db.scan(keys.VID_EXPIRY)) == []

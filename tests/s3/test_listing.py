"""Listings through boto3: v1 and v2 pagination, delimiters across page boundaries, encoding."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

KEYS = sorted([f"a/{i:03d}" for i in range(25)] + [f"b/{i}/x" for i in range(7)] + ["c", "d/e/f", "é", "z~", "Z"]
              + [f"p{i}/q" for i in range(5)], key=lambda k: k.encode())


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_v2_full_listing_in_byte_order_with_small_pages(s3: Any, filled: str) -> None:
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=filled, PaginationConfig={"PageSize": 4}))
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == KEYS
    assert len(pages) == -(-len(KEYS) // 4)
    assert all(p["KeyCount"] <= 4 for p in pages)
    first = pages[0]["Contents"][0]
    assert first["Size"] == len(first["Key"].encode())
    assert first["ETag"].startswith('"')


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
def test_delimiter_prefixes_across_pages(s3: Any, filled: str, page_size: int) -> None:
    keys: list[str] = []
    prefixes: list[str] = []
    for p in s3.get_paginator("list_objects_v2").paginate(Bucket=filled, Delimiter="/",
                                                         PaginationConfig={"PageSize": page_size}):
        keys += [o["Key"] for o in p.get("Contents", [])]
        prefixes += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
    assert keys == [k for k in KEYS if "/" not in k]
    assert prefixes == sorted({k.split("/")[0] + "/" for k in KEYS if "/" in k}, key=lambda s: s.encode())
    assert len(prefixes) == len(set(prefixes))


def test_prefix_and_nested_delimiter(s3: Any, filled: str) -> None:
    r = s3.list_objects_v2(Bucket=filled, Prefix="b/", Delimiter="/")
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == [f"b/{i}/" for i in range(7)]
    assert "Contents" not in r
    r = s3.list_objects_v2(Bucket=filled, Prefix="a/01")
    assert [o["Key"] for o in r["Contents"]] == [f"a/{i:03d}" for i in range(10, 20)]


def test_start_after_max_keys_fetch_owner(s3: Any, filled: str) -> None:
    r = s3.list_objects_v2(Bucket=filled, StartAfter="a/020", MaxKeys=3, FetchOwner=True)
    assert [o["Key"] for o in r["Contents"]] == ["a/021", "a/022", "a/023"]
    assert r["IsTruncated"] is True
    assert r["StartAfter"] == "a/020"
    assert "Owner" in r["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket=filled, MaxKeys=1)["Contents"][0]
    r = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert r["KeyCount"] == 0


def test_v1_marker_pagination(s3: Any, filled: str) -> None:
    keys = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=filled, PaginationConfig={"PageSize": 5})
            for o in p.get("Contents", [])]
    assert keys == KEYS
    r = s3.list_objects(Bucket=filled, Marker="c", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == [k for k in KEYS if k.encode() > b"c"][:2]
    assert r["IsTruncated"]
    r = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=3)
    assert r["IsTruncated"] and r["NextMarker"]


def test_a_marker_inside_a_common_prefix_skips_that_prefix(s3: Any, bucket: str) -> None:
    """AWS, as recorded in LocalStack's AWS-validated snapshots (and Ceph RGW): a marker that
    falls inside a common prefix means that prefix was listed already, so it is not listed
    again, even though keys under it sort after the marker."""
    for k in ("folder/aSubfolder/subFile1", "folder/aSubfolder/subFile2", "folder/file1", "folder/file2"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    inside, before = "folder/aSubfolder/subFile1", "folder/a"
    for marker, prefixes in ((inside, []), (before, ["folder/aSubfolder/"])):
        pages = [s3.list_objects(Bucket=bucket, Prefix="folder/", Delimiter="/", Marker=marker),
                 s3.list_objects_v2(Bucket=bucket, Prefix="folder/", Delimiter="/", StartAfter=marker),
                 s3.list_object_versions(Bucket=bucket, Prefix="folder/", Delimiter="/", KeyMarker=marker)]
        for r in pages:
            assert [c["Prefix"] for c in r.get("CommonPrefixes", [])] == prefixes, marker
            assert [o["Key"] for o in r.get("Contents", r.get("Versions", []))] == ["folder/file1", "folder/file2"]


def test_encoding_type_url_raw(raw: Any, s3: Any, bucket: str) -> None:
    odd = "sp ace/plus+amp&lt<\x01ctl"
    s3.put_object(Bucket=bucket, Key=odd, Body=b"x")
    status, _, body = raw.request("GET", f"/{bucket}?list-type=2&encoding-type=url")
    assert status == 200
    import xml.etree.ElementTree as ET

    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    root = ET.fromstring(body)
    assert root.findtext(f"{ns}EncodingType") == "url"
    key = root.findtext(f"{ns}Contents/{ns}Key") or ""
    # AWS's form, measured on S3: a space is "+", a plus "%2B" (botocore undoes it with unquote_plus)
    assert key.startswith("sp+ace/plus%2Bamp")
    assert unquote_plus(key) == odd
    # and boto3 (which asks for url encoding itself) gets the key back intact
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [odd]


def test_bad_listing_arguments(s3: Any, raw: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!!not-a-token")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    s3.put_object(Bucket=bucket, Key="k", Body=b"")
    # tokens that are no token given out, of which a lenient base64 decoder reads an empty marker
    # (it skips what is not in its alphabet) and lists from the start again: "k" twice for a pager
    for bad in ("****", "%%", "=", "a", "YQ", "YQ=", " YQ==", "YQ==\n", "YQ==!", "Y\u00e9Q=="):
        with pytest.raises(ClientError) as exc:
            s3.list_objects_v2(Bucket=bucket, ContinuationToken=bad)
        assert exc.value.response["Error"]["Code"] == "InvalidArgument", bad
    r = s3.list_objects_v2(Bucket=bucket, ContinuationToken="YQ==")  # "a", the form given out: a marker
    assert [o["Key"] for o in r["Contents"]] == ["k"]
    status, _, body = raw.request("GET", f"/{bucket}?list-type=2&max-keys=abc")
    assert status == 400 and b"InvalidArgument" in body
    status, _, body = raw.request("GET", f"/{bucket}?list-type=2&encoding-type=base64")
    assert status == 400 and b"InvalidArgument" in body


def test_raw_listing_escapes_each_page_that_needs_it(raw: Any, s3: Any, bucket: str) -> None:
    """Without encoding-type, a page's text is escaped when any of it needs escaping (a listing
    checks the whole page at once) and the fields match HEAD's: a page of plain keys, a page
    mixing them with keys holding markup, checksums and a storage class."""
    import xml.etree.ElementTree as ET

    plain = [f"plain/{i:02d}" for i in range(4)]
    odd = ["odd/a&b", "odd/c<d>e", "odd/quote\"'", "odd/ключ€"]
    for k in plain + odd:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    s3.put_object(Bucket=bucket, Key="odd/sum", Body=b"x", ChecksumAlgorithm="CRC32", StorageClass="STANDARD_IA")
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    for prefix, expect in (("plain/", plain), ("", sorted(plain + odd + ["odd/sum"], key=str.encode))):
        query = f"list-type=2&prefix={prefix.replace('/', '%2F')}&fetch-owner=true"
        status, _, body = raw.request("GET", f"/{bucket}?{query}")
        assert status == 200
        contents = ET.fromstring(body).findall(f"{ns}Contents")
        assert [c.findtext(f"{ns}Key") for c in contents] == expect
        for c in contents:
            head = s3.head_object(Bucket=bucket, Key=c.findtext(f"{ns}Key"))
            assert c.findtext(f"{ns}ETag") == head["ETag"]
            assert int(c.findtext(f"{ns}Size") or -1) == head["ContentLength"]
            modified = head["LastModified"].strftime("%Y-%m-%dT%H:%M:%S")
            assert (c.findtext(f"{ns}LastModified") or "").startswith(modified)
            assert c.findtext(f"{ns}StorageClass") == head.get("StorageClass", "STANDARD")
            assert c.find(f"{ns}Owner") is not None
    r = s3.list_objects_v2(Bucket=bucket, Prefix="odd/sum")["Contents"][0]
    assert (r["ChecksumAlgorithm"], r["StorageClass"]) == (["CRC32"], "STANDARD_IA")

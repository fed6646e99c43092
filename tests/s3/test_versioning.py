"""Versioning through boto3: versions, delete markers, versionId on GET/HEAD/DELETE/copy,
ListObjectVersions with its markers, and the null version when suspended."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_versions_and_delete_markers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["VersionId"] == v1
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(exc) == "NoSuchKey"
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker") == "true"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId="N" * 32)  # our ids' shape, but none of them
    assert code(exc) == "NoSuchVersion"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v2)["Body"].read() == b"two"
    # removing the marker brings the object back
    r = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert r["DeleteMarker"] is True and r["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


def test_a_version_id_that_cannot_be_ours_is_invalid_not_missing(s3: Any, bucket: str) -> None:
    """AWS answers a version id it could not have issued 400 InvalidArgument, one it could have
    but does not hold 404 NoSuchVersion. Ours are "null" or 32 characters of base64url."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    assert len(vid) == 32
    for bogus in ("bogus", vid[:-1], vid + "A", vid[:-1] + "."):
        for op in ("get_object", "head_object", "delete_object", "get_object_tagging"):
            with pytest.raises(ClientError) as exc:
                getattr(s3, op)(Bucket=bucket, Key="k", VersionId=bogus)
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, (bogus, op)
            if op != "head_object":  # (a HEAD answer has no body to name the error)
                assert code(exc) == "InvalidArgument"
                assert exc.value.response["Error"]["Message"] == "Invalid version id specified"
    with pytest.raises(ClientError) as exc:  # "null" is valid: there is no null version of k
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")
    assert code(exc) == "NoSuchVersion"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=vid)["Body"].read() == b"one"
    # the same for a copy source's versionId and a ListObjectVersions version-id-marker
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    bad_source = {"Bucket": bucket, "Key": "k", "VersionId": "bogus"}
    calls = [lambda: s3.copy_object(Bucket=bucket, Key="c", CopySource=bad_source),
             lambda: s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, CopySource=bad_source),
             lambda: s3.list_object_versions(Bucket=bucket, KeyMarker="k", VersionIdMarker="bogus")]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "InvalidArgument"
        assert exc.value.response["Error"]["Message"] == "Invalid version id specified"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k", "VersionId": "N" * 32})
    assert code(exc) == "NoSuchVersion"
    # a well-formed marker that names no version: the listing resumes after the key
    assert "Versions" not in s3.list_object_versions(Bucket=bucket, KeyMarker="k", VersionIdMarker="N" * 32)


def test_list_object_versions_with_markers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    made: dict[str, list[str]] = {}
    for key in ["a", "b", "c/d"]:
        for i in range(3):
            made.setdefault(key, []).append(s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{i}".encode())
                                            ["VersionId"])
    s3.delete_object(Bucket=bucket, Key="b")
    r = s3.list_object_versions(Bucket=bucket)
    versions = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in r["Versions"]]
    assert [k for k, _, _ in versions] == ["a"] * 3 + ["b"] * 3 + ["c/d"] * 3
    assert [vid for k, vid, _ in versions if k == "a"] == made["a"][::-1]  # newest first
    assert [latest for k, _, latest in versions if k == "a"] == [True, False, False]
    assert [latest for k, _, latest in versions if k == "b"] == [False, False, False]
    assert [(m["Key"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [("b", True)]
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    assert sorted(seen) == sorted([(k, v) for k, v, _ in versions] + [("b", r["DeleteMarkers"][0]["VersionId"])])
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == ["c/"]
    r = s3.list_object_versions(Bucket=bucket, KeyMarker="a", MaxKeys=1)
    assert r["IsTruncated"]
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker="x")
    assert code(exc) == "InvalidArgument"


def test_suspended_null_version(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="n", Body=b"pre")  # unversioned: the null version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v = s3.put_object(Bucket=bucket, Key="n", Body=b"versioned")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="n", VersionId="null")["Body"].read() == b"pre"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    r = s3.put_object(Bucket=bucket, Key="n", Body=b"suspended")
    assert r.get("VersionId") == "null"
    vids = [x["VersionId"] for x in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert sorted(vids) == sorted(["null", v])  # the null version was replaced, not added
    assert s3.get_object(Bucket=bucket, Key="n", VersionId="null")["Body"].read() == b"suspended"
    assert s3.get_object(Bucket=bucket, Key="n", VersionId=v)["Body"].read() == b"versioned"


def test_copy_from_version_and_delete_objects_with_versions(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="s", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="s", Body=b"second")
    r = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "s", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"first"
    d = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "s", "VersionId": v1}, {"Key": "copy"}]})
    got = {x["Key"]: x for x in d["Deleted"]}
    assert got["s"]["VersionId"] == v1
    assert got["copy"]["DeleteMarker"] is True and got["copy"]["DeleteMarkerVersionId"]
    marker = got["copy"]["DeleteMarkerVersionId"]  # deleting the marker by its id names it too
    d = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "copy", "VersionId": marker}]})
    assert d["Deleted"] == [{"Key": "copy", "VersionId": marker, "DeleteMarker": True,
                             "DeleteMarkerVersionId": marker}]
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"first"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="s", VersionId=v1)
    assert code(exc) == "NoSuchVersion"


def test_tagging_versions_in_place(s3: Any, bucket: str) -> None:
    """Tags are a subresource: setting them creates no version and keeps Last-Modified."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="t", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="t", Body=b"two")["VersionId"]
    before = s3.head_object(Bucket=bucket, Key="t")["LastModified"]
    r = s3.put_object_tagging(Bucket=bucket, Key="t", VersionId=v1, Tagging={"TagSet": [{"Key": "old", "Value": "1"}]})
    assert r["VersionId"] == v1
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "new", "Value": "2"}]})
    versions = s3.list_object_versions(Bucket=bucket, Prefix="t")["Versions"]
    assert [v["VersionId"] for v in versions] == [v2, v1]
    assert s3.head_object(Bucket=bucket, Key="t")["LastModified"] == before
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)["TagSet"] == [{"Key": "old", "Value": "1"}]
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "new", "Value": "2"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t", VersionId=v1)
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="t", VersionId=v1)["Body"].read() == b"one"

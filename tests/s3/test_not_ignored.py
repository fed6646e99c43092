"""Request parameters AWS documents that the gateway does not implement are refused, never
accepted and ignored: each case here was once answered 200 with the parameter dropped."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import Raw, error_code


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return int(r["ResponseMetadata"]["HTTPStatusCode"]), str(r["Error"]["Code"])


@pytest.mark.parametrize("condition", [{"Size": 4}, {"LastModifiedTime": "2020-01-01T00:00:00Z"}],
                         ids=["Size", "LastModifiedTime"])
def test_conditional_delete_objects_is_refused_and_deletes_nothing(s3: Any, bucket: str,
                                                                   condition: dict[str, Any]) -> None:
    """An Object's Size or LastModifiedTime in DeleteObjects makes its deletion conditional
    (AWS: directory buckets only): the gateway does not evaluate them, so it must not delete
    unconditionally. (Its ETag is evaluated: test_conditional_deletes.py.)"""
    s3.put_object(Bucket=bucket, Key="keep", Body=b"kept")
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other"}, {"Key": "keep", **condition}]})
    assert _code(exc) == (501, "NotImplemented")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["keep", "other"]


def test_response_overrides_are_refused_on_anonymous_requests(s3: Any, raw: Raw, bucket: str) -> None:
    """As on AWS, response-* overrides are for signed (or presigned) requests: an unsigned link
    cannot make a public object answer with a Content-Type of its author's choosing."""
    s3.put_object(Bucket=bucket, Key="pub", Body=b"<b>hi</b>", ContentType="text/plain", ACL="public-read")
    status, headers, _ = raw.request("GET", f"/{bucket}/pub", sign=False)
    assert (status, headers["content-type"]) == (200, "text/plain")
    for method in ("GET", "HEAD"):
        status, headers, body = raw.request(method, f"/{bucket}/pub?response-content-type=text%2Fhtml", sign=False)
        assert status == 400
        assert "text/html" not in headers.get("content-type", "")
        if method == "GET":
            assert error_code(body) == "InvalidRequest"
    # signed, the override applies
    got = s3.get_object(Bucket=bucket, Key="pub", ResponseContentType="text/html")
    assert got["ContentType"] == "text/html"


LIFECYCLE = {"Rules": [{"ID": "r", "Filter": {}, "Status": "Enabled",
                        "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]}


def test_transition_minimum_size_other_than_the_default_is_refused(s3: Any, bucket: str) -> None:
    """x-amz-transition-default-minimum-object-size: varies_by_storage_class would move objects
    under 128 KiB to GLACIER; this store keeps only the default, so the other value is refused."""
    r = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=LIFECYCLE,
                                              TransitionDefaultMinimumObjectSize="all_storage_classes_128K")
    assert r["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=LIFECYCLE,
                                              TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    assert _code(exc) == (501, "NotImplemented")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert _code(exc) == (404, "NoSuchLifecycleConfiguration")
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=LIFECYCLE,
                                              TransitionDefaultMinimumObjectSize="everything_1K")
    assert _code(exc) == (400, "InvalidArgument")


OTHER_ALGORITHMS = ["sha512", "md5", "xxhash64", "xxhash3", "xxhash128"]


@pytest.mark.parametrize("alg", OTHER_ALGORITHMS)
def test_checksums_of_algorithms_not_computed_are_refused(s3: Any, raw: Raw, bucket: str, alg: str) -> None:
    """A checksum header asks for an integrity check: one of an algorithm the gateway does not
    compute is refused as an unsupported algorithm, never stored without the check."""
    wrong = {f"x-amz-checksum-{alg}": "AAAAAAAAAAAAAAAAAAAAAA=="}
    status, _, body = raw.request("PUT", f"/{bucket}/k", b"data", wrong)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    up = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    status, _, body = raw.request("PUT", f"/{bucket}/m?partNumber=1&uploadId={up}", b"part", wrong)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    assert "Parts" not in s3.list_parts(Bucket=bucket, Key="m", UploadId=up)
    etag = s3.upload_part(Bucket=bucket, Key="m", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    done = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>"
            "</CompleteMultipartUpload>").encode()
    status, _, body = raw.request("POST", f"/{bucket}/m?uploadId={up}", done, wrong)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    # nor a part's checksum of such an algorithm in the completion's document
    listed = done.replace(b"</ETag>", f"</ETag><Checksum{alg.upper()}>AAAAAAAAAAA=</Checksum{alg.upper()}>".encode())
    status, _, body = raw.request("POST", f"/{bucket}/m?uploadId={up}", listed)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=up)


@pytest.mark.parametrize("header", ["x-amz-object-lock-event-hold", "x-amz-object-lock-event-hold-duration-days",
                                    "x-amz-object-lock-event-hold-duration-years"])
def test_event_holds_are_refused(s3: Any, raw: Raw, bucket: str, header: str) -> None:
    """An Object Lock event hold is a promise to keep the object: a write asking for one is not
    stored without it (s3gw/refusedheaders.py)."""
    status, _, body = raw.request("PUT", f"/{bucket}/held", b"data", {header: "ON" if header.endswith("hold") else "1"})
    assert (status, error_code(body)) == (501, "NotImplemented")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_conditional_abort_is_refused_and_the_upload_kept(s3: Any, raw: Raw, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    status, _, body = raw.request("DELETE", f"/{bucket}/m?uploadId={up}", b"",
                                  {"x-amz-if-match-initiated-time": "Wed, 01 Jan 2020 00:00:00 GMT"})
    assert (status, error_code(body)) == (501, "NotImplemented")
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [up]


def test_account_regional_bucket_namespace_is_refused(s3: Any, raw: Raw) -> None:
    """CreateBucket in an account regional namespace (its own naming rules) is not implemented:
    refused, not created as an ordinary bucket; the global namespace is what every bucket is in."""
    name = "ns-refused-111122223333-us-east-1-an"
    status, _, body = raw.request("PUT", f"/{name}", b"", {"x-amz-bucket-namespace": "account-regional"})
    assert (status, error_code(body)) == (501, "NotImplemented")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    status, _, _ = raw.request("PUT", "/ns-global-ok", b"", {"x-amz-bucket-namespace": "global"})
    assert status == 200
    s3.delete_bucket(Bucket="ns-global-ok")


def test_replication_filter_exclusions_are_refused(s3d: Any, s3: Any, bucket: str) -> None:
    """A replication Filter's Not excludes prefixes and tags; stored without it, the rule would
    replicate exactly what the owner kept out."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=f"{bucket}-dst")
    s3.put_bucket_versioning(Bucket=f"{bucket}-dst", VersioningConfiguration={"Status": "Enabled"})
    s3d.cli("replication", "target", "add", "self", "--endpoint", s3d.endpoint, "--access-key", s3d.access_key,
            "--secret-key", s3d.secret_key, "--kind", "stowage")
    rule = {"ID": "r", "Priority": 1, "Status": "Enabled", "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:stowage:s3::self:{bucket}-dst"}}
    config = {"Role": "", "Rules": [{**rule, "Filter": {"Prefix": "public/"}}]}
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=config)  # the target is good
    s3.delete_bucket_replication(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
            "Role": "", "Rules": [{**rule, "Filter": {"Not": {"Prefix": "private/"}}}]})
    assert _code(exc) == (501, "NotImplemented")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_replication(Bucket=bucket)
    assert _code(exc)[1] == "ReplicationConfigurationNotFoundError"


@pytest.mark.parametrize("event", ["s3:IntelligentTiering", "s3:ObjectRestore:Delete"])
def test_notification_events_never_emitted_are_refused(s3d: Any, s3: Any, bucket: str, tmp_path: Any,
                                                       event: str) -> None:
    """Event types whose cause happens here (archive tier moves, restored copies expiring) but
    that are never emitted: a configuration naming one is refused, not saved to stay silent."""
    name = "never-" + event.rsplit(":", 1)[-1].lower()
    s3d.cli("notify", "target", "add", name, "--type", "file", "--path", str(tmp_path / "events.jsonl"))
    arn = f"arn:stowage:sqs::{name}:file"
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectRestore:*"]}]})  # the target is good
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": [event]}]})
    assert _code(exc) == (501, "NotImplemented")
    got = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert [c["Events"] for c in got] == [["s3:ObjectRestore:*"]]


def test_object_lock_event_holds_in_documents_are_refused(s3: Any, bucket: str) -> None:
    """A DefaultEventHold in the bucket's default retention and an EventHold (or its duration) in
    PutObjectRetention were accepted and ignored; a Retention holding only EventHold read as
    "remove the retention", and removed it."""
    locked = f"{bucket}-lock"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    v = s3.put_object(Bucket=locked, Key="k", Body=b"kept", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate="2099-01-01T00:00:00Z")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "DefaultEventHold": {"Days": 3}}}})
    assert _code(exc) == (501, "NotImplemented")
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    later = {"Mode": "GOVERNANCE", "RetainUntilDate": "2099-06-01T00:00:00Z"}
    for retention in ({"EventHold": "ON"}, {"EventHold": "OFF"}, {**later, "EventHoldDuration": {"Days": 2}}):
        with pytest.raises(ClientError) as exc:
            s3.put_object_retention(Bucket=locked, Key="k", VersionId=v, Retention=retention,
                                    BypassGovernanceRetention=True)
        assert _code(exc) == (501, "NotImplemented"), retention
    kept = s3.get_object_retention(Bucket=locked, Key="k", VersionId=v)["Retention"]
    assert kept["Mode"] == "GOVERNANCE" and kept["RetainUntilDate"].year == 2099
    assert kept["RetainUntilDate"].month == 1

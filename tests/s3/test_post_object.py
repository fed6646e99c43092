"""POST Object (browser-form uploads) against the real daemon: boto3's generate_presigned_post
and hand-made forms sent with `requests` and raw sockets; policy conditions, signatures, the
success answers, authorization as the signer, and AWS's error for every kind of broken form."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from s3gw.sigv4 import signing_key
from tests.s3.conftest import error_code


def _amz_now() -> tuple[str, str]:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")


def signed_form(access_key: str, secret: str, conditions: list[Any], fields: dict[str, str] | None = None, *,
                expires: timedelta = timedelta(minutes=10), region: str = "us-east-1") -> dict[str, str]:
    """A SigV4-signed form: `fields`, the signature fields, and a policy over `conditions`
    (which the signature fields are added to, as boto3 adds them)."""
    amz_date, day = _amz_now()
    credential = f"{access_key}/{day}/{region}/s3/aws4_request"
    sig_fields = {"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential, "x-amz-date": amz_date}
    expiration = (datetime.now(UTC) + expires).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    doc = {"expiration": expiration, "conditions": [*conditions, *({k: v} for k, v in sig_fields.items())]}
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    signature = hmac.new(signing_key(secret, day, region, "s3"), policy.encode(), hashlib.sha256).hexdigest()
    return {**(fields or {}), **sig_fields, "policy": policy, "x-amz-signature": signature}


def post(d: Any, bucket: str, fields: dict[str, str], data: bytes = b"hello", filename: str = "hello.txt",
         **kw: Any) -> requests.Response:
    return requests.post(f"{d.endpoint}/{bucket}", data=fields, files={"file": (filename, data)},
                         allow_redirects=False, timeout=60, **kw)


def multipart(fields: list[tuple[str, bytes]], boundary: str = "XyZb0und") -> tuple[bytes, dict[str, str]]:
    """A hand-built form body, for what `requests` will not send (order, encodings, damage)."""
    out = bytearray()
    for name, value in fields:
        disposition = f'form-data; name="{name}"' + ('; filename="f.bin"' if name == "file" else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_presigned_post_from_boto3(s3d: Any, s3: Any, bucket: str) -> None:
    conditions = [["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1 << 20],
                  {"success_action_status": "201"}, ["starts-with", "$Content-Type", "text/"],
                  {"x-amz-meta-colour": "blue"}, ["starts-with", "$tagging", ""]]
    fields = {"success_action_status": "201", "Content-Type": "text/plain", "x-amz-meta-colour": "blue",
              "tagging": "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"}
    p = s3.generate_presigned_post(bucket, "uploads/${filename}", Fields=fields, Conditions=conditions,
                                   ExpiresIn=600)
    r = requests.post(p["url"], data=p["fields"], files={"file": ("notes.txt", b"some notes")}, timeout=60)
    assert r.status_code == 201, r.text
    assert "<Key>uploads/notes.txt</Key>" in r.text and f"<Bucket>{bucket}</Bucket>" in r.text
    assert r.headers["ETag"] == f'"{hashlib.md5(b"some notes").hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="uploads/notes.txt")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"colour": "blue"}
    assert s3.get_object_tagging(Bucket=bucket, Key="uploads/notes.txt")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.get_object(Bucket=bucket, Key="uploads/notes.txt")["Body"].read() == b"some notes"


def test_success_answers(s3d: Any, s3: Any, bucket: str) -> None:
    ak, sk = s3d.access_key, s3d.secret_key
    form = signed_form(ak, sk, [{"bucket": bucket}, {"key": "a"}], {"key": "a"})
    r = post(s3d, bucket, form)
    assert r.status_code == 204 and r.content == b"" and r.headers["Location"].endswith(f"/{bucket}/a")
    form = signed_form(ak, sk, [{"key": "b"}, {"success_action_status": "200"}],
                       {"key": "b", "success_action_status": "200"})
    assert post(s3d, bucket, form).status_code == 200
    form = signed_form(ak, sk, [{"key": "c"}, {"success_action_status": "404"}],
                       {"key": "c", "success_action_status": "404"})
    assert post(s3d, bucket, form).status_code == 204  # any other value: the default
    target = "https://app.example.com/done?x=1"
    form = signed_form(ak, sk, [{"key": "d"}, {"success_action_redirect": target}],
                       {"key": "d", "success_action_redirect": target})
    r = post(s3d, bucket, form, b"redirected")
    assert r.status_code == 303
    loc = urlsplit(r.headers["Location"])
    assert loc.netloc == "app.example.com" and loc.path == "/done"
    q = parse_qs(loc.query)
    assert q["bucket"] == [bucket] and q["key"] == ["d"] and q["x"] == ["1"]
    assert q["etag"] == [f'"{hashlib.md5(b"redirected").hexdigest()}"']


def test_large_file_streams(s3d: Any, s3: Any, bucket: str) -> None:
    data = os.urandom(12 * 1024 * 1024 + 17)
    form = signed_form(s3d.access_key, s3d.secret_key, [{"key": "big"}, ["content-length-range", 0, 1 << 30]],
                       {"key": "big"})
    r = post(s3d, bucket, form, data)
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data
    # fields after the file are ignored, as AWS ignores them
    body, headers = multipart([(k, v.encode()) for k, v in form.items()] + [("file", b"xyz"),
                                                                            ("x-amz-meta-late", b"no")])
    r = requests.post(f"{s3d.endpoint}/{bucket}", data=body, headers=headers, timeout=60)
    assert r.status_code == 204, r.text
    assert s3.head_object(Bucket=bucket, Key="big")["Metadata"] == {}


def _refused(r: requests.Response, status: int, code: str, words: str = "") -> None:
    assert r.status_code == status, r.text
    assert error_code(r.content) == code, r.text
    assert words in r.text, r.text


def test_policy_conditions(s3d: Any, s3: Any, bucket: str) -> None:
    ak, sk = s3d.access_key, s3d.secret_key
    conditions = [["starts-with", "$key", "in/"], ["content-length-range", 3, 10], {"acl": "private"}]
    ok = {"key": "in/x", "acl": "private"}
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, {**ok, "key": "out/x"})), 403, "AccessDenied",
             "Policy Condition failed")
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, {**ok, "acl": "public-read"})), 403,
             "AccessDenied", "Policy Condition failed")
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, {**ok, "x-amz-meta-extra": "1"})), 403,
             "AccessDenied", "Extra input fields: x-amz-meta-extra")
    _refused(post(s3d, bucket, signed_form(ak, sk, [*conditions, {"bucket": "other"}], ok)), 403, "AccessDenied",
             "Policy Condition failed")
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, ok, expires=timedelta(seconds=-5))), 403,
             "AccessDenied", "Policy expired")
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, ok), b"x" * 11), 400, "EntityTooLarge")
    _refused(post(s3d, bucket, signed_form(ak, sk, conditions, ok), b"xy"), 400, "EntityTooSmall")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="in/x")
    assert post(s3d, bucket, signed_form(ak, sk, conditions, {**ok, "x-ignore-me": "1"}), b"xyz").status_code == 204
    assert s3.get_object(Bucket=bucket, Key="in/x")["Body"].read() == b"xyz"


def test_signature_errors(s3d: Any, bucket: str) -> None:
    ak, sk = s3d.access_key, s3d.secret_key
    good = signed_form(ak, sk, [{"key": "s"}], {"key": "s"})
    _refused(post(s3d, bucket, {**good, "x-amz-signature": "0" * 64}), 403, "SignatureDoesNotMatch")
    _refused(post(s3d, bucket, signed_form(ak, "wrong-secret", [{"key": "s"}], {"key": "s"})), 403,
             "SignatureDoesNotMatch")
    _refused(post(s3d, bucket, signed_form("AKIDNOSUCHKEY", sk, [{"key": "s"}], {"key": "s"})), 403,
             "InvalidAccessKeyId")
    _refused(post(s3d, bucket, signed_form(ak, sk, [{"key": "s"}], {"key": "s"}, region="eu-west-1")), 400,
             "AuthorizationQueryParametersError")
    for missing in ("x-amz-signature", "x-amz-credential", "x-amz-algorithm", "x-amz-date", "policy"):
        form = {k: v for k, v in good.items() if k != missing}
        _refused(post(s3d, bucket, form), 400, "InvalidArgument", "must contain a field named")
    _refused(post(s3d, bucket, {**good, "x-amz-algorithm": "AWS4-HMAC-SHA1"}), 400, "InvalidArgument")
    _refused(post(s3d, bucket, {**good, "x-amz-date": "yesterday"}), 400, "InvalidArgument")
    bad_policy = base64.b64encode(b"{not json").decode()
    day = _amz_now()[1]
    sig = hmac.new(signing_key(sk, day, "us-east-1", "s3"), bad_policy.encode(), hashlib.sha256).hexdigest()
    _refused(post(s3d, bucket, {**good, "policy": bad_policy, "x-amz-signature": sig}), 400,
             "InvalidPolicyDocument")
    sig = hmac.new(signing_key(sk, day, "us-east-1", "s3"), b"%%%", hashlib.sha256).hexdigest()
    _refused(post(s3d, bucket, {**good, "policy": "%%%", "x-amz-signature": sig}), 400, "InvalidPolicyDocument")
    no_expiry = base64.b64encode(json.dumps({"conditions": []}).encode()).decode()
    sig = hmac.new(signing_key(sk, day, "us-east-1", "s3"), no_expiry.encode(), hashlib.sha256).hexdigest()
    _refused(post(s3d, bucket, {**good, "policy": no_expiry, "x-amz-signature": sig}), 400, "InvalidPolicyDocument")


def test_broken_forms(s3d: Any, bucket: str) -> None:
    url = f"{s3d.endpoint}/{bucket}"
    good = signed_form(s3d.access_key, s3d.secret_key, [{"key": "b"}], {"key": "b"})
    # no file / no key
    _refused(requests.post(url, files={k: (None, v) for k, v in good.items()}, timeout=30), 400, "InvalidArgument",
             "exactly one file")
    no_key = signed_form(s3d.access_key, s3d.secret_key, [], {})
    _refused(post(s3d, bucket, no_key), 400, "InvalidArgument", "field named 'key'")
    # not a form, a form without a boundary, a body that is not the form it claims to be
    _refused(requests.post(url, data=b"key=x", headers={"Content-Type": "application/x-www-form-urlencoded"},
                           timeout=30), 412, "PreconditionFailed")
    _refused(requests.post(url, data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}, timeout=30), 400,
             "MalformedPOSTRequest")
    _refused(requests.post(url, data=b"garbage" * 100, headers={"Content-Type": "multipart/form-data; boundary=zz"},
                           timeout=30), 400, "MalformedPOSTRequest")
    body, headers = multipart([(k, v.encode()) for k, v in good.items()] + [("file", b"data")])
    _refused(requests.post(url, data=body[: len(body) - 30], headers=headers, timeout=30), 400, "IncompleteBody")
    # a part without a name; a field twice; a field that is not UTF-8
    bad = body.replace(b'name="key"', b'nome="key"', 1)
    _refused(requests.post(url, data=bad, headers=headers, timeout=30), 400, "MalformedPOSTRequest")
    twice, headers = multipart([("key", b"a"), ("key", b"b"), ("file", b"x")])
    _refused(requests.post(url, data=twice, headers=headers, timeout=30), 400, "InvalidArgument")
    latin, headers = multipart([("key", b"caf\xe9"), ("file", b"x")])
    _refused(requests.post(url, data=latin, headers=headers, timeout=30), 400, "InvalidArgument", "UTF-8")


def test_huge_fields_are_refused_before_the_file(s3d: Any, bucket: str) -> None:
    url = f"{s3d.endpoint}/{bucket}"
    body, headers = multipart([("key", b"k"), ("x-amz-meta-pad", b"p" * 30_000), ("file", b"x")])
    _refused(requests.post(url, data=body, headers=headers, timeout=30), 400, "MaxPostPreDataLengthExceeded")
    # very many small fields count too (their part headers with them)
    many, headers = multipart([(f"x-ignore-{i}", b"") for i in range(2000)] + [("file", b"x")])
    _refused(requests.post(url, data=many, headers=headers, timeout=30), 400, "MaxPostPreDataLengthExceeded")
    long_name = "n" * 25_000  # one part header this long: python-multipart's own cap refuses it as malformed
    body, headers = multipart([(long_name, b"v"), ("file", b"x")])
    _refused(requests.post(url, data=body, headers=headers, timeout=30), 400, "MalformedPOSTRequest")
    boundary = "b" * 200  # RFC 2046 allows 70 characters
    body, headers = multipart([("key", b"k"), ("file", b"x")], boundary=boundary)
    _refused(requests.post(url, data=body, headers=headers, timeout=30), 400, "MalformedPOSTRequest")


def test_authorized_as_the_signer(s3d: Any, s3: Any, bucket: str, tmp_path: Any) -> None:
    # anonymous: refused by a private bucket, accepted where a bucket policy lets anyone write
    body, headers = multipart([("key", b"anon"), ("file", b"x")])
    _refused(requests.post(f"{s3d.endpoint}/{bucket}", data=body, headers=headers, timeout=30), 403, "AccessDenied")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/drop/*"}]}))
    body, headers = multipart([("key", b"drop/anon"), ("file", b"dropped")])
    assert requests.post(f"{s3d.endpoint}/{bucket}", data=body, headers=headers, timeout=30).status_code == 204
    assert s3.get_object(Bucket=bucket, Key="drop/anon")["Body"].read() == b"dropped"
    # a user allowed to read only: a form it signs cannot write, however valid
    reader = json.loads(s3d.cli("user", "add", "post-reader", "--policy", "readonly", "--json").stdout)
    form = signed_form(reader["access_key"], reader["secret_key"], [{"key": "r"}], {"key": "r"})
    _refused(post(s3d, bucket, form), 403, "AccessDenied")
    # ... and a user who may write, can
    writer = json.loads(s3d.cli("user", "add", "post-writer", "--policy", "readwrite", "--json").stdout)
    form = signed_form(writer["access_key"], writer["secret_key"], [{"key": "w"}], {"key": "w"})
    assert post(s3d, bucket, form).status_code == 204
    # a header-signed POST to the bucket is not how a form upload authenticates
    from tests.s3.conftest import Raw

    body, headers = multipart([("key", b"h"), ("file", b"x")])
    status, _, answer = Raw(s3d).request("POST", f"/{bucket}", body, headers)
    assert status == 400 and error_code(answer) == "InvalidRequest"

"""Hostile values in fields the gateway parses (found by fuzzing the real daemon): numbers that
`str.isdigit()` takes and `int()` refuses, dates whose conversion to UTC overflows, XML that
names an encoding that is not one, nesting that exhausts the recursion limit, values a response
header cannot carry, and bucket subresources sent to an object. Each gets its S3 error (or is
ignored, where AWS ignores it), never a 500 or a connection closed without an answer, and no
request of them changes an object."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from email.header import decode_header, make_header
from typing import Any

import pytest

from s3gw.xmlio import NS
from tests.s3.conftest import error_code
from tests.s3.test_post_object import multipart, signed_form

SUP2 = "\u00b2"  # SUPERSCRIPT TWO: str.isdigit() is true, int() raises ValueError


def _expect(got: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    assert got[0] == status, got
    assert error_code(got[2]) == code, got


def test_dates_past_year_9999_in_utc_are_refused_not_500(raw: Any, bucket: str) -> None:
    """No credentials needed: the date is read before the key is looked up."""
    late = "Fri, 31 Dec 9999 23:59:59 -1400"
    v4 = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/s3/aws4_request, "
          f"SignedHeaders=date;host, Signature={'0' * 64}")
    for auth in (v4, "AWS AKIDEXAMPLE:c2lnbmF0dXJl"):
        status, _, body = raw.request("GET", f"/{bucket}", headers={"Date": late, "Authorization": auth},
                                      sign=False)
        assert status == 403 and error_code(body) in ("AccessDenied", "InvalidAccessKeyId"), body
    status, _, body = raw.request("GET", f"/{bucket}", sign=False, headers={
        "x-amz-date": late, "Authorization": "AWS AKIDEXAMPLE:c2lnbmF0dXJl"})
    assert status == 403, body


def test_sigv2_query_expires_must_be_ascii_digits(raw: Any, bucket: str) -> None:
    for expires in ("%C2%B2", "1_0", "9" * 5000):
        status, _, body = raw.request(
            "GET", f"/{bucket}?AWSAccessKeyId=AKIDEXAMPLE&Expires={expires}&Signature=abc", sign=False)
        assert (status, error_code(body)) == (403, "AccessDenied"), body


@pytest.mark.parametrize("encoding", ["bogus", "rot13", "base64", "zlib_codec", "utf-7"])
def test_xml_naming_a_non_text_encoding_is_malformed(raw: Any, bucket: str, encoding: str) -> None:
    body = f'<?xml version="1.0" encoding="{encoding}"?><Tagging><TagSet/></Tagging>'.encode()
    _expect(raw.request("PUT", f"/{bucket}?tagging", body), 400, "MalformedXML")


@pytest.mark.parametrize(("query", "doc"), [
    ("lifecycle", "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>"
                  "<Status>Enabled</Status><Expiration><Days>{n}</Days></Expiration></Rule>"
                  "</LifecycleConfiguration>"),
    ("cors", "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
             "<MaxAgeSeconds>{n}</MaxAgeSeconds></CORSRule></CORSConfiguration>"),
    ("intelligent-tiering&id=t", "<IntelligentTieringConfiguration><Id>t</Id><Status>Enabled</Status>"
                                 "<Tiering><Days>{n}</Days><AccessTier>ARCHIVE_ACCESS</AccessTier></Tiering>"
                                 "</IntelligentTieringConfiguration>"),
])
def test_xml_numbers_must_be_ascii_digits(raw: Any, bucket: str, query: str, doc: str) -> None:
    for n in (SUP2, "9" * 5000):
        _expect(raw.request("PUT", f"/{bucket}?{query}", doc.format(n=n).encode()), 400, "MalformedXML")


def test_restore_days_must_be_ascii_digits(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = f"<RestoreRequest><Days>{SUP2}</Days></RestoreRequest>".encode()
    _expect(raw.request("POST", f"/{bucket}/k?restore", body), 400, "MalformedXML")


def test_lifecycle_date_that_overflows_in_utc(raw: Any, bucket: str) -> None:
    for date in ("9999-12-31T10:00:00-14:00", "0001-01-01T10:00:00+14:00"):
        doc = ("<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>"
               f"<Expiration><Date>{date}</Date></Expiration></Rule></LifecycleConfiguration>").encode()
        _expect(raw.request("PUT", f"/{bucket}?lifecycle", doc), 400, "InvalidArgument")


def test_odd_numbers_in_headers(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    # GetObjectAttributes' paging headers: AWS ignores one that is not a number
    for value in ("\xb2", "9" * 5000):
        status, _, body = raw.request("GET", f"/{bucket}/src?attributes", headers={
            "x-amz-object-attributes": "ObjectSize", "x-amz-max-parts": value})
        assert status == 200 and b"<ObjectSize>10</ObjectSize>" in body, body
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    for value in ("bytes=\xb2-\xb2", f"bytes=0-{'9' * 5000}"):
        _expect(raw.request("PUT", f"/{bucket}/dst?partNumber=1&uploadId={upload}", headers={
            "x-amz-copy-source": f"/{bucket}/src", "x-amz-copy-source-range": value}), 400, "InvalidArgument")
    s3.abort_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload)


def test_complete_with_part_numbers_out_of_range(raw: Any, s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"part")
    for n in ("-1", "4294967296", "0", "10001"):
        doc = (f"<CompleteMultipartUpload><Part><PartNumber>{n}</PartNumber><ETag>x</ETag></Part>"
               "</CompleteMultipartUpload>").encode()
        _expect(raw.request("POST", f"/{bucket}/mp?uploadId={upload}", doc), 400, "InvalidArgument")
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"][0]["PartNumber"] == 1


def test_version_ids_are_checked_before_use(raw: Any, s3: Any, bucket: str) -> None:
    """A version id is echoed in x-amz-version-id: one holding CR, LF or NUL closed the
    connection without an answer, and `garbage!` was deleted with a 204."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    for vid in ("%00", "a%0D%0AX-Injected:%201", "garbage!", "x" * 129):
        _expect(raw.request("DELETE", f"/{bucket}/k?versionId={vid}"), 400, "InvalidArgument")
        _expect(raw.request("GET", f"/{bucket}/k?versionId={vid}"), 400, "InvalidArgument")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    status, _, body = raw.request("GET", f"/{bucket}/k?versionId=null")
    assert (status, body) == (200, b"kept")


def test_deeply_nested_encryption_context(raw: Any, bucket: str) -> None:
    context = base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()
    status, _, body = raw.request("PUT", f"/{bucket}/k", b"x", headers={
        "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-context": context})
    assert status == 400 and error_code(body) == "InvalidArgument", body


def test_bucket_subresources_on_a_key_change_nothing(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    cors = (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            b"</CORSRule></CORSConfiguration>")
    for method, query, body in (("PUT", "cors", cors), ("DELETE", "cors", b""), ("DELETE", "versioning", b""),
                                ("PUT", "versioning", b""), ("GET", "location", b""), ("GET", "versions", b"")):
        _expect(raw.request(method, f"/{bucket}/k?{query}", body), 501, "NotImplemented")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"


def test_create_bucket_configuration_features_not_built_are_refused(raw: Any, s3: Any) -> None:
    tags = (b"<CreateBucketConfiguration><Tags><Tag><Key>k</Key><Value>v</Value></Tag></Tags>"
            b"</CreateBucketConfiguration>")
    directory = (b"<CreateBucketConfiguration><Location><Type>AvailabilityZone</Type><Name>z</Name></Location>"
                 b"<Bucket><Type>Directory</Type><DataRedundancy>SingleAvailabilityZone</DataRedundancy></Bucket>"
                 b"</CreateBucketConfiguration>")
    for body in (tags, directory):
        _expect(raw.request("PUT", "/hostile-create-config", body), 501, "NotImplemented")
    _expect(raw.request("PUT", "/hostile-create-config", b"<CreateBucketConfiguration><Colour>blue</Colour>"
                                                         b"</CreateBucketConfiguration>"), 400, "MalformedXML")
    assert "hostile-create-config" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    status, _, _ = raw.request("PUT", "/hostile-create-config", b"<CreateBucketConfiguration><LocationConstraint>"
                                                               b"eu-west-1</LocationConstraint></CreateBucketConfiguration>")
    assert status == 200
    s3.delete_bucket(Bucket="hostile-create-config")


def test_post_policy_bound_that_overflows(raw: Any, s3d: Any, bucket: str) -> None:
    fields = signed_form(s3d.access_key, s3d.secret_key,
                         [{"bucket": bucket}, {"key": "up"}, ["content-length-range", 0, float("inf")]], {"key": "up"})
    body, headers = multipart([*((k, v.encode()) for k, v in fields.items()), ("file", b"hello")])
    status, _, answer = raw.request("POST", f"/{bucket}", body, headers, sign=False)
    assert status == 400 and error_code(answer) == "InvalidPolicyDocument", answer


@pytest.mark.parametrize("redirect", ["http://example.com/done\r\nX-Injected: 1", "http://[::1/done"])
def test_post_redirect_a_header_cannot_carry_is_ignored(raw: Any, s3d: Any, s3: Any, bucket: str,
                                                        redirect: str) -> None:
    """The object is stored before the answer is built: a redirect with CR/LF closed the
    connection without one, and one urlsplit refuses (an unclosed IPv6 bracket) was a 500, so
    the client saw a failure for an upload that had succeeded."""
    fields = signed_form(s3d.access_key, s3d.secret_key,
                         [{"bucket": bucket}, {"key": "up"}, ["starts-with", "$success_action_redirect", ""]],
                         {"key": "up", "success_action_redirect": redirect})
    body, headers = multipart([*((k, v.encode()) for k, v in fields.items()), ("file", b"uploaded")])
    status, answer_headers, _ = raw.request("POST", f"/{bucket}", body, headers, sign=False)
    assert status == 204 and "x-injected" not in answer_headers
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"


def _post(raw: Any, s3d: Any, bucket: str, fields: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    form = signed_form(s3d.access_key, s3d.secret_key,
                       [{"bucket": bucket}, *(["starts-with", f"${k}", ""] for k in fields)], fields)
    body, headers = multipart([*((k, v.encode()) for k, v in form.items()), ("file", b"uploaded")])
    return raw.request("POST", f"/{bucket}", body, headers, sign=False)


def test_metadata_that_decodes_to_control_characters_stays_readable(raw: Any, s3d: Any, bucket: str) -> None:
    """An encoded-word is decoded before it is stored (as AWS does): one that decodes to CR, LF or
    NUL, or a POST form's x-amz-meta-* field holding them, was stored and then sent back as it
    was, so every GET and HEAD of the object dropped the connection without an answer. It goes
    out RFC 2047-encoded, as non-ASCII metadata does."""
    injected = "a\r\nX-Injected: 1"
    sent = {"crlf": "=?UTF-8?B?" + base64.b64encode(injected.encode()).decode() + "?=", "nul": "=?UTF-8?Q?a=00b?="}
    for key, value in sent.items():
        assert raw.request("PUT", f"/{bucket}/{key}", b"kept", {"x-amz-meta-a": value})[0] == 200
    assert _post(raw, s3d, bucket, {"key": "form", "x-amz-meta-a": injected})[0] == 204
    for key, text in (("crlf", injected), ("nul", "a\0b"), ("form", injected)):
        for method in ("GET", "HEAD"):
            status, headers, _ = raw.request(method, f"/{bucket}/{key}")
            assert status == 200 and "x-injected" not in headers, (key, headers)
            assert str(make_header(decode_header(headers["x-amz-meta-a"]))) == text


@pytest.mark.parametrize("field", [
    {"Content-Type": "text/plain\r\nX-Injected: 1"},
    {"Cache-Control": "no-cache\x00"},
    {"Content-Disposition": "inline\x01"},
    {"x-amz-meta-a b": "v"},
    {"x-amz-meta-a:b": "v"},
])
def test_post_fields_a_header_cannot_carry_are_refused(raw: Any, s3d: Any, s3: Any, bucket: str,
                                                       field: dict[str, str]) -> None:
    """A form field can hold any text; these become the object's headers, sent back on every GET.
    One a header cannot carry was stored, and the object could then never be read (the response
    head could not be written): refused as the header itself would have been."""
    status, _, body = _post(raw, s3d, bucket, {"key": "up", **field})
    assert (status, error_code(body)) == (400, "InvalidArgument"), body
    assert raw.request("HEAD", f"/{bucket}/up")[0] == 404


def test_digits_takes_plain_ascii_numbers_only() -> None:
    from s3gw.numbers import digits

    assert digits("0") == 0 and digits("0042") == 42 and digits("9" * 19) == int("9" * 19)
    for raw in ("", SUP2, "\u0663", "1_000", " 1", "1 ", "-1", "+1", "1.0", "9" * 20, "x"):
        assert digits(raw) is None, raw
    assert digits("12345", max_digits=4) is None


def test_lifecycle_rule_id_is_url_encoded_in_x_amz_expiration(raw: Any, s3: Any, bucket: str) -> None:
    """A rule's ID is any text and is echoed in x-amz-expiration on every GET and HEAD the rule
    covers: one holding CR/LF made each of them drop the connection. AWS documents the
    rule-id as URL-encoded."""
    doc = ("<LifecycleConfiguration><Rule><ID>r&#13;&#10;X-Injected: 1&quot;</ID><Filter><Prefix></Prefix></Filter>"
           "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>")
    assert raw.request("PUT", f"/{bucket}?lifecycle", doc.encode())[0] == 200
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    for method in ("GET", "HEAD"):
        status, headers, _ = raw.request(method, f"/{bucket}/k")
        assert status == 200 and "x-injected" not in headers, headers
        assert headers["x-amz-expiration"].endswith('rule-id="r%0D%0AX-Injected%3A%201%22"')


def test_carriage_return_in_xml_text_survives_a_parser(raw: Any, s3: Any, bucket: str) -> None:
    """XML parsers read a raw CR (and CR LF) back as LF: a key holding one was listed as another
    key, one that does not exist. CR goes out as a character reference."""
    assert raw.request("PUT", f"/{bucket}/a%0D%0Ab%0Dc", b"x")[0] == 200
    status, _, body = raw.request("GET", f"/{bucket}?list-type=2")
    assert status == 200
    keys = [e.text for e in ET.fromstring(body).iter(f"{{{NS}}}Key")]
    assert keys == ["a\r\nb\rc"], body
    doc = ("<LifecycleConfiguration><Rule><ID>r&#13;&#10;1</ID><Filter><Prefix></Prefix></Filter>"
           "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>")
    assert raw.request("PUT", f"/{bucket}?lifecycle", doc.encode())[0] == 200
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["ID"] == "r\r\n1"


@pytest.mark.parametrize("number", ["1_0", "+1", " 1", "\u0661"])
def test_numbers_in_headers_and_queries_are_ascii_digits(raw: Any, s3d: Any, s3: Any, bucket: str,
                                                         number: str) -> None:
    """int() takes 1_0, +1, surrounding spaces and other scripts' digits, and these fields
    went through it: a part number, max-keys or x-amz-decoded-content-length no S3 accepts was
    taken (1_0 as 10, an Arabic-Indic one as 1)."""
    from urllib.parse import quote

    from tests.s3.conftest import aws_chunked, sign_v4
    from tests.s3.test_malformed import now_amz

    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    q = quote(number)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    _expect(raw.request("PUT", f"/{bucket}/mp?partNumber={q}&uploadId={upload}", b"part"), 400, "InvalidArgument")
    assert "Parts" not in s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)
    _expect(raw.request("GET", f"/{bucket}/k?partNumber={q}"), 400, "InvalidArgument")
    _expect(raw.request("GET", f"/{bucket}?list-type=2&max-keys={q}"), 400, "InvalidArgument")
    _expect(raw.request("GET", f"/{bucket}?max-keys={q}"), 400, "InvalidArgument")
    if number != number.strip():
        return  # a header value's surrounding spaces are not part of it (HTTP)
    # an aws-chunked body of 1 byte declared as `number`
    amz_date = now_amz()
    headers = {"host": raw.netloc, "content-encoding": "aws-chunked", "x-amz-decoded-content-length": number}
    headers["content-length"] = str(len(aws_chunked(b"x", 8192, "0" * 64, s3d.secret_key, amz_date)))
    h = sign_v4("PUT", f"/{bucket}/k", headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", s3d.access_key,
                s3d.secret_key, amz_date)
    body = aws_chunked(b"x", 8192, h.pop("_signature"), s3d.secret_key, amz_date)
    h = {k: v.encode().decode("latin-1") for k, v in h.items()}  # sent as its UTF-8 bytes, as signed
    _expect(raw.request("PUT", f"/{bucket}/k", body, headers=h, sign=False), 400, "InvalidArgument")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"


@pytest.mark.parametrize("bounds", [[0.5, 10.9], [False, True], [" 1", "10"], ["0", "1_0"]])
def test_post_policy_length_bounds_are_integers(raw: Any, s3d: Any, bucket: str, bounds: list[Any]) -> None:
    fields = signed_form(s3d.access_key, s3d.secret_key,
                         [{"bucket": bucket}, {"key": "up"}, ["content-length-range", *bounds]], {"key": "up"})
    body, headers = multipart([*((k, v.encode()) for k, v in fields.items()), ("file", b"hello")])
    _expect(raw.request("POST", f"/{bucket}", body, headers, sign=False), 400, "InvalidPolicyDocument")
    assert raw.request("HEAD", f"/{bucket}/up")[0] == 404


def test_stored_header_fields_a_header_cannot_carry_stay_readable(daemon_factory: Any) -> None:
    """Before POST form fields were checked, a form's Content-Type, Cache-Control, ... were stored
    whatever they held, and every GET and HEAD of such an object dropped the connection. The
    record is rewritten here, with the daemon stopped, as such a POST left it; the values go out
    RFC 2047-encoded, as metadata does."""
    import trio

    from appliance.config import embedded_config
    from appliance.engine import PutMeta
    from appliance.engine.diskload import load_disks
    from appliance.engine.metadb import MetaDB
    from appliance.engine.objectstore import ObjectStore
    from tests.s3.conftest import Raw

    d = daemon_factory(["--no-mount"])
    d.s3().create_bucket(Bucket="old")
    d.s3().put_object(Bucket="old", Key="k", Body=b"kept")
    d.stop()
    stored = {"content-type": "text/plain\r\nX-Injected: 1", "cache-control": "no-cache\x00",
              "content-disposition": "inline\x01", "content-language": "\u20ac\n"}

    async def rewrite() -> None:
        cfg = embedded_config(d.data_dir)
        db = MetaDB(cfg.meta_path)
        try:
            store = ObjectStore(cfg, db, load_disks(cfg, db))
            headers = {k: v for k, v in stored.items() if k != "content-type"}
            await store.update_meta("old", "k", PutMeta(content_type=stored["content-type"], headers=headers))
        finally:
            db.close()

    trio.run(rewrite)
    d.start()
    raw = Raw(d)
    for method in ("GET", "HEAD"):
        status, headers, body = raw.request(method, "/old/k")
        assert status == 200 and "x-injected" not in headers, headers
        assert body == (b"kept" if method == "GET" else b"")
        for name, value in stored.items():
            assert str(make_header(decode_header(headers[name]))) == value, name
    assert d.s3().head_object(Bucket="old", Key="k")["ContentLength"] == 4


def test_documents_s3_requires_a_digest_of_are_refused_without_one(raw: Any, s3: Any) -> None:
    """AWS refuses DeleteObjects, PutBucketLifecycleConfiguration and the object lock documents
    without Content-MD5 or an x-amz-checksum-* value (InvalidRequest "Missing required header for
    this request: Content-MD5"); they were taken, and acted on, without either. Every SDK sends
    one, so boto3 itself is the check that clients keep working."""
    import binascii
    import zlib
    from datetime import UTC, datetime, timedelta

    bucket = "hostile-digest"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    until = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs = {
        "POST /?delete": b"<Delete><Object><Key>k</Key></Object></Delete>",
        "PUT /?lifecycle": b"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>"
                           b"<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
                           b"</LifecycleConfiguration>",
        "PUT /?object-lock": b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>"
                             b"<DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention>"
                             b"</Rule></ObjectLockConfiguration>",
        "PUT /k?retention": f"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate>"
                            "</Retention>".encode(),
        "PUT /k?legal-hold": b"<LegalHold><Status>ON</Status></LegalHold>",
    }
    for what, doc in docs.items():
        method, path = what.split(" ")
        status, _, body = raw.request(method, f"/{bucket}{path}", doc, digest=False)
        assert (status, error_code(body)) == (400, "InvalidRequest"), (what, body)
        assert b"Missing required header for this request: Content-MD5" in body
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    head = s3.head_object(Bucket=bucket, Key="k")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head, head
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert error_code(raw.request("GET", f"/{bucket}?lifecycle")[2]) == "NoSuchLifecycleConfiguration"
    # an x-amz-checksum-* value in place of Content-MD5 does
    for what, doc in docs.items():
        if what == "POST /?delete":
            continue  # the object is under legal hold and retention now
        method, path = what.split(" ")
        crc = base64.b64encode(binascii.unhexlify(f"{zlib.crc32(doc):08x}")).decode()
        status, _, body = raw.request(method, f"/{bucket}{path}", doc, {"x-amz-checksum-crc32": crc}, digest=False)
        assert status == 200, (what, body)
    assert s3.head_object(Bucket=bucket, Key="k")["ObjectLockLegalHoldStatus"] == "ON"
    # boto3 (which sends its own checksum) keeps working
    s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "OFF"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "r", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 2}}]})
    s3.put_object(Bucket=bucket, Key="free", Body=b"x")
    vid = s3.put_object(Bucket=bucket, Key="gone", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1))["VersionId"]
    s3.put_object_retention(Bucket=bucket, Key="gone", VersionId=vid, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE",
                                       "RetainUntilDate": datetime.now(UTC) + timedelta(days=2)})
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "free"}]})
    assert [d["Key"] for d in out["Deleted"]] == ["free"], out


def test_presigned_url_with_a_repeated_auth_parameter_is_refused(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    """The query keeps the first of two values, and the canonical query drops every
    X-Amz-Signature: a second signature appended to a valid URL was ignored, so the URL answered
    whatever was appended. A repeated authentication parameter is refused."""
    from urllib.parse import urlsplit

    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    presigner = s3d.s3(signature_version="s3v4")
    u = urlsplit(presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300))
    target = f"{u.path}?{u.query}"
    assert raw.request("GET", target, sign=False)[:3:2] == (200, b"kept")
    params = dict(p.split("=", 1) for p in u.query.split("&"))
    for extra in (f"X-Amz-Signature={'0' * 64}", f"X-Amz-Signature={params['X-Amz-Signature']}",
                  f"X-Amz-Date={params['X-Amz-Date']}", "X-Amz-Expires=604800", "X-Amz-Credential=x",
                  f"X%2DAmz%2DSignature={'0' * 64}"):
        _expect(raw.request("GET", f"{target}&{extra}", sign=False), 400, "AuthorizationQueryParametersError")


def _presigned(s3d: Any, netloc: str, path: str, amz_date: str) -> str:
    """A presigned GET of `path` dated `amz_date` (botocore dates its URLs itself), valid a week."""
    from s3gw.sigv4 import canonical_query, sign, signing_key, string_to_sign, uri_encode

    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{s3d.access_key}/{scope}",
              "X-Amz-Date": amz_date, "X-Amz-Expires": "604800", "X-Amz-SignedHeaders": "host"}
    query = "&".join(f"{k}={uri_encode(v, keep_slash=False)}" for k, v in params.items())
    creq = (f"GET\n{path}\n{canonical_query(query, drop_signature=True)}\nhost:{netloc}\n\nhost\n"
            "UNSIGNED-PAYLOAD")
    sig = sign(signing_key(s3d.secret_key, amz_date[:8], "us-east-1", "s3"), string_to_sign(amz_date, scope, creq))
    return f"{path}?{query}&X-Amz-Signature={sig}"


def test_x_amz_date_fields_must_have_all_their_digits(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    """strptime takes one-digit fields: an X-Amz-Date of ...T2500Z (hour 25) was read as 02:50:00
    and the request it dated was served."""
    from datetime import UTC, datetime, timedelta

    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
    status, _, body = raw.request("GET", _presigned(s3d, raw.netloc, f"/{bucket}/k", f"{day}T025000Z"), sign=False)
    assert (status, body) == (200, b"kept")
    for odd in ("T2500Z", "T1234Z", "T12345Z", "T1Z"):
        got = raw.request("GET", _presigned(s3d, raw.netloc, f"/{bucket}/k", day + odd), sign=False)
        _expect(got, 400, "AuthorizationQueryParametersError")


def test_one_host_header_per_http11_request(raw: Any, bucket: str) -> None:
    """The Host chooses the bucket (virtual-hosted style) and is signed: two of them were joined
    into one value, and an HTTP/1.1 request without one was served. RFC 9112: 400 for both."""
    from tests.s3.test_malformed import send_raw

    for head in (f"GET /{bucket} HTTP/1.1\r\nHost: {raw.netloc}\r\nHost: other\r\n\r\n",
                 f"GET /{bucket} HTTP/1.1\r\nConnection: close\r\n\r\n"):
        out = send_raw(raw, head.encode())
        assert out.startswith(b"HTTP/1.1 400") and b"<Code>InvalidRequest</Code>" in out, out[:300]
    out = send_raw(raw, f"GET /{bucket} HTTP/1.0\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403"), out[:300]  # anonymous, but served


def test_post_bucket_field_must_name_the_url_bucket(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    """The upload goes to the URL's bucket and the policy's $bucket is that bucket: a `bucket`
    field naming another was ignored (and passed ["starts-with", "$bucket", ""])."""
    fields = signed_form(s3d.access_key, s3d.secret_key, [["starts-with", "$bucket", ""], {"key": "up"}],
                         {"key": "up", "bucket": "someone-elses"})
    body, headers = multipart([*((k, v.encode()) for k, v in fields.items()), ("file", b"uploaded")])
    _expect(raw.request("POST", f"/{bucket}", body, headers, sign=False), 400, "InvalidArgument")
    assert raw.request("HEAD", f"/{bucket}/up")[0] == 404
    fields = signed_form(s3d.access_key, s3d.secret_key, [["starts-with", "$bucket", ""], {"key": "up"}],
                         {"key": "up", "bucket": bucket})
    body, headers = multipart([*((k, v.encode()) for k, v in fields.items()), ("file", b"uploaded")])
    assert raw.request("POST", f"/{bucket}", body, headers, sign=False)[0] == 204
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"


def test_access_control_policy_needs_its_owner(raw: Any, s3: Any, bucket: str) -> None:
    """An AccessControlPolicy without <Owner> (or an Owner without an ID) was taken: AWS's schema
    requires it, and AWS and Ceph RGW answer MalformedACLError."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    acl = ("<AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
           "xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
           "<Permission>READ</Permission></Grant></AccessControlList>")
    for path in (f"/{bucket}?acl", f"/{bucket}/k?acl"):
        for owner_part in ("", "<Owner></Owner>", "<Owner><ID> </ID></Owner>",
                           f"<Owner><ID>{owner}</ID></Owner><Owner><ID>{owner}</ID></Owner>"):
            doc = f"<AccessControlPolicy>{owner_part}{acl}</AccessControlPolicy>".encode()
            _expect(raw.request("PUT", path, doc), 400, "MalformedACLError")
    assert raw.request("GET", f"/{bucket}/k", sign=False)[0] == 403  # still private
    doc = f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner>{acl}</AccessControlPolicy>".encode()
    assert raw.request("PUT", f"/{bucket}/k?acl", doc)[0] == 200
    assert raw.request("GET", f"/{bucket}/k", sign=False)[:3:2] == (200, b"kept")


def test_write_headers_are_held_to_8_kib(raw: Any, s3: Any, bucket: str) -> None:
    """AWS limits a PUT's request header to 8 KB (user metadata to 2 KB, which MetadataTooLarge
    already held): a Cache-Control or Content-Disposition of up to the shell's 64 KiB cap was
    stored, and sent back on every GET and HEAD."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    big = {"Cache-Control": "a" * 9000}
    _expect(raw.request("PUT", f"/{bucket}/k", b"new", big), 400, "RequestHeaderSectionTooLarge")
    _expect(raw.request("POST", f"/{bucket}/mp?uploads", b"", big), 400, "RequestHeaderSectionTooLarge")
    _expect(raw.request("PUT", f"/{bucket}/copy", b"", {**big, "x-amz-copy-source": f"/{bucket}/k",
                                                         "x-amz-metadata-directive": "REPLACE"}),
            400, "RequestHeaderSectionTooLarge")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert raw.request("HEAD", f"/{bucket}/copy")[0] == 404
    assert raw.request("PUT", f"/{bucket}/k", b"new", {"Cache-Control": "a" * 6000})[0] == 200
    assert s3.head_object(Bucket=bucket, Key="k")["CacheControl"] == "a" * 6000


def test_access_control_policy_needs_its_access_control_list(raw: Any, s3: Any, bucket: str) -> None:
    """A policy without <AccessControlList> was taken as an empty grant list, wiping every grant
    (the owner's FULL_CONTROL included): AWS's schema requires the list (it may be empty), and
    AWS and Ceph RGW answer MalformedACLError."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept", ACL="public-read")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    for path in (f"/{bucket}?acl", f"/{bucket}/k?acl"):
        before = raw.request("GET", path)[2]
        for acl_part in ("", "<AccessControlList/><AccessControlList/>"):
            doc = f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner>{acl_part}</AccessControlPolicy>".encode()
            _expect(raw.request("PUT", path, doc), 400, "MalformedACLError")
        assert raw.request("GET", path)[2] == before
    assert raw.request("GET", f"/{bucket}/k", sign=False)[:3:2] == (200, b"kept")  # still public
    # an empty list is a valid document: no grants
    doc = f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList/></AccessControlPolicy>".encode()
    assert raw.request("PUT", f"/{bucket}/k?acl", doc)[0] == 200
    assert s3.get_object_acl(Bucket=bucket, Key="k")["Grants"] == []
    assert raw.request("GET", f"/{bucket}/k", sign=False)[0] == 403


def test_an_acl_holds_at_most_100_grants(raw: Any, s3: Any, bucket: str) -> None:
    """An ACL of 101 or thousands of grants (a 1 MiB document, or x-amz-grant-* headers listing
    the same grantee 500 times) was stored on the bucket or object and walked on every check:
    AWS allows 100 grants and answers MalformedACLError past them, as Ceph RGW does."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    one = ("<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">"
           f"<ID>{owner}</ID></Grantee><Permission>READ</Permission></Grant>")

    def doc(n: int) -> bytes:
        return (f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList>{one * n}"
                "</AccessControlList></AccessControlPolicy>").encode()

    many = {"x-amz-grant-read": ", ".join([f'id="{owner}"'] * 51),
            "x-amz-grant-full-control": ", ".join([f'id="{owner}"'] * 50)}
    for path in (f"/{bucket}?acl", f"/{bucket}/k?acl"):
        for n in (101, 4000):
            _expect(raw.request("PUT", path, doc(n)), 400, "MalformedACLError")
        _expect(raw.request("PUT", path, b"", many), 400, "MalformedACLError")
    _expect(raw.request("PUT", f"/{bucket}/new", b"x", many), 400, "MalformedACLError")
    assert raw.request("HEAD", f"/{bucket}/new")[0] == 404
    assert len(s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]) == 1
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 1
    assert raw.request("PUT", f"/{bucket}/k?acl", doc(100))[0] == 200
    assert len(s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]) == 100
    del many["x-amz-grant-read"]
    assert raw.request("PUT", f"/{bucket}/new", b"x", many)[0] == 200


def test_access_control_policy_elements_the_schema_does_not_allow(raw: Any, s3: Any, bucket: str) -> None:
    """Elements AWS's schema does not allow were ignored: a Group grantee that also named an
    <ID>, a CanonicalUser that also named a <URI>, a <Condition> in a grant, anything beside the
    Owner and the list. AWS answers MalformedACLError (the document does not validate)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    group = f'<Grantee {xsi} xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>'
    user = f'<Grantee {xsi} xsi:type="CanonicalUser"><ID>{owner}</ID><DisplayName>root</DisplayName>'

    def doc(grant: str, owner_extra: str = "", policy_extra: str = "", list_extra: str = "") -> bytes:
        return (f"<AccessControlPolicy><Owner><ID>{owner}</ID>{owner_extra}</Owner>{policy_extra}"
                f"<AccessControlList><Grant>{grant}</Grant>{list_extra}</AccessControlList>"
                "</AccessControlPolicy>").encode()

    bad = [doc(f"{group}<ID>{owner}</ID></Grantee><Permission>READ</Permission>"),
           doc(f"{user}<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
               "<Permission>READ</Permission>"),
           doc(f"{group}</Grantee><Permission>READ</Permission><Condition/>"),
           doc(f"{group}</Grantee><Permission>READ</Permission>", owner_extra="<Email>a@b</Email>"),
           doc(f"{group}</Grantee><Permission>READ</Permission>", policy_extra="<Junk/>"),
           doc(f"{group}</Grantee><Permission>READ</Permission>", list_extra="<Deny/>")]
    for path in (f"/{bucket}?acl", f"/{bucket}/k?acl"):
        for body in bad:
            _expect(raw.request("PUT", path, body), 400, "MalformedACLError")
    assert raw.request("GET", f"/{bucket}/k", sign=False)[0] == 403  # still private
    good = doc(f"{group}</Grantee><Permission>READ</Permission>", owner_extra="<DisplayName>root</DisplayName>")
    assert raw.request("PUT", f"/{bucket}/k?acl", good)[0] == 200
    assert raw.request("PUT", f"/{bucket}/k?acl", doc(f"{user}</Grantee><Permission>READ</Permission>"))[0] == 200

"""Bucket CORS against the real daemon: Put/Get/DeleteBucketCors through boto3, AWS's validation
errors, hostile documents, preflights and actual cross-origin requests through `requests`, the
rules surviving `recover-metadata`, and a deleted bucket taking its rules with it."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.s3.conftest import Raw, error_code

RULES = [
    {"ID": "web", "AllowedOrigins": ["https://*.example.com", "http://localhost:8000"],
     "AllowedMethods": ["GET", "PUT", "HEAD"], "AllowedHeaders": ["x-amz-*", "Content-Type"],
     "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


def _code(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as ei:
        call(**kw)
    return str(ei.value.response["Error"]["Code"])


def _options(d: Any, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.options(d.endpoint + path, headers=headers, timeout=30)


def test_put_get_delete_round_trip(s3: Any, bucket: str) -> None:
    assert _code(s3.get_bucket_cors, Bucket=bucket) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got == RULES
    s3.delete_bucket_cors(Bucket=bucket)
    assert _code(s3.get_bucket_cors, Bucket=bucket) == "NoSuchCORSConfiguration"
    s3.delete_bucket_cors(Bucket=bucket)  # deleting what is not there is fine, as on AWS
    assert _code(s3.get_bucket_cors, Bucket="no-such-bucket-cors") == "NoSuchBucket"


@pytest.mark.parametrize(("rule", "code", "words"), [
    ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}, "InvalidRequest", "unsupported HTTP method"),
    ({"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}, "InvalidRequest",
     "more than one wildcard"),
    ({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}, "InvalidRequest",
     "more than one wildcard"),
    ({"ID": "i" * 256, "AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}, "InvalidArgument", "ID"),
])
def test_validation_errors(s3: Any, bucket: str, rule: dict[str, Any], code: str, words: str) -> None:
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    assert ei.value.response["Error"]["Code"] == code
    assert words in ei.value.response["Error"]["Message"]


def test_too_many_rules(s3: Any, bucket: str) -> None:
    rules = [{"AllowedOrigins": [f"https://{i}.example"], "AllowedMethods": ["GET"]} for i in range(101)]
    assert _code(s3.put_bucket_cors, Bucket=bucket, CORSConfiguration={"CORSRules": rules}) == "InvalidRequest"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules[:100]})
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 100


_RULE = "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>{}</CORSRule>"


@pytest.mark.parametrize("body", [
    b"",
    b"<CORSConfiguration/>",  # no rule
    b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
    ("<CORSConfiguration>" + _RULE.format("<MaxAgeSeconds>ten</MaxAgeSeconds>") + "</CORSConfiguration>").encode(),
    ("<CORSConfiguration>" + _RULE.format("<MaxAgeSeconds>-1</MaxAgeSeconds>") + "</CORSConfiguration>").encode(),
    ("<CORSConfiguration>" + _RULE.format("<ExposeHeader>a b</ExposeHeader>") + "</CORSConfiguration>").encode(),
    ("<CORSConfiguration>" + _RULE.format("<ID>a</ID><ID>b</ID>") + "</CORSConfiguration>").encode(),
    b"<WrongRoot>" + _RULE.format("").encode() + b"</WrongRoot>",
    b"<CORSConfiguration><CORSRule>",  # truncated
    b"\xff\xfe<CORSConfiguration/>",  # not UTF-8
    # entity expansion ("billion laughs") and external entities: refused at the DOCTYPE
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<CORSConfiguration><CORSRule><AllowedOrigin>&b;</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    b"</CORSRule></CORSConfiguration>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<CORSConfiguration><CORSRule><AllowedOrigin>&e;</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    b"</CORSRule></CORSConfiguration>",
])
def test_hostile_documents(raw: Raw, bucket: str, body: bytes) -> None:
    status, _, answer = raw.request("PUT", f"/{bucket}?cors", body)
    assert status == 400 and error_code(answer) == "MalformedXML", answer


def test_oversized_document(raw: Raw, bucket: str) -> None:
    pad = "<ExposeHeader>" + "x" * 1000 + "</ExposeHeader>"
    body = ("<CORSConfiguration>" + _RULE.format(pad * 70) + "</CORSConfiguration>").encode()
    status, _, answer = raw.request("PUT", f"/{bucket}?cors", body)
    assert status == 400 and error_code(answer) == "MaxMessageLengthExceeded"


def test_authorization(s3d: Any, s3: Any, bucket: str, raw: Raw) -> None:
    status, _, answer = raw.request("PUT", f"/{bucket}?cors", b"<CORSConfiguration/>", sign=False)
    assert status == 403 and error_code(answer) == "AccessDenied"
    status, _, answer = raw.request("GET", f"/{bucket}?cors", sign=False)
    assert status == 403 and error_code(answer) == "AccessDenied"


def test_preflight(s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>")
    r = _options(s3d, f"/{bucket}/page.html", {"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 403 and error_code(r.content) == "AccessForbidden"
    assert "CORS is not enabled" in r.text

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    r = _options(s3d, f"/{bucket}/page.html", {"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "PUT",
                                               "Access-Control-Request-Headers": "X-Amz-Meta-Colour, content-type"})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT, HEAD"
    assert r.headers["Access-Control-Allow-Headers"] == "x-amz-meta-colour, content-type"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in r.headers["Vary"]
    # the bucket itself, too
    assert _options(s3d, f"/{bucket}", {"Origin": "http://localhost:8000",
                                        "Access-Control-Request-Method": "GET"}).status_code == 200
    # any origin, GET only: the second rule answers with "*" and no credentials
    r = _options(s3d, f"/{bucket}/page.html", {"Origin": "https://elsewhere.test",
                                               "Access-Control-Request-Method": "GET"})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers

    for headers in ({"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "PUT"},
                    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
                    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                     "Access-Control-Request-Headers": "authorization"},
                    {"Origin": "https://example.com.evil.test", "Access-Control-Request-Method": "PUT"}):
        r = _options(s3d, f"/{bucket}/page.html", headers)
        assert r.status_code == 403 and error_code(r.content) == "AccessForbidden", headers
        assert "Access-Control-Allow-Origin" not in r.headers

    # the preflight of a presigned URL carries the URL's query: it is still answered from the rules
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "page.html"})
    r = requests.options(url, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"},
                         timeout=30)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    r = _options(s3d, f"/{bucket}/page.html", {"Access-Control-Request-Method": "GET"})
    assert r.status_code == 400 and error_code(r.content) == "BadRequest"
    r = _options(s3d, f"/{bucket}/page.html", {"Origin": "https://app.example.com"})
    assert r.status_code == 400 and error_code(r.content) == "BadRequest"
    r = _options(s3d, "/no-such-bucket-cors/x", {"Origin": "https://a.example.com",
                                                  "Access-Control-Request-Method": "GET"})
    assert r.status_code == 404


def test_actual_requests_get_the_rule_headers(s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"hello", ACL="public-read")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    r = requests.get(f"{s3d.endpoint}/{bucket}/public.txt", headers={"Origin": "https://a.example.com"}, timeout=30)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["Access-Control-Allow-Origin"] == "https://a.example.com"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    # an error answer carries them too, so the page can read it
    r = requests.get(f"{s3d.endpoint}/{bucket}/missing", headers={"Origin": "https://a.example.com"}, timeout=30)
    assert r.status_code in (403, 404) and r.headers["Access-Control-Allow-Origin"] == "https://a.example.com"
    # an origin no rule names for this method: no CORS headers, the browser withholds the answer
    r = requests.delete(f"{s3d.endpoint}/{bucket}/public.txt", headers={"Origin": "https://a.example.com"},
                        timeout=30)
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.get(f"{s3d.endpoint}/{bucket}/public.txt", timeout=30)  # no Origin: no CORS headers
    assert "Access-Control-Allow-Origin" not in r.headers


def test_a_deleted_bucket_takes_its_rules(s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert _code(s3.get_bucket_cors, Bucket=bucket) == "NoSuchCORSConfiguration"


def test_rules_survive_restart_and_recover_metadata(daemon_factory: Any) -> None:
    d = daemon_factory(["--no-mount"])
    s3 = d.s3()
    s3.create_bucket(Bucket="corsy")
    s3.put_bucket_cors(Bucket="corsy", CORSConfiguration={"CORSRules": RULES})
    d.restart()
    assert d.s3().get_bucket_cors(Bucket="corsy")["CORSRules"] == RULES
    d.stop()
    shutil.rmtree(d.data_dir / "meta")
    report = json.loads(d.cli("recover-metadata", "--json").stdout)
    assert report is not None
    d.start()
    assert d.s3().get_bucket_cors(Bucket="corsy")["CORSRules"] == RULES
    r = _options(d, "/corsy/x", {"Origin": "https://z.example.com", "Access-Control-Request-Method": "HEAD"})
    assert r.status_code == 200

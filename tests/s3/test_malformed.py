"""Malformed and hostile input against the real daemon: clean S3 errors, the daemon stays up,
nothing partial becomes visible and nothing already stored is harmed."""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import aws_chunked, error_code, sign_v4

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def now_amz(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y%m%dT%H%M%SZ")


def alive(s3: Any) -> None:
    s3.list_buckets()


def send_raw(raw: Any, data: bytes, read: bool = True, timeout: float = 10) -> bytes:
    s = socket.create_connection((raw.host, raw.port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


@pytest.mark.parametrize("path,body", [
    ("?versioning", b"<VersioningConfiguration><Status>Enabled</Status"),
    ("?versioning", b"<Wrong><Status>Enabled</Status></Wrong>"),
    ("?delete", b"not xml at all"),
    ("?delete", b"<Delete></Delete>"),
    ("?delete", b'<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                b"<Delete><Object><Key>&b;</Key></Object></Delete>"),
])
def test_bad_xml(raw: Any, s3: Any, bucket: str, path: str, body: bytes) -> None:
    method = "PUT" if "versioning" in path else "POST"
    status, headers, resp = raw.request(method, f"/{bucket}{path}", body)
    if b"ENTITY" in body:  # expat may refuse or expand small entities; either way no crash
        assert status in (200, 400)
    else:
        assert status == 400, resp
        assert error_code(resp) in ("MalformedXML", "IllegalVersioningConfigurationException")
    assert headers["x-amz-request-id"]
    alive(s3)


def test_bad_xml_for_tagging_and_complete(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, _, resp = raw.request("PUT", f"/{bucket}/k?tagging", b"<Tagging><TagSet><Tag><Key>a</Key>")
    assert (status, error_code(resp)) == (400, "MalformedXML")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    status, _, resp = raw.request("POST", f"/{bucket}/m?uploadId={uid}", b"<CompleteMultipartUpload>")
    assert (status, error_code(resp)) == (400, "MalformedXML")
    status, _, resp = raw.request("POST", f"/{bucket}/m?uploadId={uid}",
                                  b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part>"
                                  b"</CompleteMultipartUpload>")
    assert (status, error_code(resp)) == (400, "MalformedXML")


def test_bad_signatures(raw: Any, s3d: Any, bucket: str) -> None:
    status, _, resp = raw.request("GET", f"/{bucket}", sign=False, headers={"Host": raw.netloc})
    assert (status, error_code(resp)) == (403, "AccessDenied")
    h = raw.sign("GET", f"/{bucket}")
    h["Authorization"] = h["Authorization"][:-4] + "0000"
    status, _, resp = raw.request("GET", f"/{bucket}", headers=h, sign=False)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    h = raw.sign("GET", f"/{bucket}")
    h["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"
    status, _, resp = raw.request("GET", f"/{bucket}", headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "AuthorizationHeaderMalformed")
    empty = hashlib.sha256(b"").hexdigest()
    for delta, want in [(timedelta(minutes=-20), "RequestTimeTooSkewed"), (timedelta(minutes=20),
                                                                          "RequestTimeTooSkewed")]:
        h = sign_v4("GET", f"/{bucket}", {"host": raw.netloc}, empty, s3d.access_key, s3d.secret_key, now_amz(delta))
        h.pop("_signature")
        status, _, resp = raw.request("GET", f"/{bucket}", headers=h, sign=False)
        assert (status, error_code(resp)) == (403, want)
    h = sign_v4("GET", f"/{bucket}", {"host": raw.netloc}, empty, s3d.access_key, s3d.secret_key,
                now_amz(timedelta(minutes=-10)))
    h.pop("_signature")
    assert raw.request("GET", f"/{bucket}", headers=h, sign=False)[0] == 200


def test_payload_hash_mismatch_stores_nothing(raw: Any, s3: Any, bucket: str) -> None:
    h = raw.sign("PUT", f"/{bucket}/hm", b"the signed body")
    status, _, resp = raw.request("PUT", f"/{bucket}/hm", b"another body!!!", headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "XAmzContentSHA256Mismatch")
    status, _, _ = raw.request("HEAD", f"/{bucket}/hm")
    assert status == 404


def test_invalid_names_and_keys(raw: Any, s3: Any, bucket: str) -> None:
    status, _, resp = raw.request("PUT", "/Bad_Bucket")
    assert (status, error_code(resp)) == (400, "InvalidBucketName")
    status, _, resp = raw.request("PUT", f"/{bucket}/bad%FF%FEkey", b"x")
    assert (status, error_code(resp)) == (400, "InvalidURI")
    status, _, resp = raw.request("PUT", f"/{bucket}/" + "k" * 1025, b"x")
    assert (status, error_code(resp)) == (400, "KeyTooLongError")
    status, _, resp = raw.request("GET", f"/{bucket}?list-type=2&prefix=%FF")
    assert status == 400
    alive(s3)


def test_oversize_headers(raw: Any, s3: Any) -> None:
    head = f"GET / HTTP/1.1\r\nHost: {raw.netloc}\r\nX-Big: {'a' * 200_000}\r\n\r\n".encode()
    resp = send_raw(raw, head)
    assert resp.startswith(b"HTTP/1.1 400")
    assert b"RequestHeaderSectionTooLarge" in resp
    assert send_raw(raw, b"NOT-HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
    alive(s3)


def _streaming_put(raw: Any, s3d: Any, path: str, data: bytes, chunk: int = 64 * 1024,
                   trailer: dict[str, str] | None = None, cut: int = 0) -> tuple[dict[str, str], bytes]:
    """A signed aws-chunked PUT; `cut` drops that many bytes off the end (and says so in
    Content-Length, so only the framing is wrong)."""
    amz_date = now_amz()
    headers = {"host": raw.netloc, "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    mode = STREAMING + ("-TRAILER" if trailer else "")
    if trailer:
        headers["x-amz-trailer"] = next(iter(trailer))
    body_len = len(aws_chunked(data, chunk, "0" * 64, s3d.secret_key, amz_date, trailer))
    headers["content-length"] = str(body_len - cut)
    h = sign_v4("PUT", path, headers, mode, s3d.access_key, s3d.secret_key, amz_date)
    seed = h.pop("_signature")
    body = aws_chunked(data, chunk, seed, s3d.secret_key, amz_date, trailer)
    return h, body[: len(body) - cut]


def test_signed_streaming_upload_stores_only_payload(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    h, body = _streaming_put(raw, s3d, f"/{bucket}/chunked", data)
    status, _, resp = raw.request("PUT", f"/{bucket}/chunked", body, headers=h, sign=False)
    assert status == 200, resp
    g = s3.get_object(Bucket=bucket, Key="chunked")
    assert g["Body"].read() == data
    assert "ContentEncoding" not in g
    import base64

    from awscrt import checksums

    crc = base64.b64encode(checksums.crc32c(data).to_bytes(4, "big")).decode()
    h, body = _streaming_put(raw, s3d, f"/{bucket}/trailer", data, trailer={"x-amz-checksum-crc32c": crc})
    status, _, resp = raw.request("PUT", f"/{bucket}/trailer", body, headers=h, sign=False)
    assert status == 200, resp
    g = s3.get_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert g["Body"].read() == data
    assert g["ChecksumCRC32C"] == crc


def test_streaming_bad_chunk_signature_and_truncation(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="victim", Body=b"original")
    data = os.urandom(200_000)
    h, body = _streaming_put(raw, s3d, f"/{bucket}/victim", data)
    corrupt = bytearray(body)
    corrupt[100_000] ^= 0xFF
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", bytes(corrupt), headers=h, sign=False)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    # complete HTTP body, but the aws-chunked framing stops before its final chunk
    final_chunk = len(b"0;chunk-signature=") + 64 + 4
    h, cut = _streaming_put(raw, s3d, f"/{bucket}/victim", data, cut=final_chunk)
    assert cut.endswith(b"\r\n")
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", cut, headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "IncompleteBody")
    # the final (empty) chunk's signature is checked too
    h, body = _streaming_put(raw, s3d, f"/{bucket}/victim", data)
    final = body.rindex(b"0;chunk-signature=") + len(b"0;chunk-signature=")
    forged = body[:final] + b"f" * 64 + body[final + 64:]
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", forged, headers=h, sign=False)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"original"


def test_disconnect_mid_upload_leaves_nothing(raw: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="victim", Body=b"original")
    for key in ("victim", "fresh"):
        body = os.urandom(8 * 1024 * 1024)
        head = raw.head("PUT", f"/{bucket}/{key}", body, length=len(body))
        send_raw(raw, head + body[: 3 * 1024 * 1024], read=False)
    # cut short: neither upload is ever committed, whenever the daemon notices the closed connections
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"original"
    assert raw.request("HEAD", f"/{bucket}/fresh")[0] == 404
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["victim"]
    alive(s3)


def test_expect_100_continue(raw: Any, s3: Any, bucket: str) -> None:
    body = b"z" * 100_000
    # refused on its headers: the final status comes instead of 100 and no body is needed
    head = raw.head("PUT", "/no-such-bucket-x/k", body, {"Expect": "100-continue"}, length=len(body))
    s = socket.create_connection((raw.host, raw.port), timeout=10)
    s.sendall(head)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 404 Not Found")
    s.close()
    # accepted: 100 Continue, then the body, then 200
    head = raw.head("PUT", f"/{bucket}/k", body, {"Expect": "100-continue"}, length=len(body))
    s = socket.create_connection((raw.host, raw.port), timeout=10)
    s.sendall(head)
    assert s.recv(65536).startswith(b"HTTP/1.1 100")
    s.sendall(body)
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    s.close()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body


def test_keep_alive_and_http_chunked_body(raw: Any, s3: Any, bucket: str) -> None:
    c = raw.conn()
    for i in range(3):
        h = raw.sign("PUT", f"/{bucket}/ka{i}", b"v" * i)
        c.request("PUT", f"/{bucket}/ka{i}", body=b"v" * i, headers=h)
        r = c.getresponse()
        r.read()
        assert r.status == 200
    # signed payload hash, chunked transfer: the size is declared as AWS requires (else 411)
    h = raw.sign("PUT", f"/{bucket}/te", b"hello chunked world", {"x-amz-decoded-content-length": "19"})
    c.putrequest("PUT", f"/{bucket}/te", skip_accept_encoding=True)
    for k, v in h.items():
        if k.lower() != "content-length":
            c.putheader(k, v)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for piece in (b"hello ", b"chunked ", b"world"):
        c.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    r.read()
    assert r.status == 200
    c.close()
    assert s3.get_object(Bucket=bucket, Key="te")["Body"].read() == b"hello chunked world"


def test_unknown_method_and_subresources(raw: Any, bucket: str) -> None:
    status, _, resp = raw.request("PATCH", f"/{bucket}/k")
    assert (status, error_code(resp)) == (405, "MethodNotAllowed")
    status, _, resp = raw.request("GET", f"/{bucket}?accelerate")
    assert (status, error_code(resp)) == (501, "NotImplemented")


@pytest.mark.parametrize("size", [b"0x10000", b"+10000", b"1_0000", b"00000000000000010000"])
def test_streaming_chunk_size_must_be_hex_digits(raw: Any, s3d: Any, s3: Any, bucket: str, size: bytes) -> None:
    """A chunk signature covers the chunk's data, not its size line: a size Python's int(_, 16)
    reads but that is not plain hex (a 0x prefix, a sign, an underscore, more digits than any
    size needs) was taken, and the upload stored."""
    s3.put_object(Bucket=bucket, Key="victim", Body=b"original")
    data = os.urandom(100_000)
    amz_date = now_amz()
    framed = len(aws_chunked(data, 64 * 1024, "0" * 64, s3d.secret_key, amz_date))
    headers = {"host": raw.netloc, "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "content-length": str(framed - len(b"10000") + len(size))}
    h = sign_v4("PUT", f"/{bucket}/victim", headers, STREAMING, s3d.access_key, s3d.secret_key, amz_date)
    body = aws_chunked(data, 64 * 1024, h.pop("_signature"), s3d.secret_key, amz_date)
    assert body.startswith(b"10000;")
    body = size + body[len(b"10000"):]
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", body, headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "InvalidRequest"), resp
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"original"


def test_trailer_not_announced_in_x_amz_trailer_is_refused(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    """x-amz-trailer can announce only a checksum; a trailer of another name was ignored."""
    amz_date = now_amz()
    data = b"0123456789"
    for trailers, announced in ((b"x-amz-meta-evil:1\r\n", {}),
                                (b"x-amz-meta-evil:1\r\n", {"x-amz-trailer": "x-amz-meta-evil"}),
                                (b"x-evil:1\r\n", {})):
        headers = {"host": raw.netloc, "content-encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(data)), **announced}
        body = b"a\r\n" + data + b"\r\n0\r\n" + trailers + b"\r\n"
        headers["content-length"] = str(len(body))
        h = sign_v4("PUT", f"/{bucket}/t", headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", s3d.access_key,
                    s3d.secret_key, amz_date)
        h.pop("_signature")
        status, _, resp = raw.request("PUT", f"/{bucket}/t", body, headers=h, sign=False)
        assert (status, error_code(resp)) == (400, "InvalidRequest"), resp
    assert raw.request("HEAD", f"/{bucket}/t")[0] == 404


def test_chunks_under_8_kib_before_the_last_are_refused(raw: Any, s3d: Any, s3: Any, bucket: str) -> None:
    """AWS refuses a chunk under 8 KiB that is not the last (InvalidChunkSizeError); taken, a
    body of tiny chunks costs a signature check per few bytes. The last may be smaller."""
    s3.put_object(Bucket=bucket, Key="victim", Body=b"original")
    h, body = _streaming_put(raw, s3d, f"/{bucket}/victim", os.urandom(20_000), chunk=4096)
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", body, headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "InvalidChunkSizeError"), resp
    assert b"<Chunk>1</Chunk><BadChunkSize>4096</BadChunkSize>" in resp
    # the unsigned kind (what SDKs send over TLS) too
    amz_date = now_amz()
    data = b"x" * 10_000
    framed = b"10\r\n" + data[:16] + b"\r\n" + f"{len(data) - 16:x}\r\n".encode() + data[16:] + b"\r\n0\r\n\r\n"
    headers = {"host": raw.netloc, "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "content-length": str(len(framed))}
    h = sign_v4("PUT", f"/{bucket}/victim", headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", s3d.access_key,
                s3d.secret_key, amz_date)
    h.pop("_signature")
    status, _, resp = raw.request("PUT", f"/{bucket}/victim", framed, headers=h, sign=False)
    assert (status, error_code(resp)) == (400, "InvalidChunkSizeError"), resp
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"original"
    # 8 KiB chunks and a smaller last one are what clients send
    data = os.urandom(20_000)
    h, body = _streaming_put(raw, s3d, f"/{bucket}/victim", data, chunk=8192)
    assert raw.request("PUT", f"/{bucket}/victim", body, headers=h, sign=False)[0] == 200
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == data

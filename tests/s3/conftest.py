"""S3 test fixtures: one real daemon per test module (starting one per test would dominate the
suite's time), a boto3 client, fresh buckets, and a raw signed-request helper for malformed input."""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import create_test_bucket, running

_spec = importlib.util.spec_from_file_location("stowage_tests_root", Path(__file__).parent.parent / "conftest.py")
assert _spec and _spec.loader
_root = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(_root, "DaemonProc"):
    _spec.loader.exec_module(_root)
DaemonProc = _root.DaemonProc



@pytest.fixture(scope="module")
def s3d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    d = DaemonProc(tmp_path_factory.mktemp("s3") / "data", ["--no-mount"])
    with running(d):
        yield d


@pytest.fixture(scope="module")
def s3(s3d: Any) -> Any:
    return s3d.s3()


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    return create_test_bucket(s3, request, "t")


# The subresources whose documents S3 refuses without Content-MD5 or an x-amz-checksum-* value
_DIGEST_SUBRESOURCES = frozenset({"delete", "lifecycle", "object-lock", "retention", "legal-hold"})


def _digest_required(path: str) -> bool:
    query = urlsplit(path).query
    return any(field.partition("=")[0] in _DIGEST_SUBRESOURCES for field in query.split("&"))


class Raw:
    """Signed (or deliberately broken) HTTP requests straight to the gateway."""

    def __init__(self, d: Any) -> None:
        self.d = d
        u = urlsplit(d.endpoint)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.netloc = u.netloc

    def sign(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             secret: str | None = None, digest: bool = True) -> dict[str, str]:
        """`digest`: send Content-MD5 where S3 requires a digest of the body, as every SDK does
        (unless the caller sent a digest of its own)."""
        headers = dict(headers or {})
        if digest and _digest_required(path) and not any(
                k.lower() == "content-md5" or k.lower().startswith("x-amz-checksum-") for k in headers):
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        req = AWSRequest(method=method, url=f"http://{self.netloc}{path}", data=body, headers=headers)
        S3SigV4Auth(Credentials(self.d.access_key, secret or self.d.secret_key), "s3", "us-east-1").add_auth(req)
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in req.headers.items()}

    def head(self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None,
             length: int | None = None) -> bytes:
        """A signed request head for raw sockets, with the Content-Length we choose."""
        h = {k: v for k, v in self.sign(method, path, body, headers).items() if k.lower() != "content-length"}
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}", *(f"{k}: {v}" for k, v in h.items())]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                sign: bool = True, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        h = self.sign(method, path, body, headers, **kw) if sign else dict(headers or {})
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


@pytest.fixture(scope="module")
def raw(s3d: Any) -> Raw:
    return Raw(s3d)


def error_code(body: bytes) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Code") or ""


def sign_v4(method: str, path: str, headers: dict[str, str], payload_hash: str, access_key: str, secret: str,
            amz_date: str, raw_query: str = "") -> dict[str, str]:
    """Sign with the primitives test_sigv4_unit checks against botocore and AWS's vectors, for
    requests botocore cannot make (chosen dates, aws-chunked bodies)."""
    from s3gw.sigv4 import canonical_headers, canonical_query, sign, signing_key, string_to_sign, uri_encode

    h = {k.lower(): v for k, v in headers.items()}
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = payload_hash
    names = sorted(h)
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    creq = (f"{method}\n{uri_encode(path, keep_slash=True)}\n{canonical_query(raw_query, drop_signature=False)}\n"
            f"{canonical_headers(h, names)}\n{';'.join(names)}\n{payload_hash}")
    key = signing_key(secret, amz_date[:8], "us-east-1", "s3")
    sig = sign(key, string_to_sign(amz_date, scope, creq))
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                          f"Signature={sig}")
    h["_signature"] = sig
    return h


def aws_chunked(data: bytes, chunk: int, seed: str, secret: str, amz_date: str,
                trailer: dict[str, str] | None = None) -> bytes:
    """An aws-chunked body for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), signed chunk by chunk."""
    import hashlib

    from s3gw.chunked import chunk_string_to_sign, trailer_string_to_sign
    from s3gw.sigv4 import AuthResult, sign, signing_key

    key = signing_key(secret, amz_date[:8], "us-east-1", "s3")
    auth = AuthResult("", "", seed, amz_date, f"{amz_date[:8]}/us-east-1/s3/aws4_request", key, False)
    out = bytearray()
    prev = seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for p in pieces:
        prev = sign(key, chunk_string_to_sign(auth, prev, hashlib.sha256(p).hexdigest()))
        out += f"{len(p):x};chunk-signature={prev}\r\n".encode() + p + b"\r\n"
    if trailer is None:
        return bytes(out)
    out = out[:-2]  # after the final chunk's header line come the trailer lines, not a CRLF
    text = "".join(f"{k}:{v}\n" for k, v in trailer.items())
    tsig = sign(key, trailer_string_to_sign(auth, prev, text))
    out += text.replace("\n", "\r\n").encode() + f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out)

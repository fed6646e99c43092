"""S3 test fixtures: one real daemon per test module (starting one per test would dominate the
suite's time), a boto3 client, fresh buckets, and a raw signed-request helper for malformed input."""

from __future__ import annotations

import http.client
import importlib.util
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_spec = importlib.util.spec_from_file_location("stowage_tests_root", Path(__file__).parent.parent / "conftest.py")
assert _spec and _spec.loader
_root = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(_root, "DaemonProc"):
    _spec.loader.exec_module(_root)
DaemonProc = _root.DaemonProc

_names = itertools.count()


@pytest.fixture(scope="module")
def s3d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    d = DaemonProc(tmp_path_factory.mktemp("s3") / "data", ["--no-mount"])
    d.start()
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


@pytest.fixture(scope="module")
def s3(s3d: Any) -> Any:
    return s3d.s3()


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = f"t{next(_names)}-{request.node.name[:30].lower().replace('_', '-').strip('-[]')}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")[:60]
    s3.create_bucket(Bucket=name)
    return name


class Raw:
    """Signed (or deliberately broken) HTTP requests straight to the gateway."""

    def __init__(self, d: Any) -> None:
        self.d = d
        u = urlsplit(d.endpoint)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.netloc = u.netloc

    def sign(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             secret: str | None = None) -> dict[str, str]:
        req = AWSRequest(method=method, url=f"http://{self.netloc}{path}", data=body, headers=headers or {})
        S3SigV4Auth(Credentials(self.d.access_key, secret or self.d.secret_key), "s3", "us-east-1").add_auth(req)
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in req.headers.items()}

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

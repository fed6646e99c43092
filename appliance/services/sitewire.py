"""Site replication on the wire: JSON documents POSTed to a peer's `/_stowage/v1/site/<op>` on
its S3 port, SigV4-signed (service "s3", the body's SHA-256 signed in x-amz-content-sha256) with
the key this box holds for the peer; the peer authorizes `stowage:SiteReplicate`.

    join     {"name", "url", "access_key", "wrapped_secret", "root_canonical_id", "region", "tls_verify"}
             -> {"name", "root_canonical_id"}
    changes  {"origin", "changes": [{"key", "value", "hlc", "origin", "prev"}, ...]}
             -> {"applied", "conflicts"}
    leave    {"origin"} -> {"name"}: the origin left the site (`stowage site remove` there)
    introduce {"name", "url", "access_key", "wrapped_secret", "region", "tls_verify", "self_url"}
             -> {"name", "joined"}: join the named peer of the caller (with the key the caller
             holds for it), so that every pair of the site is joined

Secrets travel wrapped by the master key the boxes of a site share (never in plain text), inside
SigV4 and, with an https:// URL, TLS. `parse_*` check every field of what a peer sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.credentials
import trio
import urllib3
from botocore.awsrequest import AWSRequest

from appliance.engine.errors import StowageError
from appliance.engine.records import SiteChange

PATH = "/_stowage/v1/site/"
ACTION = "stowage:SiteReplicate"
MAX_BODY = 16 << 20
MAX_CHANGES = 1000
MAX_NAME = 64
MAX_TEXT = 4096


class SiteError(StowageError):
    """A site operation failed; `transient`: a later attempt may succeed."""

    code = "SiteError"

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BadDocument(ValueError):
    """A peer's document is not what the protocol says (400)."""


def _text(doc: dict[str, Any], name: str, limit: int = MAX_TEXT, empty: bool = False) -> str:
    v = doc.get(name)
    if not isinstance(v, str) or len(v) > limit or (not v and not empty):
        raise BadDocument(f"{name}: expected a string of at most {limit} characters")
    return v


def _int(doc: dict[str, Any], name: str, low: int = 0) -> int:
    v = doc.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v < 1 << 63:
        raise BadDocument(f"{name}: expected an integer")
    return v


def _b64(doc: dict[str, Any], name: str, limit: int) -> str:
    v = _text(doc, name, limit)
    try:
        base64.b64decode(v, validate=True)
    except binascii.Error:
        raise BadDocument(f"{name}: not base64") from None
    return v


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048 or parts.query:
        raise SiteError(f"{url!r}: expected an http:// or https:// URL of a Stowage S3 endpoint")
    return url.rstrip("/")


def load(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadDocument("not JSON") from None
    if not isinstance(doc, dict):
        raise BadDocument("expected a JSON object")
    return doc


@dataclass(frozen=True)
class JoinRequest:
    name: str
    url: str
    access_key: str
    wrapped_secret: str
    root_canonical_id: str
    region: str = "us-east-1"  # the site's SigV4 region, and whether its certificates are verified
    tls_verify: bool = True


def parse_join(doc: dict[str, Any]) -> JoinRequest:
    url = _text(doc, "url", 2048)
    try:
        check_url(url)
    except SiteError as exc:
        raise BadDocument(str(exc)) from None
    verify = doc.get("tls_verify", True)
    if not isinstance(verify, bool):
        raise BadDocument("tls_verify: expected true or false")
    region = _text(doc, "region", 64) if "region" in doc else "us-east-1"
    return JoinRequest(_text(doc, "name", MAX_NAME), url, _text(doc, "access_key", 128),
                       _b64(doc, "wrapped_secret", 1024), _text(doc, "root_canonical_id", 128, empty=True), region,
                       verify)


def parse_changes(doc: dict[str, Any]) -> tuple[str, list[SiteChange]]:
    origin = _text(doc, "origin", MAX_NAME)
    raw = doc.get("changes")
    if not isinstance(raw, list) or len(raw) > MAX_CHANGES:
        raise BadDocument(f"changes: expected a list of at most {MAX_CHANGES}")
    out = []
    for c in raw:
        if not isinstance(c, dict):
            raise BadDocument("a change: expected an object")
        value = None if c.get("value") is None else _b64(c, "value", MAX_BODY)
        out.append(SiteChange(_b64(c, "key", 2048), value, _int(c, "hlc", 1), _text(c, "origin", MAX_NAME),
                              _int(c, "prev", -1)))
    return origin, out


@dataclass(frozen=True)
class Introduction:
    name: str  # a peer of the caller, to be joined
    url: str
    access_key: str  # the key the caller holds for it, its secret wrapped by the master key
    wrapped_secret: str
    region: str
    tls_verify: bool
    self_url: str  # the URL of the box introduced, as the caller reaches it


def parse_introduce(doc: dict[str, Any]) -> Introduction:
    urls = [_text(doc, n, 2048) for n in ("url", "self_url")]
    try:
        for u in urls:
            check_url(u)
    except SiteError as exc:
        raise BadDocument(str(exc)) from None
    verify = doc.get("tls_verify", True)
    if not isinstance(verify, bool):
        raise BadDocument("tls_verify: expected true or false")
    return Introduction(_text(doc, "name", MAX_NAME), urls[0], _text(doc, "access_key", 128),
                        _b64(doc, "wrapped_secret", 1024), _text(doc, "region", 64), verify, urls[1])


def parse_leave(doc: dict[str, Any]) -> str:
    return _text(doc, "origin", MAX_NAME)


def change_json(ch: SiteChange) -> dict[str, Any]:
    return {"key": ch.key, "value": ch.value, "hlc": ch.hlc, "origin": ch.origin, "prev": ch.prev}


@dataclass
class PeerClient:
    """Signed calls to one peer's site endpoint (blocking urllib3, run in worker threads)."""

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    tls_verify: bool = True
    _pool: urllib3.PoolManager | None = field(default=None, repr=False)

    def call(self, op: str, doc: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        body = json.dumps(doc, separators=(",", ":")).encode()
        req = AWSRequest(method="POST", url=self.url + PATH + op, data=body,
                         headers={"Content-Type": "application/json"})
        creds = botocore.credentials.Credentials(self.access_key, self.secret_key)
        botocore.auth.S3SigV4Auth(creds, "s3", self.region).add_auth(req)
        if self._pool is None:
            self._pool = urllib3.PoolManager(maxsize=2, cert_reqs="CERT_REQUIRED" if self.tls_verify else "CERT_NONE")
        try:
            r = self._pool.request("POST", req.url, body=body, headers=dict(req.headers.items()),
                                   timeout=urllib3.Timeout(connect=5, read=timeout), retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise SiteError(f"{op}: {self.url}: {exc}", transient=True) from None
        if r.status != 200:
            text = r.data[:300].decode(errors="replace").strip()
            raise SiteError(f"{op}: {self.url} answered {r.status}: {text}", transient=r.status >= 500)
        try:
            return load(r.data)
        except BadDocument as exc:
            raise SiteError(f"{op}: {self.url}: {exc}", transient=True) from None

    async def acall(self, op: str, doc: dict[str, Any]) -> dict[str, Any]:
        return await trio.to_thread.run_sync(lambda: self.call(op, doc), abandon_on_cancel=True)

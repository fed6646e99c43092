"""The gateway against a hostile client: each test reproduces a hole that was found by trying
(issue 10, "Gateway hardening") and checks that it stays closed.

The module's default daemon (s3d), and `limited`, configured with a short header deadline,
small connection caps and a 1 MiB object-size cap, so that the limits can be reached without
sending gigabytes or waiting minutes. Raw sockets are used wherever a
client library would hide the behaviour (header timing, header size, source addresses)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import select
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import REPO, STOWAGE, running

from .conftest import DaemonProc, aws_chunked, error_code, sign_v4
from .test_malformed import STREAMING, now_amz

OTHER_REGION = "eu-west-3"
GIVE_UP = 30.0  # seconds after which a connection the server should have closed fails the test


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("limited")
    config = base / "stowage.toml"
    config.write_text("[s3]\nheader_timeout = 3.0\nmax_connections = 10\nmax_connections_per_client = 4\n"
                      "max_object_size = 1048576\n")
    d = DaemonProc(base / "data", ["--no-mount", "--config", str(config)])
    with running(d):
        yield d


def _client(d: Any, region: str) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                        aws_secret_access_key=d.secret_key, region_name=region,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def _addr(d: Any) -> tuple[str, int]:
    u = urlsplit(d.endpoint)
    return u.hostname or "127.0.0.1", u.port or 80


def _signed(d: Any, method: str, path: str, region: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> dict[str, str]:
    host, port = _addr(d)
    req = AWSRequest(method=method, url=f"http://{host}:{port}{path}", data=body, headers=headers or {})
    S3SigV4Auth(Credentials(d.access_key, d.secret_key), "s3", region).add_auth(req)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in req.headers.items()}


def _request(d: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = _addr(d)
    c = http.client.HTTPConnection(host, port, timeout=30, source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def _read_until_closed(s: socket.socket, give_up: float = GIVE_UP) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    out = b""
    deadline = time.monotonic() + give_up
    while time.monotonic() < deadline:
        readable, _, _ = select.select([s], [], [], 0.5)
        if not readable:
            continue
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data
    raise AssertionError(f"the server kept the connection open for {give_up}s; got {out[:200]!r}")


def _xml_field(body: bytes, name: str) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext(name) or ""


# --- 1. presigned URLs: every x-amz-* header must be signed ------------------------------------


@pytest.mark.parametrize("extra", [
    "x-amz-copy-source",  # would turn the presigned PUT into a CopyObject of another object
    "x-amz-meta-owner",
    "x-amz-tagging",
    "x-amz-storage-class",
])
def test_presigned_put_refuses_unsigned_amz_headers(s3d: Any, s3: Any, bucket: str, extra: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"not for the URL's holder")
    presigner = s3d.s3(signature_version="s3v4")
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "upload"}, ExpiresIn=300)
    u = urlsplit(url)
    value = {"x-amz-copy-source": f"/{bucket}/secret", "x-amz-meta-owner": "mallory",
             "x-amz-tagging": "stolen=yes", "x-amz-storage-class": "STANDARD_IA"}[extra]
    status, _, body = _request(s3d, "PUT", f"{u.path}?{u.query}", b"hello", {extra: value})
    assert (status, error_code(body)) == (403, "AccessDenied")
    assert _xml_field(body, "Message") == "There were headers present in the request which were not signed"
    assert _xml_field(body, "HeadersNotSigned") == extra
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="upload")
    assert exc.value.response["Error"]["Code"] == "404"
    # the URL itself still works, and stores exactly what its signer allowed
    status, _, body = _request(s3d, "PUT", f"{u.path}?{u.query}", b"hello")
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="upload")
    assert got["Body"].read() == b"hello" and got["Metadata"] == {} and "TagCount" not in got


# --- 2. slowloris: one deadline for the request head; a cap per client address ----------------


def test_trickled_request_head_is_cut_at_the_header_deadline(limited: Any) -> None:
    """One byte every 0.2 s used to hold a connection for ever (the timeout was per read)."""
    s = socket.create_connection(_addr(limited), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        out: bytes | None = None
        deadline = time.monotonic() + GIVE_UP
        while out is None and time.monotonic() < deadline:
            readable, _, _ = select.select([s], [], [], 0.2)
            if readable:
                out = _read_until_closed(s)
                break
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                out = b""
        assert out is not None, f"a client trickling its headers was not cut off in {GIVE_UP}s"
        if out:  # a partial head hears why before the close
            assert out.startswith(b"HTTP/1.1 400"), out[:100]
            assert error_code(out.split(b"\r\n\r\n", 1)[1]) == "RequestTimeout"
    finally:
        s.close()
    # a connection that never sends anything is closed too, without a word
    s = socket.create_connection(_addr(limited), timeout=10)
    try:
        assert _read_until_closed(s) == b""
    finally:
        s.close()


def _connect_from(d: Any, source: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(_addr(d))
    return s


def test_one_client_cannot_take_every_connection(limited: Any) -> None:
    """A client at 127.0.0.2 opening more connections than the global cap (each trickling its
    head) is held to its own cap; a client at 127.0.0.3 is served meanwhile, not told 503."""
    held: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(12):  # more than max_connections = 10
            s = _connect_from(limited, "127.0.0.2")
            s.sendall(b"GET / HTTP/1.1\r\n")
            held.append(s)
            readable, _, _ = select.select([s], [], [], 0.1)
            if readable:
                data = _read_until_closed(s)
                if data.startswith(b"HTTP/1.1 503"):
                    assert error_code(data.split(b"\r\n\r\n", 1)[1]) == "SlowDown"
                    refused += 1
        assert refused >= 12 - 4  # max_connections_per_client = 4
        status, _, body = _request(limited, "GET", "/", headers=_signed(limited, "GET", "/", "us-east-1"),
                                   source="127.0.0.3")
        assert status == 200, body
    finally:
        for s in held:
            s.close()


# --- 3. the data directory is private -----------------------------------------------------------


def _open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.filemode(mode)}")
    return found


def test_data_directory_and_everything_in_it_is_private(daemon_factory: Any, tmp_path: Path) -> None:
    """LevelDB files (every user's secret), shard files (every object), credentials, run files
    and the control socket: nothing readable by group or others, whatever umask started us."""
    old = os.umask(0o022)  # what a login shell has
    try:
        d = daemon_factory(["--no-mount"], name="private")
        s3 = d.s3()
        s3.create_bucket(Bucket="private")
        s3.put_object(Bucket="private", Key="small", Body=b"secret bytes")
        s3.put_object(Bucket="private", Key="large", Body=os.urandom(3 * 1024 * 1024))
        d.cli("user", "add", "alice")  # a secret written by the daemon
        assert (d.data_dir / "run" / "daemon.json").exists() and (d.data_dir / "control.sock").exists()
        assert sum(1 for p in (d.data_dir / "disks").rglob("*") if p.is_file()) > 6, "no shard files"
        assert _open_to_others(d.data_dir) == []
        d.stop()
        d.cli("user", "add", "bob")  # offline: the CLI writes the DB itself
        assert _open_to_others(d.data_dir) == []
        fresh = tmp_path / "offline"  # but makes no appliance where there is none (the daemon does)
        r = subprocess.run([*STOWAGE, "user", "add", "carol", "--data", str(fresh)], capture_output=True,
                           text=True, cwd=REPO)
        assert r.returncode != 0 and "no appliance at" in r.stderr, r.stderr
        assert not fresh.exists() or not any(fresh.rglob("*"))
    finally:
        os.umask(old)


# --- 4. XML: no DOCTYPE, no entities ------------------------------------------------------------


LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1 or "") + ";") * 10}">'.encode() for i in range(1, 10))
          + b"]>\n")


@pytest.mark.parametrize("op", ["DeleteObjects", "CompleteMultipartUpload", "PutBucketVersioning",
                                "PutObjectTagging"])
def test_xml_with_a_doctype_is_refused(s3d: Any, s3: Any, raw: Any, bucket: str, op: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    method, path, doc = {
        "DeleteObjects": ("POST", f"/{bucket}?delete", b"<Delete><Object><Key>%s</Key></Object></Delete>"),
        "CompleteMultipartUpload": ("POST", f"/{bucket}/m?uploadId={quote(uid)}",
                                    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                                    b"<ETag>%s</ETag></Part></CompleteMultipartUpload>"),
        "PutBucketVersioning": ("PUT", f"/{bucket}?versioning",
                                b"<VersioningConfiguration><Status>%s</Status></VersioningConfiguration>"),
        "PutObjectTagging": ("PUT", f"/{bucket}/k?tagging",
                             b"<Tagging><TagSet><Tag><Key>a</Key><Value>%s</Value></Tag></TagSet></Tagging>"),
    }[op]
    bodies = [
        LAUGHS + doc % b"&lol9;",  # ~10^9 bytes once expanded
        b'<!DOCTYPE d [<!ENTITY e "Enabled">]>' + doc % b"&e;",  # harmless-looking, still no
        b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + doc % b"&e;",
        b"<!DOCTYPE d>" + doc % b"Enabled",
    ]
    for body in bodies:
        status, _, resp = raw.request(method, path, body)
        assert (status, error_code(resp)) == (400, "MalformedXML"), (body[:60], resp)
    # nothing was acted on
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"] == uid
    # the same documents without a DOCTYPE are fine
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


# --- 5. the header-size cap covers the whole header block ---------------------------------------


def test_whole_header_block_over_the_cap_is_refused(raw: Any, s3: Any) -> None:
    """70 KB of headers arriving at once were parsed: h11 caps only a head still incomplete."""
    for size, refused in ((60_000, False), (70_000, True)):
        head = f"GET / HTTP/1.1\r\nHost: {raw.netloc}\r\nX-Big: {'a' * size}\r\n\r\n".encode()
        s = socket.create_connection((raw.host, raw.port), timeout=10)
        try:
            s.sendall(head)
            if refused:
                out = _read_until_closed(s)
                assert out.startswith(b"HTTP/1.1 400"), out[:100]
                assert error_code(out.split(b"\r\n\r\n", 1)[1]) == "RequestHeaderSectionTooLarge"
                assert b"Connection: close" in out.split(b"\r\n\r\n", 1)[0]
            else:  # under the cap: an ordinary (unsigned, so refused) request
                out = s.recv(65536)
                assert out.startswith(b"HTTP/1.1 403"), out[:100]
        finally:
            s.close()
    s3.list_buckets()


# --- 6. object bodies: a length is required, the size cap holds while streaming -----------------


def _chunked(data: bytes, piece: int = 64 * 1024) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece])
                   for i in range(0, len(data), piece))
    return out + b"0\r\n\r\n"


def _send(d: Any, head: bytes, body: bytes) -> bytes:
    s = socket.create_connection(_addr(d), timeout=30)
    try:
        s.sendall(head)
        # refused before the body was read: the response is what matters
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(body)
        return _read_until_closed(s)
    finally:
        s.close()


def _head(d: Any, method: str, path: str, headers: dict[str, str]) -> bytes:
    host, port = _addr(d)
    if not any(k.lower() == "host" for k in headers):
        headers = {"Host": f"{host}:{port}", **headers}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_put_and_upload_part_without_a_length_get_411(s3d: Any, s3: Any, bucket: str) -> None:
    data = os.urandom(100_000)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    for path in (f"/{bucket}/no-length", f"/{bucket}/mp?partNumber=1&uploadId={quote(uid)}"):
        h = {k: v for k, v in _signed(s3d, "PUT", path, "us-east-1", data).items() if k.lower() != "content-length"}
        out = _send(s3d, _head(s3d, "PUT", path, {**h, "Transfer-Encoding": "chunked"}), _chunked(data))
        assert out.startswith(b"HTTP/1.1 411"), out[:200]
        assert error_code(out.split(b"\r\n\r\n", 1)[1]) == "MissingContentLength"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="no-length")
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid).get("Parts", []) == []


def test_object_size_cap_is_configurable_and_holds_while_streaming(limited: Any) -> None:
    s3 = limited.s3()
    s3.create_bucket(Bucket="capped")
    cap = 1024 * 1024  # s3.max_object_size
    s3.put_object(Bucket="capped", Key="at-cap", Body=os.urandom(cap))
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="capped", Key="over", Body=os.urandom(cap + 1))
    assert exc.value.response["Error"]["Code"] == "EntityTooLarge"
    host, port = _addr(limited)
    data = os.urandom(3 * cap)
    for key, declared in (("big", 2 * cap), ("liar", cap // 2)):
        # aws-chunked inside HTTP chunked: no Content-Length at all, only the declared decoded
        # length; over the cap it is refused at once, under it the body is cut where it passes it
        amz_date = now_amz()
        headers = {"host": f"{host}:{port}", "content-encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(declared)}
        h = sign_v4("PUT", f"/capped/{key}", headers, STREAMING, limited.access_key, limited.secret_key, amz_date)
        body = aws_chunked(data, 64 * 1024, h.pop("_signature"), limited.secret_key, amz_date)
        out = _send(limited, _head(limited, "PUT", f"/capped/{key}", {**h, "Transfer-Encoding": "chunked"}),
                    _chunked(body))
        assert out.startswith(b"HTTP/1.1 400"), out[:200]
        code = error_code(out.split(b"\r\n\r\n", 1)[1])
        assert code == ("EntityTooLarge" if declared > cap else "InvalidRequest"), out
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="capped").get("Contents", [])] == ["at-cap"]


def test_copy_source_over_the_object_size_cap_is_refused(daemon_factory: Any, tmp_path: Path) -> None:
    """AWS copies at most 5 GiB in one request: CopyObject of a larger source, and an
    UploadPartCopy of a larger range, are 400 InvalidRequest; a bigger object is copied by a
    multipart copy of ranges. The same s3.max_object_size bounds both here: the objects are
    written under a 3 MiB cap, which the restarted daemon lowers to 1 MiB."""
    cap = 1024 * 1024
    config = tmp_path / "copycap.toml"
    config.write_text(f"[s3]\nmax_object_size = {3 * cap}\n")
    d = daemon_factory(["--no-mount", "--config", str(config)], name="copycap")
    s3 = d.s3()
    s3.create_bucket(Bucket="copies")
    big, small = os.urandom(2 * cap), os.urandom(cap)
    s3.put_object(Bucket="copies", Key="big", Body=big)
    s3.put_object(Bucket="copies", Key="small", Body=small)
    config.write_text(f"[s3]\nmax_object_size = {cap}\n")
    d.restart()
    s3 = d.s3()
    message = f"The specified copy source is larger than the maximum allowable size for a copy source: {cap}"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket="copies", Key="copy", CopySource={"Bucket": "copies", "Key": "big"})
    assert exc.value.response["Error"]["Code"] == "InvalidRequest"
    assert exc.value.response["Error"]["Message"] == message
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    s3.copy_object(Bucket="copies", Key="copy", CopySource={"Bucket": "copies", "Key": "small"})  # at the cap: copied
    assert s3.get_object(Bucket="copies", Key="copy")["Body"].read() == small
    up = s3.create_multipart_upload(Bucket="copies", Key="mp")["UploadId"]
    for copy_range in (None, f"bytes=0-{cap}"):  # the whole source; one byte over the cap
        extra = {"CopySourceRange": copy_range} if copy_range else {}
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(Bucket="copies", Key="mp", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": "copies", "Key": "big"}, **extra)
        assert (exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]) == (
            "InvalidRequest", message)
    # the same source in ranges of at most the cap: what a client does with a large object
    # (1 MiB parts are under AWS's 5 MiB minimum for all but the last: the upload is not completed)
    source = {"Bucket": "copies", "Key": "big"}
    for n, first in ((1, 0), (2, cap)):
        s3.upload_part_copy(Bucket="copies", Key="mp", UploadId=up, PartNumber=n, CopySource=source,
                            CopySourceRange=f"bytes={first}-{first + cap - 1}")
    parts = s3.list_parts(Bucket="copies", Key="mp", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, cap), (2, cap)]
    s3.abort_multipart_upload(Bucket="copies", Key="mp", UploadId=up)


@pytest.mark.parametrize("bad", [b"zz\r\n", b"fffffffffffffffffffff\r\n", b"3\r\nabcdef\r\n"])
def test_malformed_chunked_framing_is_answered_400_and_closed(s3d: Any, s3: Any, bucket: str, bad: bytes) -> None:
    """A chunk size that is not one, past 64 bits, or a chunk longer than its size: the request
    is answered (400 InvalidRequest, Connection: close), not dropped without a word, and
    nothing is stored."""
    host, port = _addr(s3d)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"v")
    doc = b"<Delete><Object><Key>kept</Key></Object></Delete>"
    h = _signed(s3d, "POST", f"/{bucket}?delete", "us-east-1", doc,
                {"Content-MD5": base64.b64encode(hashlib.md5(doc).digest()).decode()})
    h = {k: v for k, v in h.items() if k.lower() != "content-length"}
    out = _send(s3d, _head(s3d, "POST", f"/{bucket}?delete", {**h, "Transfer-Encoding": "chunked"}),
                b"%x\r\n%s\r\n" % (10, doc[:10]) + bad)
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert b"Connection: close" in out.split(b"\r\n\r\n", 1)[0]
    assert error_code(out.split(b"\r\n\r\n", 1)[1]) == "InvalidRequest"

    data = os.urandom(70_000)
    amz_date = now_amz()
    headers = {"host": f"{host}:{port}", "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    h = sign_v4("PUT", f"/{bucket}/torn", headers, STREAMING, s3d.access_key, s3d.secret_key, amz_date)
    body = aws_chunked(data, 64 * 1024, h.pop("_signature"), s3d.secret_key, amz_date)
    out = _send(s3d, _head(s3d, "PUT", f"/{bucket}/torn", {**h, "Transfer-Encoding": "chunked"}),
                b"%x\r\n%s\r\n" % (1000, body[:1000]) + bad)
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert error_code(out.split(b"\r\n\r\n", 1)[1]) == "InvalidRequest"
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"v"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="torn")


# --- 7. the credential scope names the configured region ----------------------------------------


def test_credential_scope_must_name_the_configured_region(daemon_factory: Any, s3d: Any, tmp_path: Path) -> None:
    config = tmp_path / "region.toml"
    config.write_text(f'[s3]\nregion = "{OTHER_REGION}"\n')
    d = daemon_factory(["--no-mount", "--config", str(config)], name="region")
    status, _, body = _request(d, "GET", "/", headers=_signed(d, "GET", "/", "us-west-2"))
    assert (status, error_code(body)) == (400, "AuthorizationHeaderMalformed")
    assert _xml_field(body, "Message") == ("The authorization header is malformed; the region 'us-west-2' is wrong; "
                                           f"expecting '{OTHER_REGION}'")
    assert _xml_field(body, "Region") == OTHER_REGION
    # presigned: AWS names the query parameter instead of the header
    host, port = _addr(d)
    req = AWSRequest(method="GET", url=f"http://{host}:{port}/")
    S3SigV4QueryAuth(Credentials(d.access_key, d.secret_key), "s3", "us-east-1", expires=60).add_auth(req)
    status, _, body = _request(d, "GET", f"/?{urlsplit(req.url).query}")
    assert (status, error_code(body)) == (400, "AuthorizationQueryParametersError")
    assert _xml_field(body, "Message") == ("Error parsing the X-Amz-Credential parameter; the region 'us-east-1' "
                                           f"is wrong; expecting '{OTHER_REGION}'")
    # the configured region is accepted; the default configuration expects us-east-1
    assert _client(d, OTHER_REGION).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    status, _, body = _request(s3d, "GET", "/", headers=_signed(s3d, "GET", "/", OTHER_REGION))
    assert (status, error_code(body), _xml_field(body, "Region")) == (400, "AuthorizationHeaderMalformed", "us-east-1")


# --- 8. response-* overrides cannot inject headers ----------------------------------------------


@pytest.mark.parametrize("param,value", [
    ("response-content-type", "text/plain\r\nX-Injected: 1"),
    ("response-content-disposition", "attachment\nSet-Cookie: a=b"),
    ("response-cache-control", "no-cache\x00"),
    ("response-content-language", "\u20ac"),  # not ISO-8859-1
])
def test_response_override_with_control_characters_is_refused(raw: Any, s3: Any, bucket: str, param: str,
                                                               value: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    path = f"/{bucket}/k?{param}={quote(value, safe='')}"
    status, headers, body = raw.request("GET", path)
    assert (status, error_code(body)) == (400, "InvalidArgument"), body
    assert "x-injected" not in headers and "set-cookie" not in headers
    status, headers, body = raw.request("GET", f"/{bucket}/k?{param}=ok")
    assert status == 200 and body == b"data"


# --- 9. a plain-HTTP gateway on the network says so ---------------------------------------------


def test_plain_http_on_a_network_address_warns_once(daemon_factory: Any, s3d: Any, tmp_path: Path) -> None:
    # a network address serves HTTPS by default (appliance/tls.py); plain HTTP there must be asked for
    conf = tmp_path / "plain.toml"
    conf.write_text('[tls]\nmode = "off"\n')
    d = daemon_factory(["--no-mount", "--listen", "0.0.0.0:0", "--config", str(conf)], name="public")
    d.s3().list_buckets()
    d.stop()
    assert d.log_path is not None
    warnings = [line for line in d.log_path.read_text().splitlines() if "without TLS" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    assert s3d.log_path is not None and "without TLS" not in s3d.log_path.read_text()  # loopback: no warning

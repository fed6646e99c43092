"""A daemon configured with TLS, a virtual-host domain and a small connection cap.

Over HTTPS boto3 sends STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies with a CRC32 trailer by default:
the object must hold exactly the payload and the checksum must be verified and kept."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.tlscert import self_signed_cert

from .conftest import DaemonProc, error_code


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_cert(base)
    config = base / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\ndomain = "s3.local"\nmax_connections = 6\n')
    d = DaemonProc(base / "data", ["--no-mount", "--config", str(config)])
    d.start()
    d.cert = cert
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


def _client(d: Any) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                        aws_secret_access_key=d.secret_key, region_name="us-east-1", verify=str(d.cert),
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def test_https_put_uses_aws_chunked_trailer_and_stores_payload_only(tls_daemon: Any) -> None:
    assert tls_daemon.endpoint.startswith("https://")
    s3 = _client(tls_daemon)
    s3.create_bucket(Bucket="tls-bucket")
    seen: list[dict[str, str]] = []
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: seen.append(dict(request.headers)))
    data = os.urandom(3 * 1024 * 1024 + 11)
    r = s3.put_object(Bucket="tls-bucket", Key="obj", Body=data)
    sent = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in seen[0].items()}
    assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert "aws-chunked" in sent["content-encoding"]
    g = s3.get_object(Bucket="tls-bucket", Key="obj", ChecksumMode="ENABLED")
    assert g["Body"].read() == data
    assert g["ETag"] == r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert g["ChecksumCRC32"] == r["ChecksumCRC32"]
    assert "ContentEncoding" not in g
    uid = s3.create_multipart_upload(Bucket="tls-bucket", Key="mp")["UploadId"]
    part = s3.upload_part(Bucket="tls-bucket", Key="mp", UploadId=uid, PartNumber=1, Body=data)
    done = s3.complete_multipart_upload(Bucket="tls-bucket", Key="mp", UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket="tls-bucket", Key="mp")["Body"].read() == data
    assert done["Location"] == f"{tls_daemon.endpoint}/tls-bucket/mp"  # https, as it was sent


def test_virtual_hosted_style(tls_daemon: Any) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3 = _client(tls_daemon)
    s3.create_bucket(Bucket="vhost")
    s3.put_object(Bucket="vhost", Key="dir/file.txt", Body=b"virtual")
    port = int(tls_daemon.endpoint.rsplit(":", 1)[1])
    host = f"vhost.s3.local:{port}"
    req = AWSRequest(method="GET", url=f"https://{host}/dir/file.txt")
    S3SigV4Auth(Credentials(tls_daemon.access_key, tls_daemon.secret_key), "s3", "us-east-1").add_auth(req)
    ctx = ssl.create_default_context(cafile=str(tls_daemon.cert))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", "/dir/file.txt", headers={**dict(req.headers), "Host": host})
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"virtual")
    # a multipart upload completed through the bucket's host name: its Location names the
    # object on that host (the bucket is not in the path too, which names key "vhost/up")
    uid = s3.create_multipart_upload(Bucket="vhost", Key="up")["UploadId"]
    etag = s3.upload_part(Bucket="vhost", Key="up", UploadId=uid, PartNumber=1, Body=b"parts")["ETag"]
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>"
            "</CompleteMultipartUpload>").encode()
    req = AWSRequest(method="POST", url=f"https://{host}/up?uploadId={uid}", data=body)
    S3SigV4Auth(Credentials(tls_daemon.access_key, tls_daemon.secret_key), "s3", "us-east-1").add_auth(req)
    c.request("POST", f"/up?uploadId={uid}", body=body, headers={**dict(req.headers), "Host": host})
    r = c.getresponse()
    answer = r.read()
    assert r.status == 200, answer
    assert f"<Location>https://{host}/up</Location>".encode() in answer
    assert s3.get_object(Bucket="vhost", Key="up")["Body"].read() == b"parts"
    c.close()


def test_connection_cap_answers_slowdown(tls_daemon: Any) -> None:
    port = int(tls_daemon.endpoint.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(tls_daemon.cert))
    held = []
    try:
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(ctx.wrap_socket(s, server_hostname="localhost"))
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        data = b""
        while chunk := extra.recv(65536):
            data += chunk
        extra.close()
        assert data.startswith(b"HTTP/1.1 503")
        assert error_code(data.split(b"\r\n\r\n", 1)[1]) == "SlowDown"
    finally:
        for s in held:
            s.close()
    # once connections go away the gateway serves again
    for _ in range(50):
        try:
            _client(tls_daemon).list_buckets()
            break
        except Exception:
            import time

            time.sleep(0.1)
    else:
        raise AssertionError("gateway did not recover after the cap")

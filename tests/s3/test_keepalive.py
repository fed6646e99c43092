"""Requests without a body (GET, HEAD, DELETE, listings) keep their connection: h11 reports the
empty body as ended only once read, and the shell used to count it as unread and close."""

from __future__ import annotations

import socket
from typing import Any

from .conftest import Raw


def test_bodyless_requests_reuse_one_connection(s3: Any, raw: Raw, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 4096)
    sock = socket.create_connection((raw.host, raw.port), timeout=30)
    try:
        for method, path in (("GET", f"/{bucket}/k"), ("HEAD", f"/{bucket}/k"), ("GET", f"/{bucket}?list-type=2"),
                             ("GET", f"/{bucket}/k")):
            sock.sendall(raw.head(method, path, b""))
            head = b""
            while b"\r\n\r\n" not in head:
                piece = sock.recv(65536)
                assert piece, f"{method} {path}: the server closed the connection"
                head += piece
            status_and_headers, _, body = head.partition(b"\r\n\r\n")
            lines = status_and_headers.decode().split("\r\n")
            assert lines[0].startswith("HTTP/1.1 200"), lines[0]
            fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            assert fields.get("connection") != "close", (method, path)
            want = 0 if method == "HEAD" else int(fields["content-length"])
            while len(body) < want:
                piece = sock.recv(65536)
                assert piece
                body += piece
            assert len(body) == want
    finally:
        sock.close()

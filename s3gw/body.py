"""The request-body pipeline for data-carrying operations (PutObject, UploadPart).

raw HTTP body (llhttp already removed Transfer-Encoding: chunked)
  -> aws-chunked decoding + chunk/trailer signature checks (when x-amz-content-sha256 says so)
  -> integrity hashes (x-amz-content-sha256, x-amz-checksum-*, Content-MD5 via the engine's MD5)
  -> the engine, as an async iterator of bounded pieces.

Verification that needs the whole body happens in `finalize`, which the engine calls after the
data is stored and before the commit, so a failed check leaves nothing visible.

An object body must declare its length (Content-Length, or x-amz-decoded-content-length for
aws-chunked), as AWS requires, and no body passes s3.max_object_size: a declared size over it is
refused before reading, and a body that grows past its declared size is cut off there.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import trio

from appliance.engine import BodySummary

from .checksums import BodyChecks, checks_from_headers
from .chunked import AwsChunkedDecoder
from .ctx import Ctx
from .errors import S3Error
from .numbers import digits
from .sigv4 import STREAMING_MODES, UNSIGNED

THREAD_MIN = 64 * 1024  # hash pieces at least this big in a worker thread (hashlib drops the GIL)


def _int_header(ctx: Ctx, name: str) -> int | None:
    raw = ctx.req.headers.get(name)
    if raw is None:
        return None
    value = digits(raw)
    if value is None:
        raise S3Error("InvalidArgument", f"{name} is not a number", ArgumentName=name, ArgumentValue=raw)
    return value


class ObjectBody:
    """One request's decoded body plus the checks to run at finalize time."""

    def __init__(self, ctx: Ctx, *, require_length: bool = True, checksum_headers: bool = True) -> None:
        self.ctx = ctx
        self.max_size = ctx.cfg.s3.max_object_size
        h = ctx.req.headers
        mode = ctx.auth.payload_hash
        self.streaming = mode in STREAMING_MODES
        content_length = _int_header(ctx, "content-length")
        if self.streaming:
            self.expected_size = _int_header(ctx, "x-amz-decoded-content-length")
            if self.expected_size is None:
                raise S3Error("MissingContentLength", "You must provide the x-amz-decoded-content-length header.")
            self.decoder: AwsChunkedDecoder | None = AwsChunkedDecoder(mode, ctx.auth, self.expected_size)
        else:
            # a body sent with Transfer-Encoding: chunked states its size in the decoded length
            self.expected_size = content_length if content_length is not None else \
                _int_header(ctx, "x-amz-decoded-content-length")
            self.decoder = None
        if self.expected_size is None and require_length:
            raise S3Error("MissingContentLength")
        if self.expected_size is not None and self.expected_size > self.max_size:
            raise S3Error("EntityTooLarge", ProposedSize=str(self.expected_size), MaxSizeAllowed=str(self.max_size))
        signed_hash = None if self.streaming or mode == UNSIGNED else mode
        self.checks: BodyChecks = checks_from_headers(h, signed_hash, checksum_headers=checksum_headers)
        if self.checks.trailer_algorithm and not self.streaming:
            raise S3Error("InvalidRequest", "x-amz-trailer requires an aws-chunked (STREAMING-*) payload.")

    @property
    def _heavy(self) -> bool:
        """Work that is worth a worker thread: SHA-256 chunk signatures or SHA hashes."""
        return bool(self.decoder and self.decoder.signed) or self.checks.payload_sha256_hex is not None \
            or bool({"SHA1", "SHA256"} & set(self.checks.hashers))

    def _process(self, raw: bytes) -> list[bytes]:
        pieces = self.decoder.feed(raw) if self.decoder is not None else [raw]
        for p in pieces:
            self.checks.update(p)
        return pieces

    async def stream(self) -> AsyncIterator[bytes]:
        async for raw in self.ctx.req.body.chunks():
            if self._heavy and len(raw) >= THREAD_MIN:
                pieces = await trio.to_thread.run_sync(self._process, raw)
            else:
                pieces = self._process(raw)
            for p in pieces:
                if p:
                    yield p
            if self.checks.size > self.max_size:
                raise S3Error("EntityTooLarge", MaxSizeAllowed=str(self.max_size), close=True)
            if self.expected_size is not None and self.checks.size > self.expected_size:
                raise S3Error("InvalidRequest", "The body is longer than its declared length.", close=True)
        if self.decoder is not None:
            self.checks.add_trailer(self.decoder.finish(self.checks.size))
        elif self.checks.trailer_algorithm:
            raise S3Error("InvalidRequest", "x-amz-trailer requires an aws-chunked payload.")

    def finalize(self, summary: object) -> dict[str, str]:
        size = getattr(summary, "size", 0)
        if self.expected_size is not None and size != self.expected_size:
            raise S3Error("IncompleteBody")
        return self.checks.verify(getattr(summary, "md5", ""))

    @property
    def finalizer(self) -> Callable[[object], dict[str, str]]:
        return self.finalize


async def read_small_body(ctx: Ctx, limit: int = 4 * 1024 * 1024, *, checksum_headers: bool = True,
                          digest_required: bool = False) -> bytes:
    """An XML request document: decoded, size-capped, payload hash and Content-MD5 checked (and
    the x-amz-checksum-* headers, unless they describe something else: checksums.checks_from_headers).
    `digest_required`: the operations AWS refuses without Content-MD5 or an x-amz-checksum-*
    value (DeleteObjects, lifecycle and object lock documents); refused before the body is read."""
    ob = ObjectBody(ctx, require_length=False, checksum_headers=checksum_headers)
    if digest_required and not ob.checks.declared:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    out = bytearray()
    async for piece in ob.stream():
        out += piece
        if len(out) > limit:
            raise S3Error("MaxMessageLengthExceeded", close=True)
    ob.finalize(BodySummary(len(out), hashlib.md5(out).hexdigest()))
    return bytes(out)


T = TypeVar("T")


async def read_xml(ctx: Ctx, parse: Callable[[bytes], T], limit: int, *, checksum_headers: bool = True,
                   digest_required: bool = False) -> T:
    """Read a request document and parse it in a worker thread: a few MiB of XML take the
    parser long enough to stall every other connection if it ran on the event loop."""
    body = await read_small_body(ctx, limit, checksum_headers=checksum_headers, digest_required=digest_required)
    return await trio.to_thread.run_sync(parse, body)

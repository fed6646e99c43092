"""aws-chunked decoding against AWS's published streaming example, plus framing abuse."""

from __future__ import annotations

import base64
import hashlib

import pytest
from awscrt import checksums as crt

from s3gw.chunked import AwsChunkedDecoder, trailer_string_to_sign
from s3gw.errors import S3Error
from s3gw.sigv4 import STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, authenticate, sign

# AWS's "Example: PUT Object" for STREAMING-AWS4-HMAC-SHA256-PAYLOAD (sigv4-streaming).
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGS = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
HEADERS = {
    "host": "s3.amazonaws.com",
    "content-encoding": "aws-chunked",
    "content-length": "66824",
    "x-amz-content-sha256": STREAMING_SIGNED,
    "x-amz-date": "20130524T000000Z",
    "x-amz-decoded-content-length": "66560",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    f"x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}",
}


def _auth(mode: str = STREAMING_SIGNED):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    headers = dict(HEADERS)
    now = datetime(2013, 5, 24, tzinfo=UTC)
    if mode != STREAMING_SIGNED:
        # Re-sign the same request in another mode with our (verified) signer's primitives.
        from dataclasses import replace

        base = authenticate("PUT", "/examplebucket/chunkObject.txt", "", {}, headers,
                            lambda ak: SK if ak == AK else None, now)
        return replace(base, payload_hash=mode)
    return authenticate("PUT", "/examplebucket/chunkObject.txt", "", {}, headers,
                        lambda ak: SK if ak == AK else None, now)


def example_body(corrupt: bool = False) -> bytes:
    out = b""
    for size, sig in zip((65536, 1024, 0), SIGS, strict=True):
        data = bytearray(b"a" * size)
        if corrupt and size == 1024:
            data[10] = ord("b")
        out += f"{size:x};chunk-signature={sig}\r\n".encode() + bytes(data) + b"\r\n"
    return out


def decode(dec: AwsChunkedDecoder, body: bytes, step: int) -> bytes:
    out = bytearray()
    for i in range(0, len(body), step):
        for piece in dec.feed(body[i : i + step]):
            out += piece
    dec.finish(len(out))
    return bytes(out)


def test_seed_signature_matches_aws_example() -> None:
    auth = _auth()
    assert auth.signature == SEED


@pytest.mark.parametrize("step", [1, 7, 4096, 70000, 1 << 20])
def test_aws_example_decodes_in_any_split(step: int) -> None:
    body = example_body()
    assert len(body) == 66824
    dec = AwsChunkedDecoder(STREAMING_SIGNED, _auth(), decoded_length=66560)
    assert decode(dec, body, step) == b"a" * 66560


def test_corrupt_chunk_fails_signature() -> None:
    dec = AwsChunkedDecoder(STREAMING_SIGNED, _auth(), decoded_length=66560)
    with pytest.raises(S3Error) as exc:
        decode(dec, example_body(corrupt=True), 4096)
    assert exc.value.code == "SignatureDoesNotMatch"


def test_final_chunk_signature_is_verified() -> None:
    body = example_body().replace(SIGS[2].encode(), b"0" * 64)
    dec = AwsChunkedDecoder(STREAMING_SIGNED, _auth(), decoded_length=66560)
    with pytest.raises(S3Error) as exc:
        decode(dec, body, 4096)
    assert exc.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("cut", [10, 100, 65600, 66700, 66822])
def test_truncated_body_is_incomplete(cut: int) -> None:
    dec = AwsChunkedDecoder(STREAMING_SIGNED, _auth(), decoded_length=66560)
    with pytest.raises(S3Error) as exc:
        decode(dec, example_body()[:cut], 4096)
    assert exc.value.code in ("IncompleteBody",)


def test_garbage_framing() -> None:
    for body in (b"zz;chunk-signature=" + b"0" * 64 + b"\r\n", b"5\r\nhello\r\n", b"1" * 5000):
        dec = AwsChunkedDecoder(STREAMING_SIGNED, _auth(), decoded_length=5)
        with pytest.raises(S3Error):
            decode(dec, body, 100)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(crt.crc32(data).to_bytes(4, "big")).decode()


def test_unsigned_trailer_as_botocore_frames_it() -> None:
    data = b"x" * 100000
    body = b""
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        body += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    body += b"0\r\nx-amz-checksum-crc32:" + crc32_b64(data).encode() + b"\r\n\r\n"
    dec = AwsChunkedDecoder(STREAMING_UNSIGNED_TRAILER, None, decoded_length=len(data))
    assert decode(dec, body, 5000) == data
    assert dec.trailers == {"x-amz-checksum-crc32": crc32_b64(data)}


def test_signed_trailer_chain() -> None:
    auth = _auth(STREAMING_SIGNED_TRAILER)
    data = b"hello world" * 1000
    prev = auth.signature
    from s3gw.chunked import chunk_string_to_sign

    sig1 = sign(auth.signing_key, chunk_string_to_sign(auth, prev, hashlib.sha256(data).hexdigest()))
    sig0 = sign(auth.signing_key, chunk_string_to_sign(auth, sig1, hashlib.sha256(b"").hexdigest()))
    trailer = f"x-amz-checksum-crc32:{crc32_b64(data)}\n"
    tsig = sign(auth.signing_key, trailer_string_to_sign(auth, sig0, trailer))
    body = (f"{len(data):x};chunk-signature={sig1}\r\n".encode() + data + b"\r\n"
            + f"0;chunk-signature={sig0}\r\n".encode()
            + trailer.replace("\n", "\r\n").encode()
            + f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode())
    dec = AwsChunkedDecoder(STREAMING_SIGNED_TRAILER, auth, decoded_length=len(data))
    assert decode(dec, body, 333) == data
    bad = body.replace(tsig.encode(), b"f" * 64)
    with pytest.raises(S3Error) as exc:
        decode(AwsChunkedDecoder(STREAMING_SIGNED_TRAILER, auth, decoded_length=len(data)), bad, 333)
    assert exc.value.code == "SignatureDoesNotMatch"

"""Request integrity: Content-MD5 and the x-amz-checksum-* family.

A `BodyChecks` is built from the request headers before the body is read; the body pipeline
feeds it every decoded byte; `verify()` runs in the store's `finalize` hook (after the data is
stored, before the commit) and returns the checksums to keep with the version. The ETag MD5 is
computed by the engine, so Content-MD5 is checked against the engine's summary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from awscrt import checksums as crt

from .errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
# CRC(a || b) from CRC(a), CRC(b) and len(b): a whole object's CRC from its parts' without the data
_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "CRC32": crt.combine_crc32, "CRC32C": crt.combine_crc32c, "CRC64NVME": crt.combine_crc64nvme}
CRC_ALGORITHMS = frozenset(_COMBINE)


def header_name(algorithm: str) -> str:
    return "x-amz-checksum-" + algorithm.lower()


class Hasher(Protocol):
    """What the body checks need of a digest: hashlib's objects and the CRCs below."""

    def update(self, data: bytes | bytearray, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    # awscrt's functions take any buffer (a read's piece may be a bytearray); typed for bytes
    def __init__(self, fn: Callable[..., int], size: int) -> None:
        self._fn = fn
        self._size = size
        self._value = 0

    def update(self, data: bytes | bytearray) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


def new_hasher(algorithm: str) -> Hasher:
    if algorithm == "CRC32":
        return _Crc(crt.crc32, 4)
    if algorithm == "CRC32C":
        return _Crc(crt.crc32c, 4)
    if algorithm == "CRC64NVME":
        return _Crc(crt.crc64nvme, 8)
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm} is not supported.")


def checksum_b64(algorithm: str, data: bytes) -> str:
    h = new_hasher(algorithm)
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def combined_crc_b64(algorithm: str, pieces: Iterable[tuple[str, int]]) -> str:
    """The CRC of consecutive pieces' concatenation, from each piece's (base64 CRC, length)."""
    combine, size = _COMBINE[algorithm], DIGEST_SIZES[algorithm]
    value = 0  # the CRC of nothing
    for b64, length in pieces:
        value = combine(value, int.from_bytes(base64.b64decode(b64), "big"), length)
    return base64.b64encode(value.to_bytes(size, "big")).decode()


def valid_b64(value: str, algorithm: str) -> bool:
    """Whether `value` is the base64 of a digest of `algorithm`'s size."""
    return _valid_b64(value, DIGEST_SIZES[algorithm])


def _valid_b64(value: str, size: int) -> bool:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == size


def parse_content_md5(value: str | None) -> str | None:
    """Content-MD5 (base64) -> hex, or InvalidDigest."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest") from None
    if len(raw) != 16:
        raise S3Error("InvalidDigest")
    return raw.hex()


@dataclass
class BodyChecks:
    """What to compute over a body and what the client claims it will be."""

    content_md5_hex: str | None = None
    payload_sha256_hex: str | None = None  # a signed x-amz-content-sha256
    expected: dict[str, str] = field(default_factory=dict)  # algorithm -> b64 (from headers)
    trailer_algorithm: str | None = None  # announced in x-amz-trailer; value arrives later
    compute: set[str] = field(default_factory=set)  # asked for without a value: compute and store
    hashers: dict[str, Hasher] = field(default_factory=dict)
    _sha256: Hasher | None = None  # over the decoded body, when x-amz-content-sha256 is signed
    size: int = 0

    @property
    def declared(self) -> bool:
        """The client sent a digest of the body to check (Content-MD5, or an x-amz-checksum-*
        value in a header or a trailer); a signed x-amz-content-sha256 does not count for AWS."""
        return self.content_md5_hex is not None or bool(self.expected) or bool(self.trailer_algorithm)

    def start(self) -> None:
        algs = set(self.expected) | self.compute
        if self.trailer_algorithm:
            algs.add(self.trailer_algorithm)
        self.hashers = {a: new_hasher(a) for a in algs}
        if self.payload_sha256_hex is not None:
            self._sha256 = self.hashers.get("SHA256") or hashlib.sha256()

    def update(self, data: bytes | bytearray) -> None:
        """Feed decoded body bytes (may run in a worker thread: hashlib drops the GIL)."""
        self.size += len(data)
        for h in self.hashers.values():
            h.update(data)
        if self._sha256 is not None and self._sha256 is not self.hashers.get("SHA256"):
            self._sha256.update(data)

    def add_trailer(self, trailers: dict[str, str]) -> None:
        """Checksum values that arrived in an aws-chunked trailer."""
        for name, value in trailers.items():
            # x-amz-trailer can announce only a checksum: another name is one it did not announce
            alg = name[len("x-amz-checksum-") :].upper() if name.startswith("x-amz-checksum-") else ""
            if alg and alg not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Unsupported checksum trailer {name[:64]}.")
            if not alg or alg != self.trailer_algorithm:
                raise S3Error("InvalidRequest", f"The trailer {name[:64]} was not announced in x-amz-trailer.")
            if not _valid_b64(value, DIGEST_SIZES[alg]):
                raise S3Error("InvalidRequest", f"Value for {name} trailing header is invalid.")
            self.expected[alg] = value
        if self.trailer_algorithm and self.trailer_algorithm not in self.expected:
            raise S3Error(
                "InvalidRequest",
                f"The x-amz-trailer header named {header_name(self.trailer_algorithm)} but the "
                "trailer was not sent.",
            )

    def verify(self, md5_hex: str) -> dict[str, str]:
        """Compare everything; return {ALGORITHM: b64} to store with the object."""
        if self.payload_sha256_hex is not None:
            assert self._sha256 is not None  # start() made it
            got = self._sha256.digest().hex()
            if got != self.payload_sha256_hex:
                raise S3Error(
                    "XAmzContentSHA256Mismatch",
                    ClientComputedContentSHA256=self.payload_sha256_hex,
                    S3ComputedContentSHA256=got,
                )
        if self.content_md5_hex is not None and md5_hex != self.content_md5_hex:
            raise S3Error("BadDigest")
        stored: dict[str, str] = {}
        for alg, want in self.expected.items():
            got_b64 = base64.b64encode(self.hashers[alg].digest()).decode()
            if got_b64 != want:
                raise S3Error(
                    "BadDigest", f"The {header_name(alg)} you specified did not match the calculated checksum."
                )
            stored[alg] = got_b64
        for alg in self.compute - stored.keys():
            stored[alg] = base64.b64encode(self.hashers[alg].digest()).decode()
        return stored


# x-amz-checksum-* headers that are not a checksum value
_NOT_VALUES = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})


def refuse_other_algorithms(headers: dict[str, str]) -> None:
    """A checksum value of an algorithm this gateway does not compute (AWS's SHA512, MD5 and
    XXHASH*, or any newer one) is refused as an unsupported algorithm is, rather than accepted
    without the integrity check it asks for."""
    for name in headers:
        if name.startswith("x-amz-checksum-") and name not in _NOT_VALUES \
                and name[len("x-amz-checksum-"):].upper() not in ALGORITHMS:
            raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")


def checks_from_headers(headers: dict[str, str], payload_sha256: str | None, *,
                        checksum_headers: bool = True) -> BodyChecks:
    """Build the checks for a body from request headers (lower-case names). `checksum_headers`
    False: the x-amz-checksum-* headers are not the body's (CompleteMultipartUpload's describe
    the object its parts make), so only Content-MD5 and the payload hash apply."""
    refuse_other_algorithms(headers)
    checks = BodyChecks(content_md5_hex=parse_content_md5(headers.get("content-md5")))
    checks.payload_sha256_hex = payload_sha256
    if not checksum_headers:
        checks.start()
        return checks
    for alg in ALGORITHMS:
        value = headers.get(header_name(alg))
        if value is None:
            continue
        if not _valid_b64(value.strip(), DIGEST_SIZES[alg]):
            raise S3Error("InvalidRequest", f"Value for {header_name(alg)} header is invalid.")
        checks.expected[alg] = value.strip()
    if len(checks.expected) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. "
                      "Multiple checksum Types are not allowed.")
    trailer = headers.get("x-amz-trailer")
    if trailer:
        name = trailer.strip().lower()
        alg = name[len("x-amz-checksum-") :].upper() if name.startswith("x-amz-checksum-") else ""
        if alg not in ALGORITHMS:
            raise S3Error("InvalidRequest",
                          f"The value specified in the x-amz-trailer header is not supported: {trailer}")
        checks.trailer_algorithm = alg
    declared = headers.get("x-amz-sdk-checksum-algorithm") or headers.get("x-amz-checksum-algorithm")
    if declared:
        alg = declared.strip().upper()
        if alg not in ALGORITHMS:
            raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
        sent = next(iter(checks.expected), checks.trailer_algorithm)
        if sent and sent != alg:
            # the checksum sent is not the one the SDK said it would send: AWS's BadDigest
            raise S3Error("BadDigest", f"The {header_name(sent)} sent does not match the algorithm {alg} "
                          "named in x-amz-sdk-checksum-algorithm.")
        if not sent:
            checks.compute.add(alg)  # asked for without a value: compute and store it
    checks.start()
    return checks

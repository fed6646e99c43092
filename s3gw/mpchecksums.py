"""Multipart checksums as S3 defines them (x-amz-checksum-type).

An upload names an algorithm, and how the object's checksum is made, when it is created
(CreateMultipartUpload's x-amz-checksum-algorithm and x-amz-checksum-type). Every part then
carries a checksum in that algorithm: the client's, verified against the part's bytes, or the
one computed here when it sent none. Completion makes the object's checksum from the parts'
checksums, never by reading the data again:

- COMPOSITE (CRC32, CRC32C, SHA1, SHA256; the default for all but CRC64NVME): the checksum of
  the concatenated binary part checksums, written with the part count, "<base64>-N".
- FULL_OBJECT (CRC32, CRC32C, CRC64NVME; the default for CRC64NVME): the CRC of the whole
  content, combined mathematically from the parts' CRCs and sizes.

The errors are AWS's: an algorithm and type that do not go together, or a completion whose
checksum type or algorithm is not the upload's, is InvalidRequest; a completion of a composite
upload that leaves out a part's checksum is InvalidRequest; a part checksum it lists that is not
the part's is InvalidPart; an object checksum in its headers that is not the one the parts make
is BadDigest.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from appliance.engine import ObjectVersion, PartRecord, UploadRecord

from .checksums import ALGORITHMS, CRC_ALGORITHMS, checksum_b64, combined_crc_b64, header_name, valid_b64
from .errors import S3Error
from .numbers import digits
from .xmlio import CompletedPart

COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE_ALGORITHMS = frozenset({"CRC32", "CRC32C", "SHA1", "SHA256"})
ALLOWED = {COMPOSITE: COMPOSITE_ALGORITHMS, FULL_OBJECT: CRC_ALGORITHMS}
_COMPUTED = frozenset(ALGORITHMS)  # what a listed part may name (one set, not one per part)


def upload_checksum(headers: Mapping[str, str]) -> tuple[str, str]:
    """CreateMultipartUpload's (algorithm, checksum type); ("", "") for an upload without one."""
    alg = headers.get("x-amz-checksum-algorithm", "").strip().upper()
    ctype = headers.get("x-amz-checksum-type", "").strip().upper()
    if alg and alg not in ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
    if ctype and ctype not in ALLOWED:
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if not alg:
        if ctype:
            raise S3Error("InvalidRequest", "The x-amz-checksum-type header can only be used with the "
                          "x-amz-checksum-algorithm header.")
        return "", ""
    ctype = ctype or (FULL_OBJECT if alg not in COMPOSITE_ALGORITHMS else COMPOSITE)
    if alg not in ALLOWED[ctype]:
        raise S3Error("InvalidRequest", f"The {ctype} checksum type cannot be used with the {alg.lower()} "
                      "checksum algorithm.")
    return alg, ctype


def _object_checksum(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The object checksum a completion states in its headers, as (algorithm, value)."""
    found = [(alg, headers[header_name(alg)].strip()) for alg in ALGORITHMS if header_name(alg) in headers]
    if len(found) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. "
                      "Multiple checksum Types are not allowed.")
    if not found:
        return None
    alg, value = found[0]
    digest, dash, count = value.partition("-")
    if not valid_b64(digest, alg) or (dash and digits(count) is None):
        raise S3Error("InvalidRequest", f"Value for {header_name(alg)} header is invalid.")
    return alg, value


class Completion:
    """The checks of one CompleteMultipartUpload and the object checksum its parts make: the
    header checks run when it is built, the rest (`__call__`) on the parts the engine matched,
    inside the completion's commit."""

    def __init__(self, up: UploadRecord, listed: list[CompletedPart], headers: Mapping[str, str]) -> None:
        self.up = up
        self.listed = listed
        alg, ctype = up.checksum_algorithm, up.checksum_type
        stated_type = headers.get("x-amz-checksum-type", "").strip().upper()
        self.stated = _object_checksum(headers)
        if not alg and (stated_type or self.stated):
            raise S3Error("InvalidRequest", "The upload was created without a checksum algorithm; the complete "
                          "request cannot state a checksum of the object.")
        if stated_type and stated_type != ctype:
            raise S3Error("InvalidRequest", f"The upload was created using the {ctype} checksum mode. The complete "
                          "request must use the same checksum mode.")
        if self.stated is not None and self.stated[0] != alg:
            raise S3Error("InvalidRequest", f"Checksum Type mismatch occurred, expected checksum Type: {alg.lower()}, "
                          f"actual checksum Type: {self.stated[0].lower()}")
        for part in listed:  # a part's checksum of an algorithm never computed could not be checked
            if not part.checksums.keys() <= _COMPUTED:
                raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
        if ctype == COMPOSITE:
            for part in listed:
                if alg not in part.checksums:
                    raise S3Error("InvalidRequest", f"The upload was created using a {alg.lower()} checksum. The "
                                  "complete request must include the checksum for each part. It was missing for "
                                  f"part {part.number} in the request.")
        raw_size = headers.get("x-amz-mp-object-size")
        self.object_size: int | None = None
        if raw_size is not None:
            self.object_size = digits(raw_size)
            if self.object_size is None:
                raise S3Error("InvalidArgument", "x-amz-mp-object-size is not a number",
                              ArgumentName="x-amz-mp-object-size", ArgumentValue=raw_size)

    def __call__(self, chosen: list[PartRecord]) -> dict[str, str] | None:
        for part, record in zip(self.listed, chosen, strict=True):
            for alg, value in part.checksums.items():
                if alg in record.checksums and record.checksums[alg] != value:
                    raise S3Error("InvalidPart", PartNumber=str(part.number))
        total = sum(p.size for p in chosen)
        if self.object_size is not None and self.object_size != total:
            raise S3Error("InvalidRequest", f"The x-amz-mp-object-size header ({self.object_size}) is not the size "
                          f"of the parts ({total}).")
        alg = self.up.checksum_algorithm
        if not alg or not all(alg in p.checksums for p in chosen):
            return None  # a part from before its upload kept checksums: the object has none
        if self.up.checksum_type == FULL_OBJECT:
            value = combined_crc_b64(alg, ((p.checksums[alg], p.size) for p in chosen))
        else:
            raw = b"".join(base64.b64decode(p.checksums[alg]) for p in chosen)
            value = f"{checksum_b64(alg, raw)}-{len(chosen)}"
        if self.stated is not None and self.stated[1] not in (value, value.partition("-")[0]):
            raise S3Error("BadDigest", f"The {header_name(alg)} you specified did not match the calculated checksum.")
        return {alg: value}


def upload_headers(up: UploadRecord) -> list[tuple[str, str]]:
    """The checksum mode of an upload, as CreateMultipartUpload answers it."""
    if not up.checksum_algorithm:
        return []
    return [("x-amz-checksum-algorithm", up.checksum_algorithm), ("x-amz-checksum-type", up.checksum_type)]


def part_checksum_headers(v: ObjectVersion, part_number: int) -> list[tuple[str, str]]:
    """What GetObject/HeadObject with partNumber and checksum mode report: a composite object's
    part checksum; a full-object checksum only when that part is the whole object."""
    if v.checksum_type == COMPOSITE and 1 <= part_number <= len(v.part_checksums):
        return [(header_name(a), c) for a, c in v.part_checksums[part_number - 1].items()]
    if v.checksum_type == FULL_OBJECT and len(v.parts) <= 1:
        return [(header_name(a), c) for a, c in v.checksums.items()] + [("x-amz-checksum-type", FULL_OBJECT)]
    return []

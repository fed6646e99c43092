"""Which keys an object's data is encrypted with, and what S3 reports of it: the rules the gateway
and the mount share over the KMS (kms.py).

A `Protection` is how one object is (to be) encrypted: in plaintext, with SSE-S3, with SSE-KMS
(a KMS key and an encryption context) or with SSE-C (the request's customer key). A write asks
for one explicitly (the S3 headers) or gets its bucket's default (BucketRecord.encryption);
`ObjectKeys.new_key` turns it into a fresh data key per segment written, and the version keeps
`Protection.report()` as ObjectVersion.sse (UploadRecord.sse for a multipart upload):

    {"mode": "AES256"}
    {"mode": "aws:kms", "kms_key_id": ID, "context": b64(JSON), ["bucket_key": "true"]}
    {"mode": "SSE-C", "customer_key_md5": b64(MD5), "customer_key_salt": b64, "customer_key_hmac": b64}

None holds a key: for SSE-C a salted HMAC of the customer key tells whether a later request
brings the same one (the key's MD5 is what S3 reports back, as AWS does). The data keys
themselves are in the segments' envelopes (kms.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from appliance.engine import BucketRecord, KeyResolver, ObjectStore, ObjectVersion, SegmentKey

from .kms import (
    MODE_C,
    MODE_KMS,
    MODE_S3,
    Kms,
    KmsDisabled,
    KmsNotFound,
    customer_key_matches,
    customer_key_proof,
    describe_envelope,
    sse_c_key,
)

ARN_CONTEXT = "aws:s3:arn"  # the default encryption context of SSE-KMS: the object's ARN


def default_context(bucket: str, key: str) -> dict[str, str]:
    return {ARN_CONTEXT: f"arn:aws:s3:::{bucket}/{key}"}


def _is_default_context(context: Mapping[str, str]) -> bool:
    return list(context) == [ARN_CONTEXT] and context[ARN_CONTEXT].startswith("arn:aws:s3:::")


def encode_context(context: Mapping[str, str]) -> str:
    """The encryption context as S3 headers carry it: base64 of its JSON."""
    return base64.b64encode(json.dumps(dict(context), separators=(",", ":")).encode()).decode()


def decode_context(value: str) -> dict[str, str] | None:
    """The encryption context of a header (or a report); None when it is not a base64-encoded
    JSON object of strings."""
    try:
        doc = json.loads(base64.b64decode(value, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):  # Recursion: [[[[...
        return None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        return None
    return doc


@dataclass(frozen=True)
class Protection:
    """How an object's data is encrypted (module doc). `customer_key` is only ever the key a
    request brought: it is used and never stored."""

    mode: str = ""  # "" (plaintext) | AES256 | aws:kms | SSE-C
    kms_key_id: str = ""  # aws:kms: the KMS key's id ("" before `ObjectKeys.resolved`: aws/s3)
    context: Mapping[str, str] = field(default_factory=dict)  # aws:kms: the encryption context
    bucket_key: bool = False  # aws:kms: S3 Bucket Keys asked for (reported; no KMS cost to save here)
    customer_key: bytes | None = field(default=None, repr=False)  # SSE-C: the request's key
    customer_key_md5: str = ""  # SSE-C: base64 MD5 of the customer key
    proof: Mapping[str, str] = field(default_factory=dict)  # SSE-C: {"salt", "hmac"} of the customer key

    @classmethod
    def sse_c(cls, customer_key: bytes, md5_b64: str) -> Protection:
        return cls(MODE_C, customer_key=customer_key, customer_key_md5=md5_b64, proof=customer_key_proof(customer_key))

    @classmethod
    def of_report(cls, sse: Mapping[str, str] | None) -> Protection:
        """What a version's (or an upload's) report says; never with a customer key."""
        if not sse or not sse.get("mode"):
            return cls()
        mode = sse["mode"]
        if mode == MODE_KMS:
            return cls(mode, sse.get("kms_key_id", ""), decode_context(sse.get("context", "")) or {},
                       sse.get("bucket_key") == "true")
        if mode == MODE_C:
            return cls(mode, customer_key_md5=sse.get("customer_key_md5", ""),
                       proof={"salt": sse.get("customer_key_salt", ""), "hmac": sse.get("customer_key_hmac", "")})
        return cls(mode)

    def report(self) -> dict[str, str] | None:
        """ObjectVersion.sse of a version written with this protection (None: plaintext)."""
        if not self.mode:
            return None
        if self.mode == MODE_KMS:
            out = {"mode": self.mode, "kms_key_id": self.kms_key_id, "context": encode_context(self.context)}
            if self.bucket_key:
                out["bucket_key"] = "true"
            return out
        if self.mode == MODE_C:
            return {"mode": self.mode, "customer_key_md5": self.customer_key_md5,
                    "customer_key_salt": self.proof.get("salt", ""), "customer_key_hmac": self.proof.get("hmac", "")}
        return {"mode": self.mode}

    def opened_by(self, customer_key: bytes) -> bool:
        """SSE-C: whether `customer_key` is the key this object was written with."""
        return self.mode == MODE_C and bool(self.proof.get("hmac")) and customer_key_matches(self.proof, customer_key)

    def shares_keys_with(self, stored: Protection) -> bool:
        """Whether data stored under `stored` may be shared, as it is, by an object protected by
        this: the same mode and key (the same KMS key with the default or the same context, the
        same customer key), so a copy references the segments instead of re-encrypting them."""
        if self.mode != stored.mode:
            return False
        if self.mode == MODE_KMS:
            same_context = dict(self.context) == dict(stored.context) or (
                _is_default_context(self.context) and _is_default_context(stored.context))
            return self.kms_key_id == stored.kms_key_id and same_context
        if self.mode == MODE_C:
            return self.customer_key is not None and stored.opened_by(self.customer_key)
        return True


def protection_of(store: ObjectStore, v: ObjectVersion) -> Protection:
    """How a version is encrypted: its report, or for a version without one (rebuilt by
    `recover-metadata`) what its first segment's envelope says."""
    if v.sse:
        return Protection.of_report(v.sse)
    if not v.segments:
        return Protection()
    env = store.get_segment(v.segments[0].segment_id).enc
    if env is None:
        return Protection()
    info = describe_envelope(env)
    if info.mode == MODE_C:
        return Protection(MODE_C, proof={"salt": str(env.get("salt", "")), "hmac": str(env.get("hmac", ""))})
    return Protection(info.mode, info.kms_key_id, info.context)


class ObjectKeys:
    """Data keys for writes and resolvers for reads, over the KMS (the default key `aws/s3` is
    made on first use, a commit like any other: the metadata journal keeps it)."""

    def __init__(self, kms: Kms) -> None:
        self.kms = kms

    async def resolved(self, p: Protection) -> Protection:
        """`p` with its KMS key named by id, checked to exist and be enabled (KmsNotFound,
        KmsDisabled); a request that names none gets `aws/s3`, made on first use."""
        if p.mode != MODE_KMS:
            return p
        if p.kms_key_id:
            rec = self.kms.find(p.kms_key_id)
        else:
            try:
                rec = self.kms.find("alias/aws/s3")
            except KmsNotFound:
                rec = self.kms.find(self.kms.default_key().key_id)
        if not rec.enabled:
            raise KmsDisabled(f"{rec.key_id} is disabled.")
        return Protection(p.mode, rec.key_id, dict(p.context), p.bucket_key)

    async def bucket_default(self, rec: BucketRecord, key: str) -> Protection:
        """What an object written to bucket `rec` without encryption headers gets."""
        enc = rec.encryption or {}
        algorithm = enc.get("algorithm", "")
        if algorithm == MODE_S3:
            return Protection(MODE_S3)
        if algorithm == MODE_KMS:
            return await self.resolved(Protection(MODE_KMS, str(enc.get("kms_key_id", "")),
                                                  default_context(rec.name, key), bool(enc.get("bucket_key"))))
        return Protection()

    def new_key(self, p: Protection) -> SegmentKey | None:
        """A fresh data key for one segment written under `p` (resolved); None: plaintext."""
        if p.mode == MODE_S3:
            return self.kms.sse_s3_key()
        if p.mode == MODE_KMS:
            return self.kms.sse_kms_key(p.kms_key_id, p.context)
        if p.mode == MODE_C:
            if p.customer_key is None:
                raise ValueError("an SSE-C write needs the request's customer key")
            return sse_c_key(p.customer_key)
        return None

    def resolver(self, customer_key: bytes | None = None) -> KeyResolver:
        return self.kms.resolver(customer_key)

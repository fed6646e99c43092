"""Server-side encryption at the S3 edge: request headers -> Protection (appliance/iam/objectkeys.py),
the checks AWS makes before any data moves, and the x-amz-server-side-encryption-* headers each
operation reports.

Writes: `x-amz-server-side-encryption: AES256` (SSE-S3), `aws:kms` with an optional
`-aws-kms-key-id` (id, alias/NAME or ARN; none: the default key aws/s3) and `-context` (base64
JSON; default {"aws:s3:arn": "arn:aws:s3:::bucket/key"}), or the three SSE-C headers
`-customer-algorithm/-key/-key-MD5`; without any, the bucket's default encryption. SSE-C needs
TLS, as on AWS. Reads of an SSE-C object (and copies from one, with the
`x-amz-copy-source-server-side-encryption-customer-*` headers) must bring its key: none is 400
InvalidRequest, another key 403 AccessDenied; a key for an object that has none is 400
InvalidRequest. Parts of an SSE-C upload must bring the upload's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import replace

from appliance.engine import KeyResolver, ObjectVersion, UploadRecord
from appliance.engine.errors import NoSuchUpload
from appliance.iam.kms import MODE_C, MODE_KMS, MODE_S3, key_arn
from appliance.iam.objectkeys import Protection, decode_context, default_context, protection_of

from .ctx import Ctx
from .errors import S3Error
from .routing import Op

SSE = "x-amz-server-side-encryption"
KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT = "x-amz-server-side-encryption-context"
BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled"
C_ALGORITHM = "x-amz-server-side-encryption-customer-algorithm"
C_KEY = "x-amz-server-side-encryption-customer-key"
C_KEY_MD5 = "x-amz-server-side-encryption-customer-key-MD5"  # as responses spell it
# the SSE-C headers are x-amz-server-side-encryption-customer-*, of a copy source
# x-amz-copy-source-server-side-encryption-customer-*
OWN, COPY_SOURCE = "x-amz-", "x-amz-copy-source-"
_C_NAMES = ("server-side-encryption-customer-algorithm", "server-side-encryption-customer-key",
            "server-side-encryption-customer-key-md5")
DSSE = "aws:kms:dsse"

_NEEDS_KMS = ("Server Side Encryption with AWS KMS managed key requires HTTP header "
              "x-amz-server-side-encryption : aws:kms")
_STORED_ENCRYPTED = ("The object was stored using a form of Server Side Encryption. The correct parameters must be "
                     "provided to retrieve the object.")
_NOT_APPLICABLE = "The encryption parameters are not applicable to this object."
_UPLOAD_MISMATCH = "The provided encryption parameters did not match the ones used originally."
_UPLOAD_NEEDS_KEY = ("The multipart upload initiate requested encryption. Subsequent part requests must include the "
                     "appropriate encryption parameters.")
_NEEDS_TLS = ("Requests specifying Server Side Encryption with Customer provided keys must be made over a secure "
              "connection.")


def _has_customer_headers(headers: Mapping[str, str], prefix: str = OWN) -> bool:
    # asked by every GET and HEAD: names joined once, no generator
    a, b, c = _PREFIXED.get(prefix) or tuple(prefix + name for name in _C_NAMES)
    return a in headers or b in headers or c in headers


_PREFIXED = {p: tuple(p + name for name in _C_NAMES) for p in (OWN, COPY_SOURCE)}


def _customer_key(ctx: Ctx, prefix: str = OWN) -> tuple[bytes, str] | None:
    """(key, base64 MD5) of the SSE-C key a request brings (prefix: of its copy source), checked
    as AWS checks it; None when it brings none."""
    h = ctx.req.headers
    if not _has_customer_headers(h, prefix):
        return None
    if not ctx.req.tls:
        raise S3Error("InvalidRequest", _NEEDS_TLS)
    alg_name, key_name, md5_name = (prefix + name for name in _C_NAMES)
    algorithm, raw, md5 = h.get(alg_name), h.get(key_name), h.get(md5_name)
    if algorithm is None:
        raise S3Error("InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must "
                      "provide a valid encryption algorithm.", ArgumentName=alg_name, ArgumentValue="null")
    if algorithm != "AES256":
        raise S3Error("InvalidArgument", "The requested encryption algorithm is not valid, must be AES256.",
                      ArgumentName=alg_name, ArgumentValue=algorithm)
    if raw is None:
        raise S3Error("InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must "
                      "provide an appropriate secret key.", ArgumentName=key_name, ArgumentValue="null")
    if md5 is None:
        raise S3Error("InvalidArgument", "Requests specifying Server Side Encryption with Customer provided keys must "
                      "provide the client calculated MD5 of the secret key.", ArgumentName=md5_name,
                      ArgumentValue="null")
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise S3Error("InvalidArgument", "The secret key was invalid for the specified algorithm.",
                      ArgumentName=key_name, ArgumentValue="null")
    if base64.b64encode(hashlib.md5(key).digest()).decode() != md5.strip():
        raise S3Error("InvalidArgument", "The calculated MD5 hash of the key did not match the hash that was provided.",
                      ArgumentName=md5_name, ArgumentValue=md5)
    return key, md5.strip()


def requested(ctx: Ctx, bucket: str, key: str) -> Protection | None:
    """The protection a write's headers ask for (not yet resolved: see for_write); None when they
    ask for none (the bucket's default applies)."""
    h = ctx.req.headers
    customer = _customer_key(ctx)
    mode, kms_key, context = h.get(SSE), h.get(KMS_KEY), h.get(CONTEXT)
    if customer is not None and (mode is not None or kms_key is not None or context is not None):
        raise S3Error("InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the "
                      "encryption method specified", ArgumentName=SSE, ArgumentValue=mode or "null")
    if mode is None:
        if kms_key is not None or context is not None:
            raise S3Error("InvalidArgument", _NEEDS_KMS, ArgumentName=SSE, ArgumentValue="null")
        return Protection.sse_c(*customer) if customer is not None else None
    mode = mode.strip()
    if mode == MODE_S3:
        if kms_key is not None or context is not None:
            raise S3Error("InvalidArgument", _NEEDS_KMS, ArgumentName=SSE, ArgumentValue=mode)
        return Protection(MODE_S3)
    if mode == MODE_KMS:
        ctx_map = default_context(bucket, key)
        if context is not None:
            parsed = decode_context(context.strip())
            if parsed is None:
                raise S3Error("InvalidArgument", f"The header '{CONTEXT}' shall be Base64-encoded UTF-8 string holding "
                              "JSON which represents a string-string map", ArgumentName=CONTEXT)
            ctx_map = parsed
        bucket_key = h.get(BUCKET_KEY, "").strip().lower() == "true"
        return Protection(MODE_KMS, (kms_key or "").strip(), ctx_map, bucket_key)
    if mode == DSSE:
        raise S3Error("NotImplemented", "Dual-layer server-side encryption (aws:kms:dsse) is not implemented.")
    raise S3Error("InvalidArgument", "The encryption method specified is not supported", ArgumentName=SSE,
                  ArgumentValue=mode)


async def for_write(ctx: Ctx, key: str | None = None) -> Protection:
    """The resolved protection of a new object at ctx.bucket/key: the request's, else the
    bucket's default (KMS.NotFoundException, KMS.DisabledException for an unusable KMS key)."""
    key = ctx.key if key is None else key
    asked = requested(ctx, ctx.bucket, key)
    if asked is not None:
        return await ctx.keys.resolved(asked)
    rec = ctx.view.record if ctx.view is not None else ctx.store.get_bucket(ctx.bucket)
    return await ctx.keys.bucket_default(rec, key)


def for_part(ctx: Ctx, up: UploadRecord) -> Protection:
    """The protection the parts of `up` are written with, after checking that the request brings
    the upload's customer key (SSE-C) and asks for nothing else."""
    p = Protection.of_report(up.sse)
    customer = _customer_key(ctx)
    mode = ctx.req.headers.get(SSE)
    if mode is not None and mode.strip() != p.mode:
        raise S3Error("InvalidArgument", _UPLOAD_MISMATCH, ArgumentName=SSE, ArgumentValue=mode)
    if p.mode != MODE_C:
        if customer is not None:
            raise S3Error("InvalidArgument", _UPLOAD_MISMATCH, ArgumentName=C_ALGORITHM, ArgumentValue="AES256")
        return p
    if customer is None:
        raise S3Error("InvalidRequest", _UPLOAD_NEEDS_KEY)
    if not p.opened_by(customer[0]):
        raise S3Error("InvalidArgument", _UPLOAD_MISMATCH, ArgumentName=C_KEY, ArgumentValue="null")
    return Protection(MODE_C, customer_key=customer[0], customer_key_md5=customer[1], proof=p.proof)


def for_read(ctx: Ctx, v: ObjectVersion, *, source: bool = False) -> tuple[Protection, KeyResolver]:
    """(how `v` is encrypted, the resolver that reads it), after AWS's checks of the SSE-C key the
    request brings for it (`source`: the copy source's headers)."""
    p = protection_of(ctx.store, v)
    customer = _customer_key(ctx, COPY_SOURCE if source else OWN)
    if p.mode == MODE_C:
        if customer is None:
            raise S3Error("InvalidRequest", _STORED_ENCRYPTED)
        if not p.opened_by(customer[0]):
            raise S3Error("AccessDenied")
        # (a version rebuilt by recover-metadata lost the key's MD5 it reports: this is that key)
        return replace(p, customer_key_md5=customer[1]), ctx.keys.resolver(customer[0])
    if customer is not None:
        raise S3Error("InvalidRequest", _NOT_APPLICABLE)
    return p, ctx.keys.resolver()


def copy_plan(wanted: Protection, stored: Protection) -> tuple[bool, Protection]:
    """(whether a copy shares the source's segments, the protection it then has): with the same
    keys it does, and has the source's (its KMS context, its SSE-C key proof); otherwise its
    data is re-encrypted under `wanted`."""
    if not wanted.shares_keys_with(stored):
        return False, wanted
    if stored.mode == MODE_C and not stored.customer_key_md5:  # (recovered: the report is gone)
        return True, wanted
    return True, stored


def changes_encryption(ctx: Ctx) -> bool:
    """Whether a CopyObject names the encryption of its destination (a copy onto itself may then
    change nothing else)."""
    h = ctx.req.headers
    return SSE in h or _has_customer_headers(h)


def headers(ctx: Ctx, p: Protection, *, customer: bool = True, context: bool = False) -> list[tuple[str, str]]:
    """The encryption headers of a response about data protected by `p`: as AWS, the mode and the
    KMS key (as its ARN) and whether Bucket Keys are on; for SSE-C the algorithm and the key's
    MD5 (`customer`: the operation reports them); the encryption context when `context`."""
    if not p.mode:
        return []
    if p.mode == MODE_C:
        return [(C_ALGORITHM, "AES256"), (C_KEY_MD5, p.customer_key_md5)] \
            if customer and p.customer_key_md5 else []
    out = [(SSE, p.mode)]
    if p.mode == MODE_KMS:
        out.append((KMS_KEY, key_arn(p.kms_key_id, ctx.cfg.s3.region, ctx.authz.identities.account_id)))
        if context and p.context:
            out.append((CONTEXT, _context_header(p)))
        if p.bucket_key:
            out.append((BUCKET_KEY, "true"))
    return out


def _context_header(p: Protection) -> str:
    report = p.report()
    return report.get("context", "") if report else ""


# The requests about an upload's parts: the upload's encryption was asked in its
# CreateMultipartUpload; clients send no x-amz-server-side-encryption(-aws-kms-key-id) with them
# (AWS answers the first with 400 InvalidArgument "not supported for this operation").
UPLOAD_PART_OPS = frozenset({Op.UploadPart, Op.UploadPartCopy, Op.CompleteMultipartUpload})


def upload_condition_keys(ctx: Ctx) -> dict[str, str]:
    """s3:x-amz-server-side-encryption and s3:x-amz-server-side-encryption-aws-kms-key-id of a
    request of UPLOAD_PART_OPS: the upload's encryption, as its responses report it (none for
    SSE-C, whose parts bring their own customer-algorithm header, nor for a missing upload).

    AWS's documented "require SSE" bucket policy (Deny s3:PutObject on Null or StringNotEquals
    s3:x-amz-server-side-encryption) sits beside its statement that a multipart upload asks for
    SSE in CreateMultipartUpload alone: with the keys absent from the parts' requests no
    multipart upload (`aws s3 cp --sse` of a large file) could pass that policy. The value is the
    upload's effective encryption, a bucket default included (under such a policy an upload
    created without the header was refused at CreateMultipartUpload)."""
    try:
        up = ctx.store.get_upload(ctx.bucket, ctx.key, ctx.query.get("uploadId", ""))
    except NoSuchUpload:
        return {}
    return {"s3:" + name: value for name, value in headers(ctx, Protection.of_report(up.sse), customer=False)
            if name in (SSE, KMS_KEY)}

"""Bucket default encryption: Put/Get/DeleteBucketEncryption (BucketRecord.encryption).

Objects written without encryption headers get the bucket's default (sse.for_write). New
buckets start with the configured default ([s3] default_bucket_encryption: SSE-S3, as AWS
buckets have since 2023, or none); DeleteBucketEncryption restores that default, as on AWS,
where it means SSE-S3 again. A KMS key named in the configuration must exist: it is stored by
id and reported as its ARN. SSE-C cannot be a default (it has no key to default to), as on AWS.
"""

from __future__ import annotations

from typing import Any

from appliance.config import default_bucket_encryption
from appliance.engine import BucketRecord
from appliance.iam.kms import MODE_KMS, MODE_S3, key_arn

from .body import read_xml
from .ctx import Ctx, OpHandler
from .errors import S3Error
from .http import Response
from .routing import Op
from .sse import DSSE
from .xmlio import children, doc, el, parse, text

XML = ("Content-Type", "application/xml")
DOC_LIMIT = 64 * 1024


def parse_encryption(body: bytes) -> dict[str, Any]:
    """A ServerSideEncryptionConfiguration -> {"algorithm", "kms_key_id" (as given), "bucket_key"}."""
    root = parse(body, "ServerSideEncryptionConfiguration")
    rules = children(root, "Rule")
    if len(rules) != 1:
        raise S3Error("MalformedXML")
    rule = rules[0]
    defaults = children(rule, "ApplyServerSideEncryptionByDefault")
    if len(defaults) != 1:
        raise S3Error("MalformedXML")
    algorithm = (text(defaults[0], "SSEAlgorithm") or "").strip()
    kms_key = (text(defaults[0], "KMSMasterKeyID") or "").strip()
    if algorithm == DSSE:
        raise S3Error("NotImplemented", "Dual-layer server-side encryption (aws:kms:dsse) is not implemented.")
    if algorithm not in (MODE_S3, MODE_KMS):
        raise S3Error("MalformedXML")
    if kms_key and algorithm != MODE_KMS:
        raise S3Error("InvalidArgument", "a KMSMasterKeyID is not applicable if the default sse algorithm is not "
                      "aws:kms or aws:kms:dsse", ArgumentName="ApplyServerSideEncryptionByDefault")
    bucket_key = (text(rule, "BucketKeyEnabled") or "false").strip().lower()
    if bucket_key not in ("true", "false"):
        raise S3Error("MalformedXML")
    for blocked in children(rule, "BlockedEncryptionTypes"):
        types = [(t.text or "").strip() for t in children(blocked, "EncryptionType")]
        if any(t != "NONE" for t in types):
            raise S3Error("NotImplemented", "Blocking encryption types is not implemented.")
    return {"algorithm": algorithm, "kms_key_id": kms_key, "bucket_key": bucket_key == "true"}


async def put_bucket_encryption(ctx: Ctx) -> Response:
    asked = await read_xml(ctx, parse_encryption, DOC_LIMIT)
    config: dict[str, Any] = {"algorithm": asked["algorithm"]}
    if asked["algorithm"] == MODE_KMS:
        if asked["kms_key_id"]:  # stored by id: a later rename of the key's alias changes nothing
            config["kms_key_id"] = ctx.keys.kms.find(asked["kms_key_id"]).key_id
        config["bucket_key"] = asked["bucket_key"]

    def change(rec: BucketRecord) -> None:
        rec.encryption = config

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(200)


async def get_bucket_encryption(ctx: Ctx) -> Response:
    enc = ctx.store.get_bucket(ctx.bucket).encryption
    if not enc:
        raise S3Error("ServerSideEncryptionConfigurationNotFoundError", BucketName=ctx.bucket)
    items = [el("SSEAlgorithm", enc["algorithm"])]
    if enc.get("kms_key_id"):
        items.append(el("KMSMasterKeyID", key_arn(enc["kms_key_id"], ctx.cfg.s3.region,
                                                  ctx.authz.identities.account_id)))
    rule = (f"<Rule><ApplyServerSideEncryptionByDefault>{''.join(items)}</ApplyServerSideEncryptionByDefault>"
            f"{el('BucketKeyEnabled', bool(enc.get('bucket_key')))}</Rule>")
    return Response(200, [XML], doc("ServerSideEncryptionConfiguration", [rule]))


async def delete_bucket_encryption(ctx: Ctx) -> Response:
    default = default_bucket_encryption(ctx.cfg)

    def change(rec: BucketRecord) -> None:
        rec.encryption = default

    await ctx.store.update_bucket(ctx.bucket, change)
    return Response(204)


OPS: dict[str, OpHandler] = {
    Op.PutBucketEncryption: put_bucket_encryption,
    Op.GetBucketEncryption: get_bucket_encryption,
    Op.DeleteBucketEncryption: delete_bucket_encryption,
}

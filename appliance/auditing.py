"""Where administrative changes are seen and handed to the audit log (appliance/audit.py): the
control socket (the CLI), the IAM API, and S3 requests that change a bucket's settings."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from appliance.engine import keys
from appliance.engine.metadb import MetaDB
from appliance.engine.records import BucketRecord
from appliance.iam.policy import Principal
from s3gw.exchange import Exchange

from .audit import AuditLog, changed_fields, describe_uid, is_change

# S3 operations that change configuration (the object-level ones change data, not settings)
S3_ADMIN_OPS = frozenset({"CreateBucket", "DeleteBucket", "PutBucketLogging"}) | frozenset(
    op for op in ("PutBucketVersioning", "PutBucketAcl", "PutBucketTagging", "DeleteBucketTagging",
                  "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketOwnershipControls",
                  "DeleteBucketOwnershipControls", "PutPublicAccessBlock", "DeletePublicAccessBlock",
                  "PutBucketEncryption", "DeleteBucketEncryption", "PutObjectLockConfiguration",
                  "PutBucketCors", "DeleteBucketCors", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle",
                  "PutBucketReplication", "DeleteBucketReplication", "PutBucketNotificationConfiguration"))
_TARGETS = ("name", "user", "user_name", "group", "policy", "access_key", "disk_id", "path", "bucket", "key_id")


def _target(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={args[k]}" for k in _TARGETS if isinstance(args.get(k), str | int) and args.get(k))


class Auditor:
    def __init__(self, log: AuditLog, db: MetaDB) -> None:
        self.log = log
        self.db = db

    def control_call(self, op: str, args: dict[str, Any], uid: int, pid: int, result: Any, error: str) -> None:
        if not is_change(op):
            return
        self.log.record(source="cli", who=describe_uid(uid), where=f"pid {pid}", action=op, target=_target(args),
                        outcome=error or "ok", before=None, after={"args": args, "result": result})

    def iam_change(self, principal: Principal, action: str, params: dict[str, str], remote: str) -> None:
        after = {k: v for k, v in params.items() if k not in ("Action", "Version")}
        target = params.get("UserName") or params.get("GroupName") or params.get("PolicyArn") or \
            params.get("PolicyName") or ""
        self.log.record(source="iam", who=principal.arn or "anonymous", where=remote, action=f"iam:{action}",
                        target=target, after=after)

    def observe(self, ex: Exchange) -> None:
        """S3 requests: only successful bucket-setting changes."""
        if ex.op not in S3_ADMIN_OPS or not 200 <= ex.status < 300:
            return
        name = ex.bucket or ex.query.partition("?")[0].strip("/").partition("/")[0]
        rec = self.db.get_record(BucketRecord, keys.bucket(name))
        after = asdict(rec) if rec is not None else None
        before, after = changed_fields(ex.bucket_before, after)
        self.log.record(source="s3", who=ex.principal or "anonymous", where=ex.remote, action=ex.op, target=name,
                        before=before, after=after)

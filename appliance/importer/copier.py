"""Copying one source bucket into Stowage: its configuration, then every version of every key in
order (delete markers included), each verified after the copy.

A version keeps its data, user metadata, content headers, tags, checksums, storage class,
server-side encryption mode and object lock (retention and legal hold). Version ids and
timestamps are the target's own (S3 has no way to set them); the order of versions is kept.
A multipart object is copied with the same part boundaries, so its ETag (and a COMPOSITE
checksum) come out identical; a single object larger than SINGLE_MAX is streamed as multipart.
Memory per worker is bounded by one part. Verification: the ETag Stowage returns equals the
source's, or else the data read back from Stowage has the SHA-256 of the data read from the source.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from . import notifications
from .cursor import Cursor
from .ratelimit import RateLimit
from .report import ImportReport
from .source import BucketConfig, SourceVersion, error_code

log = logging.getLogger("stowage.import")

SINGLE_MAX = 16 << 20  # a larger single object is streamed as multipart
PART_SIZE = 16 << 20  # the part size then
READ_CHUNK = 1 << 20
# Part sizes (MiB) of common clients, most used first: aws CLI and boto3 8, rclone and the S3
# minimum 5, mc 16, then others seen in the wild.
COMMON_PART_MIB = (8, 5, 16, 10, 15, 32, 64, 100, 128, 256, 512)
CHECKSUMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")
CONTENT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")


class VerifyError(Exception):
    pass


@dataclass
class Clients:
    source: Any  # boto3 S3 clients
    target: Any


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
    return str(exc) or type(exc).__name__


class BucketCopier:
    def __init__(self, clients: Clients, bucket: str, config: BucketConfig, cursor: Cursor, report: ImportReport,
                 limit: RateLimit, *, dry_run: bool = False,
                 progress: Callable[[int, int], None] = lambda _bytes, _versions: None) -> None:
        self.src, self.dst = clients.source, clients.target
        self.bucket = bucket
        self.config = config
        self.cursor, self.report, self.limit = cursor, report, limit
        self.dry_run = dry_run
        self.progress = progress

    # --- configuration -------------------------------------------------------------------------

    def configure(self) -> None:
        """Create the bucket (with object lock when the source has it) and copy its configuration.
        What Stowage refuses is reported as skipped with its answer."""
        c, b = self.config, self.bucket
        items = self._config_items()
        if self.dry_run:
            self.report.configuration += [f"{b}: {name} (would copy)" for name, _ in items]
            return
        try:
            if c.object_lock:
                self.dst.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
            else:
                self.dst.create_bucket(Bucket=b)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
        for name, apply in items:
            try:
                apply()
                self.report.configuration.append(f"{b}: {name}")
            except (ClientError, BotoCoreError) as exc:
                self.report.skip(f"{b}: {name}", _describe(exc))
        if c.notification:
            self._notification(c.notification)

    def _notification(self, config: dict[str, Any]) -> None:
        """The rules whose target exists here (notifications.py); each refused one is reported."""
        b = self.bucket
        rules, skipped = notifications.map_rules(config)
        for label, reason in skipped:
            self.report.skip(f"{b}: {label}", reason)
        if not rules:
            return
        try:
            self.dst.put_bucket_notification_configuration(
                Bucket=b, NotificationConfiguration=notifications.document(rules))
            accepted = rules
        except ClientError:  # one rule's target is missing here: find which, one at a time
            accepted = []
            for rule in rules:
                try:
                    self.dst.put_bucket_notification_configuration(
                        Bucket=b, NotificationConfiguration=notifications.document([rule]))
                    accepted.append(rule)
                except ClientError as exc:
                    self.report.skip(f"{b}: notification rule {rule[1].get('Id', '')}", _describe(exc))
            self.dst.put_bucket_notification_configuration(
                Bucket=b, NotificationConfiguration=notifications.document(accepted))
        if accepted:
            self.report.configuration.append(f"{b}: notification rules ({len(accepted)})")

    def _config_items(self) -> list[tuple[str, Callable[[], object]]]:
        c, b, dst = self.config, self.bucket, self.dst
        items: list[tuple[str, Callable[[], object]]] = []
        if c.versioning or c.object_lock:
            # versions are written into an enabled bucket; Suspended is set after the copy
            items.append(("versioning", lambda: dst.put_bucket_versioning(
                Bucket=b, VersioningConfiguration={"Status": "Enabled"})))
        if c.object_lock and c.object_lock.get("Rule"):
            items.append(("object lock default retention", lambda: dst.put_object_lock_configuration(
                Bucket=b, ObjectLockConfiguration=_lock_config(c.object_lock or {}))))
        if c.policy:
            items.append(("policy", lambda: dst.put_bucket_policy(Bucket=b, Policy=c.policy)))
        if c.tags is not None:
            items.append(("tags", lambda: dst.put_bucket_tagging(Bucket=b, Tagging={"TagSet": c.tags})))
        if c.encryption:
            items.append(("default encryption", lambda: dst.put_bucket_encryption(
                Bucket=b, ServerSideEncryptionConfiguration=_local_encryption(c.encryption or {}))))
        if c.public_access_block:
            items.append(("public access block", lambda: dst.put_public_access_block(
                Bucket=b, PublicAccessBlockConfiguration=c.public_access_block)))
        if c.ownership:
            items.append(("object ownership", lambda: dst.put_bucket_ownership_controls(
                Bucket=b, OwnershipControls=c.ownership)))
        if c.lifecycle:
            items.append(("lifecycle", lambda: dst.put_bucket_lifecycle_configuration(
                Bucket=b, LifecycleConfiguration={"Rules": c.lifecycle})))
        if c.cors:
            items.append(("CORS", lambda: dst.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": c.cors})))
        return items

    def finish(self) -> None:
        if self.config.versioning == "Suspended" and not self.dry_run:
            try:
                self.dst.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Suspended"})
            except ClientError as exc:
                self.report.skip(f"{self.bucket}: versioning Suspended", _describe(exc))

    # --- objects -------------------------------------------------------------------------------

    def copy_key(self, key: str, versions: list[SourceVersion]) -> None:
        """Every version of one key not copied before, oldest first. A failure stops this key
        (a later version must not overtake one that failed) and is reported."""
        for v in versions:
            if self.cursor.done(self.bucket, key, v.identity):
                continue
            item = f"{self.bucket}/{key} ({v.version_id})"
            try:
                self.copy_version(v)
            except SkipVersion as exc:
                self.report.skip(item, str(exc))
                self.cursor.record(self.bucket, key, v.identity)
            except (ClientError, BotoCoreError, VerifyError, OSError) as exc:
                self.report.fail(item, _describe(exc))
                log.warning("import: %s failed: %s", item, _describe(exc))
                return

    def delete_gone(self, key: str) -> None:
        if not self.dry_run:
            self.dst.delete_object(Bucket=self.bucket, Key=key)
            self.cursor.forget(self.bucket, key)
        self.report.add(deleted=1)

    def copy_version(self, v: SourceVersion) -> None:
        b = self.bucket
        if v.delete_marker:
            if not self.dry_run:
                self.dst.delete_object(Bucket=b, Key=v.key)
                self.cursor.record(b, v.key, v.identity)
            self.report.add(delete_markers=1)
            self.progress(0, 1)
            return
        if self.dry_run:
            self.report.add(versions=1, nbytes=v.size)
            self.progress(v.size, 1)
            return
        vid = {"VersionId": v.version_id} if v.version_id != "null" else {}
        head = self.src.head_object(Bucket=b, Key=v.key, ChecksumMode="ENABLED", **vid)
        if head.get("SSECustomerAlgorithm"):
            raise SkipVersion("SSE-C: the source encrypted it with a customer key the import does not have")
        args = self._put_args(v, head, vid)
        checksum = {f"Checksum{a}": head[f"Checksum{a}"] for a in CHECKSUMS if head.get(f"Checksum{a}")}
        if v.parts > 1 or v.size > SINGLE_MAX:
            written, digest = self._multipart(v, vid, args, checksum, head)
        else:
            body, digest = self._read(v, vid, None)
            single_checksum = checksum if head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" else {}
            written = self.dst.put_object(Bucket=b, Key=v.key, Body=body, ContentMD5=_md5(body), **args,
                                          **single_checksum)
        self._verify(v, written, digest)
        self.cursor.record(b, v.key, v.identity)
        self.report.add(versions=1, nbytes=v.size)
        self.progress(0, 1)

    def _put_args(self, v: SourceVersion, head: dict[str, Any], vid: dict[str, str]) -> dict[str, Any]:
        args: dict[str, Any] = {h: head[h] for h in CONTENT_HEADERS if head.get(h)}
        if head.get("Metadata"):
            args["Metadata"] = head["Metadata"]
        if head.get("Expires"):
            args["Expires"] = head["Expires"]
        storage_class = head.get("StorageClass") or v.storage_class
        if storage_class and storage_class != "STANDARD":
            args["StorageClass"] = storage_class
        if head.get("ServerSideEncryption") in ("AES256", "aws:kms"):
            args["ServerSideEncryption"] = head["ServerSideEncryption"]  # Stowage's own key for aws:kms
        tags = self.src.get_object_tagging(Bucket=self.bucket, Key=v.key, **vid).get("TagSet", [])
        if tags:
            args["Tagging"] = urlencode([(t["Key"], t["Value"]) for t in tags])
        args.update(self._lock_args(v, head, vid))
        return args

    def _lock_args(self, v: SourceVersion, head: dict[str, Any], vid: dict[str, str]) -> dict[str, Any]:
        if not self.config.object_lock:
            return {}
        mode, until, hold = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"), \
            head.get("ObjectLockLegalHoldStatus")
        if mode is None:  # not every service reports them on HEAD
            try:
                ret = self.src.get_object_retention(Bucket=self.bucket, Key=v.key, **vid).get("Retention", {})
                mode, until = ret.get("Mode"), ret.get("RetainUntilDate")
            except ClientError:
                pass
        if hold is None:
            with contextlib.suppress(ClientError):
                hold = self.src.get_object_legal_hold(Bucket=self.bucket, Key=v.key, **vid).get(
                    "LegalHold", {}).get("Status")
        out: dict[str, Any] = {}
        if mode and isinstance(until, dt.datetime) and until > dt.datetime.now(dt.UTC):
            out |= {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until}
        if hold == "ON":
            out["ObjectLockLegalHoldStatus"] = "ON"
        return out

    def _read(self, v: SourceVersion, vid: dict[str, str], byte_range: tuple[int, int] | None,
              digest: Any = None) -> tuple[bytes, Any]:
        """Bytes of the version (or of [first, last]), rate-limited, hashed into `digest`."""
        digest = digest or hashlib.sha256()
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        resp = self.src.get_object(Bucket=self.bucket, Key=v.key, **vid, **extra)
        chunks = []
        for chunk in resp["Body"].iter_chunks(READ_CHUNK):
            self.limit.take(len(chunk))
            digest.update(chunk)
            chunks.append(chunk)
            self.progress(len(chunk), 0)
        return b"".join(chunks), digest

    def _part_sizes(self, v: SourceVersion, vid: dict[str, str]) -> list[int]:
        """The source's part boundaries: asked with HEAD ?partNumber=N (AWS, MinIO, moto), else
        guessed from the part count and the part sizes clients use (services such as RGW 16
        ignore partNumber). A wrong guess only changes the ETag; the data is verified anyway."""
        if v.parts > 1:
            try:
                sizes = [int(self.src.head_object(Bucket=self.bucket, Key=v.key, PartNumber=n, **vid)["ContentLength"])
                         for n in range(1, v.parts + 1)]
                if sum(sizes) == v.size:
                    return sizes
            except ClientError:
                pass
            part = next((p << 20 for p in COMMON_PART_MIB if -(-v.size // (p << 20)) == v.parts),
                        -(-v.size // v.parts))
            return _split(v.size, part)
        return _split(v.size, PART_SIZE)

    def _multipart(self, v: SourceVersion, vid: dict[str, str], args: dict[str, Any], checksum: dict[str, str],
                   head: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        b = self.bucket
        algorithm = next((name.removeprefix("Checksum") for name in checksum), "")
        full_object = head.get("ChecksumType") == "FULL_OBJECT"
        create: dict[str, Any] = dict(args)
        if algorithm:
            create["ChecksumAlgorithm"] = algorithm
            if full_object:
                create["ChecksumType"] = "FULL_OBJECT"
        upload_id = self.dst.create_multipart_upload(Bucket=b, Key=v.key, **create)["UploadId"]
        try:
            digest = hashlib.sha256()
            parts, offset = [], 0
            for n, size in enumerate(self._part_sizes(v, vid), 1):
                data, _ = self._read(v, vid, (offset, offset + size - 1), digest)
                offset += size
                up = self.dst.upload_part(Bucket=b, Key=v.key, UploadId=upload_id, PartNumber=n, Body=data,
                                          ContentMD5=_md5(data),
                                          **({"ChecksumAlgorithm": algorithm} if algorithm else {}))
                part = {"PartNumber": n, "ETag": up["ETag"]}
                if algorithm and up.get(f"Checksum{algorithm}"):
                    part[f"Checksum{algorithm}"] = up[f"Checksum{algorithm}"]
                parts.append(part)
            complete: dict[str, Any] = {}
            if algorithm and full_object:
                complete = {f"Checksum{algorithm}": checksum[f"Checksum{algorithm}"], "ChecksumType": "FULL_OBJECT"}
            done = self.dst.complete_multipart_upload(Bucket=b, Key=v.key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts}, **complete)
            return done, digest
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.dst.abort_multipart_upload(Bucket=b, Key=v.key, UploadId=upload_id)
            raise

    def _verify(self, v: SourceVersion, written: dict[str, Any], digest: Any) -> None:
        if v.etag and str(written.get("ETag", "")).strip('"') == v.etag.strip('"'):
            return
        # a different ETag (an encrypted source, or new part boundaries): compare the data itself
        vid = {"VersionId": written["VersionId"]} if written.get("VersionId") not in (None, "null") else {}
        got = self.dst.get_object(Bucket=self.bucket, Key=v.key, **vid)
        check = hashlib.sha256()
        for chunk in got["Body"].iter_chunks(READ_CHUNK):
            check.update(chunk)
        if check.hexdigest() != digest.hexdigest():
            raise VerifyError(f"the copy's SHA-256 {check.hexdigest()} differs from the source's {digest.hexdigest()}")


class SkipVersion(Exception):
    """A version that cannot be copied, for a reason the report states."""


def _split(size: int, part: int) -> list[int]:
    return [min(part, size - i * part) for i in range(max(1, -(-size // part)))]


def _md5(data: bytes) -> str:
    """Content-MD5: the gateway checks the bytes it received (and requires it, or a checksum,
    on a write with object lock parameters)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _lock_config(conf: dict[str, Any]) -> dict[str, Any]:
    """The default retention as S3 takes it: Days or Years, not both (some services list the
    other one as 0)."""
    retention = dict(conf.get("Rule", {}).get("DefaultRetention", {}))
    for unit in ("Days", "Years"):
        if not retention.get(unit):
            retention.pop(unit, None)
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}


def _local_encryption(conf: dict[str, Any]) -> dict[str, Any]:
    """The source's default encryption, with a KMS key id of the source dropped (Stowage uses its
    own aws/s3 key then)."""
    rules = []
    for rule in conf.get("Rules", []):
        rule = dict(rule)
        default = dict(rule.get("ApplyServerSideEncryptionByDefault", {}))
        default.pop("KMSMasterKeyID", None)
        rule["ApplyServerSideEncryptionByDefault"] = default
        rules.append(rule)
    return {"Rules": rules}

"""A real appliance filled with every kind of metadata there is, and a dump of all of it.

`World` writes, over S3 (TLS, so SSE-C works), the IAM API, the KMS CLI and the mount: objects
(0-byte ones too) with user metadata, content headers, tags, checksums (single and multipart,
COMPOSITE and FULL_OBJECT), storage classes, SSE-S3/SSE-KMS/SSE-C, object lock retention and
legal holds, ACLs; versions, delete markers and version deletions; deleted keys; every bucket
configuration (CORS, lifecycle and access logging included); users, groups, access keys, policies and a KMS
key; incomplete multipart uploads; completed ones (completion records); and through the mount
chmod, chown, symlinks, hard links, renames and directories. It does it in two phases (so a test
can take a metadata snapshot in between) and the second one also removes and changes what the
first one made.

`dump` reads all of it back through the same interfaces; `db_dump` reads the raw metadata DB.
Recovery is correct when both dumps are the same before and after it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import plyvel
from botocore.config import Config
from botocore.exceptions import ClientError

from appliance.engine import keys
from appliance.engine.records import SegmentRecord
from tests.conftest import DaemonProc
from tests.s3.test_checksum_modes import b64
from tests.tlscert import self_signed_cert

MIB = 1 << 20
CKEY = bytes(range(32))  # the SSE-C customer key of keys under ssec/
FAR = datetime(2099, 1, 1, tzinfo=UTC)
KMS_KEY = "recovery"
BUCKETS = ("plain", "vers", "cfg", "vault", "gone-bucket")
SSEC = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CKEY}
# GetObjectAttributes gets no help from botocore: the key in base64 and its MD5, as sent
SSEC_RAW = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(CKEY).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(CKEY).digest()).decode()}


def tls_mount_daemon(base: Path) -> DaemonProc:
    """A daemon with TLS (SSE-C needs it) and the mount (at DATA/mnt)."""
    cert, key = self_signed_cert(base)
    config = base / "stowage.toml"
    # access logs are delivered once a day: no log object appears between two dumps
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
                      '[access_log]\ndelivery_interval_seconds = 86400\n')
    d = DaemonProc(base / "data", ["--config", str(config)])
    d.cert = cert  # type: ignore[attr-defined]
    return d


def client(d: DaemonProc, service: str = "s3") -> Any:
    return boto3.client(service, endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                        aws_secret_access_key=d.secret_key, region_name="us-east-1",
                        verify=str(d.cert),  # type: ignore[attr-defined]
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def _policy(resource: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": resource}]})


class World:
    def __init__(self, d: DaemonProc) -> None:
        self.d = d
        self.s3 = client(d)
        self.iam = client(d, "iam")
        self.mnt = Path(d.mount or "")
        self.rnd = random.Random(14)
        # completed multipart uploads: (bucket, key, upload id, parts, the completion's ETag)
        self.completed: list[tuple[str, str, str, list[dict[str, Any]], str]] = []

    def body(self, n: int) -> bytes:
        return self.rnd.randbytes(n)

    # --- phase A -----------------------------------------------------------------------------

    def phase_a(self) -> None:
        s3, iam = self.s3, self.iam
        self.d.cli("kms", "key", "create", KMS_KEY, "--description", "recovery test")
        for u in ("alice", "bob", "carol"):
            iam.create_user(UserName=u, Path="/staff/")
            iam.create_access_key(UserName=u)
        iam.create_group(GroupName="devs")
        iam.add_user_to_group(GroupName="devs", UserName="alice")
        arn = iam.create_policy(PolicyName="read-plain", PolicyDocument=_policy("arn:aws:s3:::plain/*"))
        iam.attach_user_policy(UserName="alice", PolicyArn=arn["Policy"]["Arn"])
        iam.attach_group_policy(GroupName="devs", PolicyArn=arn["Policy"]["Arn"])
        iam.put_user_policy(UserName="bob", PolicyName="inline", PolicyDocument=_policy("arn:aws:s3:::cfg/*"))

        s3.create_bucket(Bucket="plain")
        s3.create_bucket(Bucket="vers")
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(Bucket="vault", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
        s3.create_bucket(Bucket="cfg")
        s3.put_bucket_ownership_controls(Bucket="cfg", OwnershipControls={
            "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
        s3.put_bucket_acl(Bucket="cfg", ACL="public-read")
        s3.put_public_access_block(Bucket="cfg", PublicAccessBlockConfiguration={
            "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False})
        s3.put_bucket_policy(Bucket="cfg", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/staff/alice"]},
             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cfg/*"}]}))
        s3.put_bucket_encryption(Bucket="cfg", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY},
             "BucketKeyEnabled": True}]})
        s3.put_bucket_tagging(Bucket="cfg", Tagging={"TagSet": [{"Key": "team", "Value": "storage"}]})
        s3.put_bucket_cors(Bucket="cfg", CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["https://example.com"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}]})
        s3.put_bucket_lifecycle_configuration(Bucket="plain", LifecycleConfiguration={"Rules": [
            {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 365}}]})
        s3.put_bucket_logging(Bucket="vers", BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "plain", "TargetPrefix": "access/"}})
        s3.create_bucket(Bucket="gone-bucket")

        for i in range(4):  # empty objects: the shard headers know nothing of them
            s3.put_object(Bucket="plain", Key=f"empty/{i}", Body=b"", Metadata={"n": str(i)})
        s3.put_object(Bucket="plain", Key="meta/full", Body=self.body(3000), ContentType="text/x-test",
                      ContentEncoding="identity", ContentDisposition='attachment; filename="x"',
                      ContentLanguage="fr", CacheControl="max-age=60", Expires=FAR,
                      Metadata={"colour": "blue", "size": "large"}, Tagging="a=1&b=two",
                      StorageClass="STANDARD_IA", ChecksumAlgorithm="SHA256")
        s3.put_object(Bucket="plain", Key="crc/32", Body=self.body(100), ChecksumAlgorithm="CRC32")
        s3.put_object(Bucket="plain", Key="sse/s3", Body=self.body(5000), ServerSideEncryption="AES256")
        s3.put_object(Bucket="plain", Key="sse/kms", Body=self.body(5000), ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=KMS_KEY)
        s3.put_object(Bucket="plain", Key="ssec/a", Body=self.body(5000), **SSEC)
        s3.put_object(Bucket="plain", Key="to-delete/a", Body=self.body(10))
        s3.put_object(Bucket="plain", Key="to-retag", Body=self.body(10), Tagging="x=1")
        s3.put_object(Bucket="cfg", Key="acl", Body=self.body(10), ACL="public-read")
        s3.put_object(Bucket="cfg", Key="default-enc", Body=self.body(10))
        s3.copy_object(Bucket="plain", Key="copy/replaced", CopySource={"Bucket": "plain", "Key": "meta/full"},
                       MetadataDirective="REPLACE", Metadata={"copied": "yes"}, ContentType="text/plain")
        self._multipart("plain", "mp/composite", "SHA256", None, complete=True)
        self._multipart("plain", "mp/incomplete-a", "CRC32", None, complete=False)
        self._multipart("vers", "mp/full", "CRC32", "FULL_OBJECT", complete=True)
        s3.put_object(Bucket="gone-bucket", Key="x", Body=b"x")

        self.vids: dict[str, str] = {}
        for i in range(3):
            self.vids[f"v{i}"] = s3.put_object(Bucket="vers", Key="doc", Body=f"version {i}".encode())["VersionId"]
        s3.put_object(Bucket="vers", Key="marked", Body=b"soon hidden")
        s3.delete_object(Bucket="vers", Key="marked")  # a delete marker
        s3.delete_object(Bucket="vers", Key="doc", VersionId=self.vids["v0"])  # a version deletion

        self.vids["gov"] = s3.put_object(Bucket="vault", Key="gov", Body=b"g")["VersionId"]
        self.vids["comp"] = s3.put_object(Bucket="vault", Key="comp", Body=b"c", ObjectLockMode="COMPLIANCE",
                                          ObjectLockRetainUntilDate=FAR)["VersionId"]
        self.vids["hold"] = s3.put_object(Bucket="vault", Key="hold", Body=b"h", ObjectLockLegalHoldStatus="ON"
                                          )["VersionId"]

        m = self.mnt / "plain" / "fs"
        m.mkdir()
        (m / "file").write_bytes(self.body(20000))
        os.chmod(m / "file", 0o600)
        os.chown(m / "file", 1234, 5678)
        os.symlink("file", m / "link")
        os.link(m / "file", m / "hard")
        (m / "sub").mkdir(mode=0o750)
        (m / "sub" / "empty").write_bytes(b"")
        (m / "old-name").write_bytes(b"renamed later")

    def _multipart(self, bucket: str, key: str, alg: str, ctype: str | None, complete: bool) -> None:
        kw: dict[str, Any] = {"ChecksumAlgorithm": alg} | ({"ChecksumType": ctype} if ctype else {})
        uid = self.s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"mp": key}, **kw)["UploadId"]
        data = [self.body(5 * MIB), self.body(1234)]
        parts = []
        for n, chunk in enumerate(data, 1):
            r = self.s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=chunk,
                                    ChecksumAlgorithm=alg)
            parts.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
        if not complete:
            return
        extra: dict[str, Any] = {}
        if ctype == "FULL_OBJECT":
            whole = b"".join(data)
            extra = {"ChecksumType": "FULL_OBJECT", f"Checksum{alg}": b64(alg, whole), "MpuObjectSize": len(whole)}
        done = self.s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                                 MultipartUpload={"Parts": parts}, **extra)
        self.completed.append((bucket, key, uid, parts, done["ETag"]))

    # --- phase B: more of everything, and changes to and removals of phase A's ----------------

    def phase_b(self) -> None:
        s3, iam = self.s3, self.iam
        iam.create_user(UserName="dave")
        iam.create_access_key(UserName="dave")
        for k in iam.list_access_keys(UserName="bob")["AccessKeyMetadata"]:
            iam.update_access_key(UserName="bob", AccessKeyId=k["AccessKeyId"], Status="Inactive")
        for k in iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]:
            iam.delete_access_key(UserName="carol", AccessKeyId=k["AccessKeyId"])
        iam.delete_user(UserName="carol")
        iam.create_group(GroupName="ops")
        iam.add_user_to_group(GroupName="ops", UserName="dave")
        self.d.cli("kms", "key", "rotate", KMS_KEY)

        s3.put_bucket_versioning(Bucket="plain", VersioningConfiguration={"Status": "Suspended"})
        s3.put_bucket_tagging(Bucket="cfg", Tagging={"TagSet": [{"Key": "team", "Value": "s3"}]})
        s3.put_bucket_cors(Bucket="cfg", CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"]}]})
        s3.delete_bucket_policy(Bucket="cfg")
        s3.delete_object(Bucket="gone-bucket", Key="x")
        s3.delete_bucket(Bucket="gone-bucket")
        s3.create_bucket(Bucket="late")
        s3.put_bucket_versioning(Bucket="late", VersioningConfiguration={"Status": "Enabled"})

        for i in range(4, 6):
            s3.put_object(Bucket="late", Key=f"empty/{i}", Body=b"")
        s3.put_object(Bucket="late", Key="meta", Body=self.body(700), ContentType="application/x-late",
                      Metadata={"late": "1"}, Tagging="late=yes", StorageClass="GLACIER_IR",
                      ChecksumAlgorithm="CRC32C")
        s3.put_object(Bucket="late", Key="ssec/b", Body=self.body(70000), **SSEC)
        s3.put_object(Bucket="late", Key="sse/kms", Body=self.body(700), ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=KMS_KEY)
        s3.delete_object(Bucket="plain", Key="to-delete/a")
        s3.put_object(Bucket="plain", Key="to-delete/b", Body=b"b")
        s3.delete_object(Bucket="plain", Key="to-delete/b")
        s3.put_object_tagging(Bucket="plain", Key="to-retag", Tagging={"TagSet": [{"Key": "y", "Value": "2"}]})
        s3.delete_object_tagging(Bucket="plain", Key="meta/full")
        s3.put_object_acl(Bucket="cfg", Key="acl", ACL="private")
        s3.copy_object(Bucket="plain", Key="meta/full", CopySource={"Bucket": "plain", "Key": "meta/full"},
                       MetadataDirective="REPLACE", Metadata={"colour": "red"}, ContentType="text/x-changed",
                       StorageClass="STANDARD")  # a metadata-only change in place
        self._multipart("late", "mp/composite", "CRC32C", None, complete=True)
        self._multipart("late", "mp/incomplete-b", "SHA1", None, complete=False)
        up = s3.create_multipart_upload(Bucket="plain", Key="mp/aborted")["UploadId"]
        s3.abort_multipart_upload(Bucket="plain", Key="mp/aborted", UploadId=up)

        self.vids["v3"] = s3.put_object(Bucket="vers", Key="doc", Body=b"version 3")["VersionId"]
        s3.delete_object(Bucket="vers", Key="doc", VersionId=self.vids["v1"])
        s3.delete_object(Bucket="vers", Key="doc")  # a marker on top
        s3.put_object(Bucket="vers", Key="marked", Body=b"back again")
        s3.put_object_legal_hold(Bucket="vault", Key="hold", LegalHold={"Status": "OFF"})
        s3.put_object_retention(Bucket="vault", Key="gov", Retention={"Mode": "GOVERNANCE",
                                                                       "RetainUntilDate": FAR})
        s3.put_object_legal_hold(Bucket="vault", Key="comp", LegalHold={"Status": "ON"})
        self.vids["late-lock"] = s3.put_object(Bucket="vault", Key="late", Body=b"l")["VersionId"]

        m = self.mnt / "plain" / "fs"
        os.chmod(m / "hard", 0o640)
        os.chown(m / "sub", 42, 43)
        os.rename(m / "old-name", m / "sub" / "new-name")
        os.link(m / "sub" / "new-name", m / "second-name")
        os.symlink("../file", m / "sub" / "up")
        (m / "late-file").write_bytes(self.body(3000))
        os.utime(m / "late-file", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
        (m / "doomed").write_bytes(b"doomed")
        os.unlink(m / "doomed")
        self.sync_mount()

    def sync_mount(self) -> None:
        """The mount's acknowledgement: fsync of the directories (fsyncdir makes every earlier
        commit of the mount durable, directory times included: fusefs/SEMANTICS.md)."""
        for d in (self.mnt / "plain" / "fs" / "sub", self.mnt / "plain" / "fs", self.mnt / "plain"):
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- dumps ---------------------------------------------------------------------------------


def check_completions_repeat(d: DaemonProc, completed: list[tuple[str, str, str, list[dict[str, Any]], str]]) -> None:
    """A repeated CompleteMultipartUpload answers as the first did (its completion record)."""
    s3 = client(d)
    assert completed
    for bucket, key, uid, parts, etag in completed:
        again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})
        assert again["ETag"] == etag, (bucket, key)


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


def _try(call: Any, **kw: Any) -> Any:
    try:
        out = call(**kw)
    except ClientError as exc:
        return {"error": exc.response["Error"]["Code"]}
    if isinstance(out, dict) and "Body" in out:
        out = dict(out, Body=hashlib.sha256(out["Body"].read()).hexdigest())
    return _clean(out)


def _pages(call: Any, key: str, **kw: Any) -> list[Any]:
    out: list[Any] = []
    for page in call.__self__.get_paginator(call.__name__).paginate(**kw):
        out += page.get(key, [])
    return out


def dump(d: DaemonProc, mount: bool = True) -> dict[str, Any]:
    """Everything a client can see of the appliance's metadata."""
    s3, iam = client(d), client(d, "iam")
    out: dict[str, Any] = {"buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"])}
    for b in out["buckets"]:
        bd: dict[str, Any] = {}
        for name in ("get_bucket_versioning", "get_bucket_policy", "get_bucket_acl", "get_bucket_ownership_controls",
                     "get_public_access_block", "get_bucket_encryption", "get_bucket_tagging",
                     "get_object_lock_configuration", "get_bucket_location", "get_bucket_cors",
                     "get_bucket_logging", "get_bucket_replication", "get_bucket_notification_configuration",
                     "get_bucket_lifecycle_configuration"):
            bd[name] = _try(getattr(s3, name), Bucket=b)
        versions = []
        listing = [(v, False) for v in _pages(s3.list_object_versions, "Versions", Bucket=b)]
        listing += [(v, True) for v in _pages(s3.list_object_versions, "DeleteMarkers", Bucket=b)]
        for v, marker in sorted(listing, key=lambda t: (t[0]["Key"], t[0]["VersionId"])):
            entry: dict[str, Any] = {"listed": v, "marker": marker}
            if not marker:
                ident = {"Bucket": b, "Key": v["Key"], "VersionId": v["VersionId"]}
                ssec = "ssec/" in v["Key"]
                sse = SSEC if ssec else {}
                entry["get"] = _try(s3.get_object, ChecksumMode="ENABLED", **ident, **sse)
                entry["tags"] = _try(s3.get_object_tagging, **ident)
                entry["acl"] = _try(s3.get_object_acl, **ident)
                entry["retention"] = _try(s3.get_object_retention, **ident)
                entry["hold"] = _try(s3.get_object_legal_hold, **ident)
                entry["attributes"] = _try(s3.get_object_attributes, ObjectAttributes=[
                    "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"],
                    **ident, **(SSEC_RAW if ssec else {}))
            versions.append(entry)
        bd["versions"] = versions
        uploads = []
        for u in _pages(s3.list_multipart_uploads, "Uploads", Bucket=b):
            parts = _try(s3.list_parts, Bucket=b, Key=u["Key"], UploadId=u["UploadId"])
            uploads.append({"upload": u, "parts": parts})
        bd["uploads"] = uploads
        out[f"bucket {b}"] = bd
    users = _pages(iam.list_users, "Users")
    out["users"] = users
    for u in users:
        name = u["UserName"]
        out[f"user {name}"] = {
            "keys": _pages(iam.list_access_keys, "AccessKeyMetadata", UserName=name),
            "attached": _pages(iam.list_attached_user_policies, "AttachedPolicies", UserName=name),
            "inline": {p: _clean(iam.get_user_policy(UserName=name, PolicyName=p))
                       for p in _pages(iam.list_user_policies, "PolicyNames", UserName=name)},
            "groups": _pages(iam.list_groups_for_user, "Groups", UserName=name)}
    out["groups"] = [_clean(iam.get_group(GroupName=g["GroupName"])) for g in _pages(iam.list_groups, "Groups")]
    out["policies"] = _pages(iam.list_policies, "Policies", Scope="Local")
    out["kms"] = json.loads(d.cli("kms", "key", "list", "--json").stdout)
    if mount and d.mount:
        out["mount"] = _walk(Path(d.mount) / "plain" / "fs")  # SSE-C objects do not open there
    return out


def check_world(state: dict[str, Any]) -> None:
    """The dump of a World holds what it wrote (so that comparing two dumps means something)."""
    assert state["buckets"] == ["cfg", "late", "plain", "vault", "vers"]
    versions = [v for b in state["buckets"] for v in state[f"bucket {b}"]["versions"] if not v["marker"]]
    assert len(versions) >= 30 and all("error" not in v["get"] for v in versions), versions
    empty = [v for v in versions if v["listed"]["Key"].startswith("empty/")]
    assert len(empty) == 6 and all(v["listed"]["Size"] == 0 for v in empty)
    assert state["bucket cfg"]["get_bucket_cors"]["CORSRules"][0]["AllowedOrigins"] == ["*"]
    assert state["bucket vers"]["get_bucket_logging"]["LoggingEnabled"]["TargetBucket"] == "plain"
    assert state["bucket plain"]["get_bucket_lifecycle_configuration"]["Rules"][0]["ID"] == "tmp"
    markers = [v["listed"]["Key"] for v in state["bucket vers"]["versions"] if v["marker"]]
    assert sorted(markers) == ["doc", "marked"]
    assert [u["upload"]["Key"] for u in state["bucket plain"]["uploads"]] == ["mp/incomplete-a"]
    assert [u["upload"]["Key"] for u in state["bucket late"]["uploads"]] == ["mp/incomplete-b"]
    assert sorted(u["UserName"] for u in state["users"]) == ["alice", "bob", "dave"]
    assert next(k for k in state["kms"] if k["name"] == KMS_KEY)["versions"] == 2
    mount = state["mount"]
    assert mount["hard"]["same_file_as"] == "file" and mount["link"]["target"] == "file"
    assert mount["sub/new-name"]["same_file_as"] == "second-name" and mount["second-name"]["nlink"] == 2
    assert "doomed" not in mount and "old-name" not in mount


def _walk(root: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            e: dict[str, Any] = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                                 "nlink": st.st_nlink, "mtime": st.st_mtime_ns}
            if stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                e["size"] = st.st_size
                e["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
                e["same_file_as"] = inodes.setdefault(st.st_ino, rel)  # hard links name the first path
            else:
                e.pop("mtime")  # a directory's time moves with its entries' (and reads)
            files[rel] = e
    return files


# the keys whose value legitimately differs after a recovery (they are recomputed or reset)
_RESET = (keys.GC, keys.STAGED, keys.PROGRESS, keys.CHECKPOINT_DUE)


def db_dump(meta: Path) -> dict[bytes, bytes]:
    """The metadata DB's records (daemon stopped), without the ones recovery resets: the GC
    queue and staged segments (their segments go with the orphan sweep), progress records, the
    checkpoint mark, and the records of segments nothing references any more."""
    db = plyvel.DB(str(meta))
    try:
        out = {k: v for k, v in db if not k.startswith(_RESET)}
    finally:
        db.close()
    for k in [k for k in out if k.startswith(keys.SEGMENT)]:
        if SegmentRecord.decode(out[k]).refcount == 0:
            del out[k]
            out.pop(keys.heal(k[1:].decode()), None)
    return out


def describe_diff(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> list[str]:
    out = [f"missing {k!r}" for k in sorted(before.keys() - after.keys())]
    out += [f"extra {k!r}" for k in sorted(after.keys() - before.keys())]
    out += [f"changed {k!r}:\n  before {before[k]!r}\n  after  {after[k]!r}"
            for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return out

"""Server-side encryption seen through the mount (a real daemon with TLS, for SSE-C): SSE-S3 and
SSE-KMS files read and write transparently, new files get the bucket's default, a write into
an encrypted file keeps its key, and SSE-C files show their size but refuse reads and writes
with EACCES while their metadata and names may change."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.tlscert import self_signed_cert

from .conftest import mounted, needs_fuse

CKEY = os.urandom(32)
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CKEY}


@pytest.fixture
def enc_mount(daemon_factory: Any, tmp_path: Path) -> Any:
    cert, key = self_signed_cert(tmp_path)
    config = tmp_path / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    d = daemon_factory(["--config", str(config), "--mount", str(tmp_path / "mnt")])
    d.s3c = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                         aws_secret_access_key=d.secret_key, region_name="us-east-1", verify=str(cert),
                         config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    return d


@needs_fuse
def test_encrypted_files_through_the_mount(enc_mount: Any) -> None:
    d, s3 = enc_mount, enc_mount.s3c
    s3.create_bucket(Bucket="vault")
    mnt = mounted(d) / "vault"
    # a new file gets the bucket's default: SSE-S3
    data = random.Random(1).randbytes(3 * (1 << 20) + 77)
    (mnt / "new.bin").write_bytes(data)
    assert s3.head_object(Bucket="vault", Key="new.bin")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="vault", Key="new.bin")["Body"].read() == data
    assert (mnt / "new.bin").read_bytes() == data
    # an empty file stores no data (and makes no data key): still SSE-S3, and so is what it gets
    (mnt / "empty").touch()
    assert s3.head_object(Bucket="vault", Key="empty")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="vault", Key="empty")["Body"].read() == b""
    with open(mnt / "empty", "ab") as f:
        f.write(b"filled later")
    assert s3.head_object(Bucket="vault", Key="empty")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="vault", Key="empty")["Body"].read() == b"filled later"
    with open(mnt / "new.bin", "r+b") as f:  # a write in the middle of a large file
        f.seek(1 << 20)
        f.write(b"patched")
    patched = data[:1 << 20] + b"patched" + data[(1 << 20) + 7:]
    assert s3.get_object(Bucket="vault", Key="new.bin")["Body"].read() == patched
    assert (mnt / "new.bin").read_bytes() == patched
    # an SSE-KMS object written through S3 keeps its key when the mount appends to it
    d.cli("kms", "key", "create", "mountkey")
    kid = next(k["key_id"] for k in json.loads(d.cli("kms", "key", "list", "--json").stdout)
               if k["name"] == "mountkey")
    s3.put_object(Bucket="vault", Key="k.txt", Body=b"hello", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="alias/mountkey")
    assert (mnt / "k.txt").read_bytes() == b"hello"
    with open(mnt / "k.txt", "ab") as f:
        f.write(b" world")
    head = s3.head_object(Bucket="vault", Key="k.txt")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(f":key/{kid}")
    assert s3.get_object(Bucket="vault", Key="k.txt")["Body"].read() == b"hello world"
    # a bucket made in the mount's root gets the default encryption of new buckets
    (mounted(d) / "madehere").mkdir()
    rules = s3.get_bucket_encryption(Bucket="madehere")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (mounted(d) / "madehere" / "f").write_bytes(b"in a new bucket")
    assert s3.head_object(Bucket="madehere", Key="f")["ServerSideEncryption"] == "AES256"


@needs_fuse
def test_sse_c_files_show_their_size_and_refuse_their_data(enc_mount: Any) -> None:
    d, s3 = enc_mount, enc_mount.s3c
    s3.create_bucket(Bucket="secret")
    body = os.urandom(5000)
    s3.put_object(Bucket="secret", Key="c.bin", Body=body, **SSE_C)
    path = mounted(d) / "secret" / "c.bin"
    assert os.stat(path).st_size == len(body)
    with pytest.raises(PermissionError):
        path.read_bytes()
    for flags in (os.O_WRONLY, os.O_RDWR | os.O_APPEND, os.O_WRONLY | os.O_TRUNC):
        with pytest.raises(PermissionError):
            os.open(path, flags)
    with pytest.raises(PermissionError):
        os.truncate(path, 10)
    # metadata and names change without touching the data
    os.chmod(path, 0o640)
    os.rename(path, path.with_name("moved.bin"))
    assert s3.get_object(Bucket="secret", Key="moved.bin", **SSE_C)["Body"].read() == body
    assert os.stat(path.with_name("moved.bin")).st_mode & 0o777 == 0o640

"""Server-side encryption through S3 on a real daemon (boto3): SSE-S3, SSE-KMS and SSE-C on single
and multipart writes, ranged reads across block boundaries, HEAD, copies between every pair of
modes (shared segments with the same key, re-encrypted otherwise), the errors AWS documents,
no plaintext on the disks or in the metadata, a tampered shard healed, restart, master-key
rotation, `recover-metadata`, disabled KMS keys, and bucket default encryption.

SSE-C needs TLS (as on AWS), so most tests talk to a TLS daemon whose new buckets have no default
encryption ([s3] default_bucket_encryption = "none", so "none" is a mode too); the defaults of a
standard daemon (SSE-S3) are tested on the plain-HTTP one of conftest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appliance.engine.codec import checksum
from appliance.engine.crypto import TAG
from appliance.engine.shardfile import CRC_SIZE, HEADER_SIZE, read_header
from tests.healing.helpers import data_segments
from tests.tlscert import self_signed_cert

from .conftest import DaemonProc

MIB = 1 << 20
PLAIN = MIB - TAG  # content bytes per encrypted block (the default pool's blocks are 1 MiB)
KMS_KEY = "tests"
CKEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MARKER = b"SSE-MARKER-4c1f0b7e-never-on-disk"

# x-amz-server-side-encryption-* of a write, per mode
WRITE: dict[str, dict[str, Any]] = {
    "none": {},
    "SSE-S3": {"ServerSideEncryption": "AES256"},
    "SSE-KMS": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": f"alias/{KMS_KEY}"},
    "SSE-C": {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CKEY},
}
MODES = list(WRITE)


def read_args(mode: str, key: bytes = CKEY) -> dict[str, Any]:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key} if mode == "SSE-C" else {}


def source_args(mode: str) -> dict[str, Any]:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": CKEY} if mode == "SSE-C" else {}


def part_args(mode: str) -> dict[str, Any]:
    return read_args(mode)


def tls_daemon(base: Path, extra: str = "") -> DaemonProc:
    cert, key = self_signed_cert(base)
    config = base / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\ndefault_bucket_encryption = "none"\n{extra}')
    d = DaemonProc(base / "data", ["--no-mount", "--config", str(config)])
    d.cert = cert  # type: ignore[attr-defined]
    return d


def client(d: Any) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                        aws_secret_access_key=d.secret_key, region_name="us-east-1", verify=str(d.cert),
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def tlsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    d = tls_daemon(tmp_path_factory.mktemp("sse"))
    d.start()
    d.cli("kms", "key", "create", KMS_KEY)
    d.cli("kms", "key", "create", "other")
    yield d
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


@pytest.fixture(scope="module")
def s3c(tlsd: Any) -> Any:
    return client(tlsd)


@pytest.fixture(scope="module")
def ebucket(s3c: Any) -> str:
    s3c.create_bucket(Bucket="enc")
    return "enc"


def fail(call: Any, **kw: Any) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a request that must fail."""
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]


def key_id(d: Any, name: str) -> str:
    keys = json.loads(d.cli("kms", "key", "list", "--json").stdout)
    return next(str(k["key_id"]) for k in keys if k["name"] == name)


def check_reported(d: Any, resp: dict[str, Any], mode: str) -> None:
    """What a response says of the encryption, as AWS says it."""
    if mode in ("none", "SSE-C"):
        assert "ServerSideEncryption" not in resp
    if mode == "SSE-S3":
        assert resp["ServerSideEncryption"] == "AES256"
    if mode == "SSE-KMS":
        assert resp["ServerSideEncryption"] == "aws:kms"
        assert resp["SSEKMSKeyId"] == f"arn:aws:kms:us-east-1:{account_of(resp)}:key/{key_id(d, KMS_KEY)}"
    if mode == "SSE-C":
        assert resp["SSECustomerAlgorithm"] == "AES256"
        assert resp["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(CKEY).digest()).decode()
    else:
        assert "SSECustomerAlgorithm" not in resp


def account_of(resp: dict[str, Any]) -> str:
    return str(resp["SSEKMSKeyId"]).split(":")[4]


def new_data_segments(d: Any, before: set[str]) -> set[str]:
    return set(data_segments(d.data_dir)) - before


# --- put, get, ranges, head ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["SSE-S3", "SSE-KMS", "SSE-C"])
def test_single_put_get_ranges_head(tlsd: Any, s3c: Any, ebucket: str, mode: str) -> None:
    body = random.Random(1).randbytes(3 * PLAIN + 123)
    put = s3c.put_object(Bucket=ebucket, Key=f"one-{mode}", Body=body, **WRITE[mode])
    check_reported(tlsd, put, mode)
    md5 = f'"{hashlib.md5(body).hexdigest()}"'
    # SSE-S3 ETags are the MD5 of the content; SSE-KMS and SSE-C ones are not, as on AWS
    assert (put["ETag"] == md5) == (mode == "SSE-S3")
    got = s3c.get_object(Bucket=ebucket, Key=f"one-{mode}", **read_args(mode))
    check_reported(tlsd, got, mode)
    assert got["Body"].read() == body and got["ETag"] == put["ETag"]
    for first, last in ((PLAIN - 10, PLAIN + 9), (2 * PLAIN - 1, 2 * PLAIN), (0, 0), (len(body) - 5, len(body) - 1),
                        (PLAIN, 3 * PLAIN - 1)):
        r = s3c.get_object(Bucket=ebucket, Key=f"one-{mode}", Range=f"bytes={first}-{last}", **read_args(mode))
        assert r["Body"].read() == body[first:last + 1], (first, last)
    tail = s3c.get_object(Bucket=ebucket, Key=f"one-{mode}", Range="bytes=-70000", **read_args(mode))
    assert tail["Body"].read() == body[-70000:]
    head = s3c.head_object(Bucket=ebucket, Key=f"one-{mode}", **read_args(mode))
    check_reported(tlsd, head, mode)
    assert head["ContentLength"] == len(body)


@pytest.mark.parametrize("mode", ["SSE-S3", "SSE-KMS", "SSE-C"])
def test_multipart(tlsd: Any, s3c: Any, ebucket: str, mode: str) -> None:
    rnd = random.Random(2)
    parts = [rnd.randbytes(5 * MIB + 3), rnd.randbytes(PLAIN + 1)]
    key = f"mp-{mode}"
    up = s3c.create_multipart_upload(Bucket=ebucket, Key=key, **WRITE[mode])
    check_reported(tlsd, up, mode)
    done = []
    for n, data in enumerate(parts, 1):
        r = s3c.upload_part(Bucket=ebucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data,
                            **part_args(mode))
        check_reported(tlsd, r, mode)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    fin = s3c.complete_multipart_upload(Bucket=ebucket, Key=key, UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": done})
    if mode != "SSE-C":
        check_reported(tlsd, fin, mode)
    body = b"".join(parts)
    assert s3c.get_object(Bucket=ebucket, Key=key, **read_args(mode))["Body"].read() == body
    edge = len(parts[0])
    r = s3c.get_object(Bucket=ebucket, Key=key, Range=f"bytes={edge - 100}-{edge + 100}", **read_args(mode))
    assert r["Body"].read() == body[edge - 100:edge + 101]
    p2 = s3c.get_object(Bucket=ebucket, Key=key, PartNumber=2, **read_args(mode))
    assert p2["Body"].read() == parts[1]
    check_reported(tlsd, s3c.head_object(Bucket=ebucket, Key=key, **read_args(mode)), mode)


# --- copies between every pair of modes ---------------------------------------------------------


def _shares(src: str, dst: str) -> bool:
    return src == dst


@pytest.mark.parametrize("dst", MODES)
@pytest.mark.parametrize("src", MODES)
def test_copy_object_between_modes(tlsd: Any, s3c: Any, ebucket: str, src: str, dst: str) -> None:
    body = random.Random(f"{src}>{dst}").randbytes(300_000)
    s3c.put_object(Bucket=ebucket, Key=f"cp-src-{src}-{dst}", Body=body, **WRITE[src])
    before = set(data_segments(tlsd.data_dir))
    r = s3c.copy_object(Bucket=ebucket, Key=f"cp-dst-{src}-{dst}",
                        CopySource={"Bucket": ebucket, "Key": f"cp-src-{src}-{dst}"}, **WRITE[dst], **source_args(src))
    check_reported(tlsd, r, dst)
    # the same key: segments shared, nothing written; another key: re-encrypted into a new segment
    assert bool(new_data_segments(tlsd, before)) != _shares(src, dst)
    got = s3c.get_object(Bucket=ebucket, Key=f"cp-dst-{src}-{dst}", **read_args(dst))
    assert got["Body"].read() == body
    check_reported(tlsd, got, dst)


@pytest.mark.parametrize("dst", MODES)
@pytest.mark.parametrize("src", MODES)
def test_upload_part_copy_between_modes(tlsd: Any, s3c: Any, ebucket: str, src: str, dst: str) -> None:
    body = random.Random(f"part {src}>{dst}").randbytes(200_000)
    s3c.put_object(Bucket=ebucket, Key=f"pc-src-{src}-{dst}", Body=body, **WRITE[src])
    key = f"pc-dst-{src}-{dst}"
    up = s3c.create_multipart_upload(Bucket=ebucket, Key=key, **WRITE[dst])
    before = set(data_segments(tlsd.data_dir))
    r = s3c.upload_part_copy(Bucket=ebucket, Key=key, UploadId=up["UploadId"], PartNumber=1,
                             CopySource={"Bucket": ebucket, "Key": f"pc-src-{src}-{dst}"},
                             CopySourceRange="bytes=1000-149999", **part_args(dst), **source_args(src))
    check_reported(tlsd, r, dst)
    assert bool(new_data_segments(tlsd, before)) != _shares(src, dst)
    s3c.complete_multipart_upload(Bucket=ebucket, Key=key, UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    got = s3c.get_object(Bucket=ebucket, Key=key, **read_args(dst))
    assert got["Body"].read() == body[1000:150000]
    check_reported(tlsd, got, dst)


def test_copy_to_another_key_of_the_same_mode_re_encrypts(tlsd: Any, s3c: Any, ebucket: str) -> None:
    body = os.urandom(100_000)
    s3c.put_object(Bucket=ebucket, Key="rk-c", Body=body, **WRITE["SSE-C"])
    s3c.put_object(Bucket=ebucket, Key="rk-kms", Body=body, **WRITE["SSE-KMS"])
    before = set(data_segments(tlsd.data_dir))
    s3c.copy_object(Bucket=ebucket, Key="rk-c2", CopySource={"Bucket": ebucket, "Key": "rk-c"},
                    **source_args("SSE-C"), **read_args("SSE-C", OTHER_KEY))
    s3c.copy_object(Bucket=ebucket, Key="rk-kms2", CopySource={"Bucket": ebucket, "Key": "rk-kms"},
                    ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/other")
    assert len(new_data_segments(tlsd, before)) == 2
    assert s3c.get_object(Bucket=ebucket, Key="rk-c2", **read_args("SSE-C", OTHER_KEY))["Body"].read() == body
    assert fail(s3c.get_object, Bucket=ebucket, Key="rk-c2", **read_args("SSE-C")) == (403, "AccessDenied")
    head = s3c.head_object(Bucket=ebucket, Key="rk-kms2")
    assert head["SSEKMSKeyId"].endswith(key_id(tlsd, "other"))
    assert s3c.get_object(Bucket=ebucket, Key="rk-kms2")["Body"].read() == body


def test_copy_onto_itself_changes_the_encryption(tlsd: Any, s3c: Any, ebucket: str) -> None:
    body = os.urandom(70_000)
    s3c.put_object(Bucket=ebucket, Key="self", Body=body)
    assert fail(s3c.copy_object, Bucket=ebucket, Key="self", CopySource={"Bucket": ebucket, "Key": "self"}) == (
        400, "InvalidRequest")
    before = set(data_segments(tlsd.data_dir))
    r = s3c.copy_object(Bucket=ebucket, Key="self", CopySource={"Bucket": ebucket, "Key": "self"},
                        ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256" and new_data_segments(tlsd, before)
    s3c.copy_object(Bucket=ebucket, Key="self", CopySource={"Bucket": ebucket, "Key": "self"}, **WRITE["SSE-C"])
    assert fail(s3c.get_object, Bucket=ebucket, Key="self") == (400, "InvalidRequest")
    assert s3c.get_object(Bucket=ebucket, Key="self", **read_args("SSE-C"))["Body"].read() == body


# --- the errors AWS documents -------------------------------------------------------------------


def test_customer_key_errors(tlsd: Any, s3c: Any, ebucket: str) -> None:
    body = os.urandom(10_000)
    s3c.put_object(Bucket=ebucket, Key="c", Body=body, **WRITE["SSE-C"])
    s3c.put_object(Bucket=ebucket, Key="plain", Body=body)
    g, h = s3c.get_object, s3c.head_object
    assert fail(g, Bucket=ebucket, Key="c") == (400, "InvalidRequest")  # no key
    assert fail(h, Bucket=ebucket, Key="c")[0] == 400
    assert fail(g, Bucket=ebucket, Key="c", **read_args("SSE-C", OTHER_KEY)) == (403, "AccessDenied")
    assert fail(h, Bucket=ebucket, Key="c", **read_args("SSE-C", OTHER_KEY))[0] == 403
    b64 = base64.b64encode(CKEY).decode()
    wrong_md5 = base64.b64encode(hashlib.md5(OTHER_KEY).digest()).decode()
    assert fail(g, Bucket=ebucket, Key="c", SSECustomerAlgorithm="AES256", SSECustomerKey=b64,
                SSECustomerKeyMD5=wrong_md5) == (400, "InvalidArgument")
    assert fail(g, Bucket=ebucket, Key="c", SSECustomerAlgorithm="AES128", SSECustomerKey=CKEY) == (
        400, "InvalidArgument")
    assert fail(g, Bucket=ebucket, Key="c", **read_args("SSE-C", b"short")) == (400, "InvalidArgument")
    assert fail(g, Bucket=ebucket, Key="plain", **read_args("SSE-C")) == (400, "InvalidRequest")
    # conflicting headers
    assert fail(s3c.put_object, Bucket=ebucket, Key="x", Body=b"x", ServerSideEncryption="AES256",
                **read_args("SSE-C")) == (400, "InvalidArgument")
    assert fail(s3c.put_object, Bucket=ebucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms",
                **read_args("SSE-C")) == (400, "InvalidArgument")
    assert fail(s3c.put_object, Bucket=ebucket, Key="x", Body=b"x", ServerSideEncryption="AES256",
                SSEKMSKeyId=f"alias/{KMS_KEY}") == (400, "InvalidArgument")
    assert fail(s3c.put_object, Bucket=ebucket, Key="x", Body=b"x", ServerSideEncryption="AES512") == (
        400, "InvalidArgument")
    assert fail(s3c.put_object, Bucket=ebucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms:dsse") == (
        501, "NotImplemented")
    # copy sources
    cp = s3c.copy_object
    assert fail(cp, Bucket=ebucket, Key="y", CopySource={"Bucket": ebucket, "Key": "c"}) == (400, "InvalidRequest")
    assert fail(cp, Bucket=ebucket, Key="y", CopySource={"Bucket": ebucket, "Key": "c"},
                CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=OTHER_KEY) == (403, "AccessDenied")
    assert fail(cp, Bucket=ebucket, Key="y", CopySource={"Bucket": ebucket, "Key": "plain"},
                **source_args("SSE-C")) == (400, "InvalidRequest")
    # parts of an SSE-C upload bring its key
    up = s3c.create_multipart_upload(Bucket=ebucket, Key="mpc", **WRITE["SSE-C"])["UploadId"]
    part = s3c.upload_part
    assert fail(part, Bucket=ebucket, Key="mpc", UploadId=up, PartNumber=1, Body=b"p") == (400, "InvalidRequest")
    assert fail(part, Bucket=ebucket, Key="mpc", UploadId=up, PartNumber=1, Body=b"p",
                **read_args("SSE-C", OTHER_KEY)) == (400, "InvalidArgument")
    plain_up = s3c.create_multipart_upload(Bucket=ebucket, Key="mpp")["UploadId"]
    assert fail(part, Bucket=ebucket, Key="mpp", UploadId=plain_up, PartNumber=1, Body=b"p",
                **read_args("SSE-C")) == (400, "InvalidArgument")


def test_sse_c_needs_tls(s3: Any, bucket: str) -> None:
    """Over plain HTTP the key would cross the network in clear: refused, as AWS refuses it."""
    assert fail(s3.put_object, Bucket=bucket, Key="k", Body=b"x", **read_args("SSE-C")) == (400, "InvalidRequest")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert fail(s3.get_object, Bucket=bucket, Key="k", **read_args("SSE-C")) == (400, "InvalidRequest")


def test_kms_keys(tlsd: Any, s3c: Any, ebucket: str) -> None:
    kid = key_id(tlsd, KMS_KEY)
    first = s3c.put_object(Bucket=ebucket, Key="k0", Body=b"0", **WRITE["SSE-KMS"])
    arn = f"arn:aws:kms:us-east-1:{account_of(first)}:key/{kid}"
    for ref in (KMS_KEY, kid, arn, f"alias/{KMS_KEY}"):
        r = s3c.put_object(Bucket=ebucket, Key="k1", Body=b"kms", ServerSideEncryption="aws:kms", SSEKMSKeyId=ref)
        assert r["SSEKMSKeyId"] == arn
    assert fail(s3c.put_object, Bucket=ebucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms",
                SSEKMSKeyId="alias/missing") == (400, "KMS.NotFoundException")
    # no key named: the default key aws/s3, made on first use
    r = s3c.put_object(Bucket=ebucket, Key="k3", Body=b"default", ServerSideEncryption="aws:kms",
                       BucketKeyEnabled=True)
    assert r["SSEKMSKeyId"].endswith(key_id(tlsd, "aws/s3")) and r["BucketKeyEnabled"] is True
    # an encryption context of the caller's, returned on PUT
    context = base64.b64encode(json.dumps({"project": "x"}).encode()).decode()
    r = s3c.put_object(Bucket=ebucket, Key="k4", Body=b"ctx", ServerSideEncryption="aws:kms",
                       SSEKMSEncryptionContext=context)
    assert json.loads(base64.b64decode(r["SSEKMSEncryptionContext"])) == {"project": "x"}
    assert s3c.get_object(Bucket=ebucket, Key="k4")["Body"].read() == b"ctx"
    assert fail(s3c.put_object, Bucket=ebucket, Key="k5", Body=b"x", ServerSideEncryption="aws:kms",
                SSEKMSEncryptionContext="not base64 json") == (400, "InvalidArgument")
    # a disabled key opens nothing (HEAD needs no key) and wraps nothing
    tlsd.cli("kms", "key", "disable", KMS_KEY)
    try:
        assert fail(s3c.get_object, Bucket=ebucket, Key="k1") == (400, "KMS.DisabledException")
        assert s3c.head_object(Bucket=ebucket, Key="k1")["SSEKMSKeyId"] == arn
        assert fail(s3c.put_object, Bucket=ebucket, Key="k6", Body=b"x", **WRITE["SSE-KMS"]) == (
            400, "KMS.DisabledException")
        assert fail(s3c.create_multipart_upload, Bucket=ebucket, Key="k6", **WRITE["SSE-KMS"]) == (
            400, "KMS.DisabledException")
    finally:
        tlsd.cli("kms", "key", "enable", KMS_KEY)
    assert s3c.get_object(Bucket=ebucket, Key="k1")["Body"].read() == b"kms"


# --- what is on the disks -----------------------------------------------------------------------


def test_no_plaintext_on_disk(tlsd: Any, s3c: Any, ebucket: str) -> None:
    body = MARKER * 100_000  # 3.2 MiB, every block full of the marker
    for mode in ("SSE-S3", "SSE-KMS", "SSE-C"):
        s3c.put_object(Bucket=ebucket, Key=f"marker-{mode}", Body=body, **WRITE[mode])
        up = s3c.create_multipart_upload(Bucket=ebucket, Key=f"marker-mp-{mode}", **WRITE[mode])["UploadId"]
        etag = s3c.upload_part(Bucket=ebucket, Key=f"marker-mp-{mode}", UploadId=up, PartNumber=1, Body=body,
                               **part_args(mode))["ETag"]
        s3c.complete_multipart_upload(Bucket=ebucket, Key=f"marker-mp-{mode}", UploadId=up,
                                      MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        s3c.copy_object(Bucket=ebucket, Key=f"marker-copy-{mode}", CopySource={"Bucket": ebucket,
                        "Key": f"marker-{mode}"}, **source_args(mode), **WRITE["SSE-KMS"])
    files = [p for sub in ("disks", "meta") for p in (tlsd.data_dir / sub).rglob("*") if p.is_file()]
    assert len(files) > 20
    for p in files:
        assert MARKER not in p.read_bytes(), p
    # the search works: a plaintext object's marker is found
    before = set(data_segments(tlsd.data_dir))
    s3c.put_object(Bucket=ebucket, Key="marker-plain", Body=body)
    seg = new_data_segments(tlsd, before).pop()
    assert any(MARKER in s.path.read_bytes() for s in data_segments(tlsd.data_dir)[seg])


def _flip_in_chunk(path: Path, block: int, crc_too: bool) -> None:
    """Flip a byte of one block's chunk; with crc_too the CRC is recomputed, so that only the
    block's authentication tag can tell."""
    hdr = read_header(str(path))
    chunk = hdr.geometry.chunk_size(hdr.block_size)
    off = HEADER_SIZE + block * (chunk + CRC_SIZE)
    raw = bytearray(path.read_bytes())
    raw[off + 17] ^= 0x5A
    if crc_too:
        raw[off + chunk:off + chunk + CRC_SIZE] = struct.pack("<I", checksum(bytes(raw[off:off + chunk])))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("mode", ["SSE-KMS", "SSE-C"])
def test_tampered_ciphertext_is_detected_and_healed(tlsd: Any, s3c: Any, ebucket: str, mode: str) -> None:
    body = random.Random(3).randbytes(3 * PLAIN)
    before = set(data_segments(tlsd.data_dir))
    s3c.put_object(Bucket=ebucket, Key=f"tamper-{mode}", Body=body, **WRITE[mode])
    seg = new_data_segments(tlsd, before).pop()
    files = {s.header.shard: s.path for s in data_segments(tlsd.data_dir)[seg]}  # 3 blocks: shard files
    original = files[0].read_bytes()
    _flip_in_chunk(files[0], 1, crc_too=True)  # a data shard: a healthy read uses it
    got = s3c.get_object(Bucket=ebucket, Key=f"tamper-{mode}", **read_args(mode))["Body"].read()
    assert got == body  # the altered block failed authentication; decoded from the other shards
    tlsd.cli("heal")
    assert files[0].read_bytes() == original  # rebuilt from parity, without the key
    assert s3c.get_object(Bucket=ebucket, Key=f"tamper-{mode}", **read_args(mode))["Body"].read() == body


# --- restart, master-key rotation ---------------------------------------------------------------


def test_restart_rotate_master_and_recover_metadata(tmp_path: Path) -> None:
    d = tls_daemon(tmp_path)
    d.start()
    try:
        d.cli("kms", "key", "create", KMS_KEY)
        s3 = client(d)
        s3.create_bucket(Bucket="rot")
        bodies = {mode: random.Random(mode).randbytes(PLAIN + 5) for mode in MODES}
        for mode, body in bodies.items():
            s3.put_object(Bucket="rot", Key=mode, Body=body, **WRITE[mode])

        def check() -> None:
            for key, body in bodies.items():
                mode = key.removeprefix("late-")
                assert s3.get_object(Bucket="rot", Key=key, **read_args(mode))["Body"].read() == body, key
                check_reported(d, s3.head_object(Bucket="rot", Key=key, **read_args(mode)), mode)

        d.restart()
        s3 = client(d)
        check()
        d.cli("kms", "rotate-master")
        check()
        d.restart()
        s3 = client(d)
        check()
        # the metadata DB lost: versions rebuilt from the shards (those written after the last
        # snapshot have nothing else) still read, and report, as written
        for mode in MODES:
            bodies[f"late-{mode}"] = random.Random(mode).randbytes(1000)
            s3.put_object(Bucket="rot", Key=f"late-{mode}", Body=bodies[f"late-{mode}"], **WRITE[mode])
        d.stop()
        shutil.rmtree(d.data_dir / "meta")
        d.cli("recover-metadata")
        d.start()
        s3 = client(d)
        check()
    finally:
        d.stop()


# --- bucket default encryption ------------------------------------------------------------------


def _config(algorithm: str, key: str = "", bucket_key: bool | None = None) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": algorithm}
    if key:
        default["KMSMasterKeyID"] = key
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return {"Rules": [rule]}


def test_new_buckets_get_sse_s3(s3d: Any, s3: Any, bucket: str) -> None:
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    r = s3.put_object(Bucket=bucket, Key="o", Body=b"default")
    assert r["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="o")["ServerSideEncryption"] == "AES256"
    s3d.cli("kms", "key", "create", "bucketkey")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("aws:kms", "bucketkey", True))
    got = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    kid = key_id(s3d, "bucketkey")
    assert got["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].endswith(f":key/{kid}")
    assert got["BucketKeyEnabled"] is True
    r = s3.put_object(Bucket=bucket, Key="kms", Body=b"by default")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"].endswith(kid) and r["BucketKeyEnabled"]
    assert s3.get_object(Bucket=bucket, Key="kms")["Body"].read() == b"by default"
    # a request's own encryption wins over the default
    assert s3.put_object(Bucket=bucket, Key="s3", Body=b"x", ServerSideEncryption="AES256")[
        "ServerSideEncryption"] == "AES256"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    assert up["ServerSideEncryption"] == "aws:kms"
    # deleting the configuration restores the default of new buckets, SSE-S3 (as on AWS)
    s3.delete_bucket_encryption(Bucket=bucket)
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert fail(s3.put_bucket_encryption, Bucket=bucket,
                ServerSideEncryptionConfiguration=_config("AES256", "bucketkey")) == (400, "InvalidArgument")
    assert fail(s3.put_bucket_encryption, Bucket=bucket,
                ServerSideEncryptionConfiguration=_config("aws:kms", "nosuchkey")) == (400, "KMS.NotFoundException")
    assert fail(s3.put_bucket_encryption, Bucket=bucket,
                ServerSideEncryptionConfiguration=_config("aws:kms:dsse")) == (501, "NotImplemented")


def test_encryption_is_a_bucket_subresource(raw: Any, bucket: str) -> None:
    from .conftest import error_code

    status, _, body = raw.request("GET", f"/{bucket}/some-key?encryption")
    assert (status, error_code(body)) == (501, "NotImplemented")
    bad = b"<ServerSideEncryptionConfiguration><Rule></Rule></ServerSideEncryptionConfiguration>"
    status, _, body = raw.request("PUT", f"/{bucket}?encryption", bad)
    assert (status, error_code(body)) == (400, "MalformedXML")


def test_buckets_without_default_when_configured(s3c: Any) -> None:
    s3c.create_bucket(Bucket="nodefault")
    assert fail(s3c.get_bucket_encryption, Bucket="nodefault") == (
        404, "ServerSideEncryptionConfigurationNotFoundError")
    assert "ServerSideEncryption" not in s3c.put_object(Bucket="nodefault", Key="p", Body=b"p")
    s3c.put_bucket_encryption(Bucket="nodefault", ServerSideEncryptionConfiguration=_config("AES256"))
    assert s3c.put_object(Bucket="nodefault", Key="q", Body=b"q")["ServerSideEncryption"] == "AES256"
    s3c.delete_bucket_encryption(Bucket="nodefault")
    assert fail(s3c.get_bucket_encryption, Bucket="nodefault")[0] == 404

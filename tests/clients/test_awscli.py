"""The aws CLI (v1, from the venv) as a user drives it: `s3 cp` large enough to go multipart,
`s3 sync` both ways and idempotent, `s3 ls --recursive`, `s3 rm --recursive`, and `s3api` calls.

The transfer tests run twice: over plain HTTP (botocore signs the payload hash and sends the CRC32
in a header) and over HTTPS, where botocore sends STREAMING-UNSIGNED-PAYLOAD-TRAILER aws-chunked
bodies with an x-amz-checksum-crc32 trailer: the framing must never end up inside a stored object.
The listing and s3api tests run over HTTP only (each CLI call costs a Python start-up).
Content is always checked through boto3 as well."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config

from tests.polling import url_refused, wait_for
from tests.tlscert import self_signed_cert

from .conftest import (
    AWKWARD_NAMES,
    bucket_contents,
    bucket_keys,
    clean_env,
    make_tree,
    read_tree,
    require,
    run,
    start_daemon,
    stop_daemon,
)

MiB = 1024 * 1024


@dataclass
class Aws:
    exe: str
    endpoint: str
    env: dict[str, str]
    ca: Path | None
    s3: Any  # boto3, the second path

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self.exe, "--endpoint-url", self.endpoint, *(["--ca-bundle", str(self.ca)] if self.ca else [])]
        if args and args[0] == "s3":
            cmd += [args[0], args[1], "--no-progress", *args[2:]] if args[1] in ("cp", "sync", "mv") else list(args)
        else:
            cmd += list(args)
        if input is not None:
            r = subprocess.run(cmd, env=self.env, input=input, capture_output=True, timeout=120)
            out = subprocess.CompletedProcess(cmd, r.returncode, r.stdout.decode(), r.stderr.decode())
            if check and r.returncode:
                raise AssertionError(f"{cmd} failed ({r.returncode}):\n{out.stdout}\n{out.stderr}")
            return out
        return run(cmd, self.env, check=check)

    def json(self, *args: str) -> Any:
        out = self(*args, "--output", "json").stdout
        return json.loads(out) if out.strip() else {}


def _aws(scheme: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    exe = require("aws")
    base = tmp_path_factory.mktemp(f"aws-{scheme}")
    ca: Path | None = None
    extra: list[str] = []
    if scheme == "https":
        ca, key = self_signed_cert(base)
        (base / "stowage.toml").write_text(f'[s3]\ntls_cert = "{ca}"\ntls_key = "{key}"\n')
        extra = ["--config", str(base / "stowage.toml")]
    d = start_daemon(base, extra)
    assert d.endpoint.startswith(f"{scheme}://")
    (base / "home").mkdir()
    (base / "aws.cfg").write_text("[default]\ns3 =\n    addressing_style = path\n")
    env = clean_env(base / "home", {
        "AWS_ACCESS_KEY_ID": d.access_key, "AWS_SECRET_ACCESS_KEY": d.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(base / "aws.cfg"),
        "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-credentials"),
        # No retries: a 5xx the CLI would silently retry must fail the test instead.
        "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    })
    s3 = boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=d.access_key,
                      aws_secret_access_key=d.secret_key, region_name="us-east-1",
                      verify=str(ca) if ca else None,
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    yield Aws(exe, d.endpoint, env, ca, s3)
    stop_daemon(d)


@pytest.fixture(scope="module")
def aws_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    yield from _aws("http", tmp_path_factory)


@pytest.fixture(scope="module")
def aws_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    yield from _aws("https", tmp_path_factory)


F = TypeVar("F", bound=Callable[..., None])


def http_only(test: F) -> F:
    test.http_only = True  # type: ignore[attr-defined]
    return test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scheme" in metafunc.fixturenames:
        http = getattr(metafunc.function, "http_only", False)
        metafunc.parametrize("scheme", ["http"] if http else ["http", "https"])


@pytest.fixture
def aws(request: pytest.FixtureRequest, scheme: str) -> Aws:
    """Transfer tests run against both daemons; @http_only tests only over HTTP."""
    result: Aws = request.getfixturevalue(f"aws_{scheme}")
    return result


_n = iter(range(10**6))


@pytest.fixture
def bkt(aws: Aws) -> str:
    name = f"aws-{next(_n)}"
    assert "make_bucket: " + name in aws("s3", "mb", f"s3://{name}").stdout
    return name


def test_cp_multipart_up_and_down(aws: Aws, bkt: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = os.urandom(20 * MiB + 123)
    big.write_bytes(data)
    aws("s3", "cp", str(big), f"s3://{bkt}/dir/big.bin")
    head = aws.s3.head_object(Bucket=bkt, Key="dir/big.bin")
    assert head["ContentLength"] == len(data)
    # The CLI's 8 MiB threshold and part size: three parts, so a multipart ETag.
    assert head["ETag"].strip('"').endswith("-3")
    assert aws.s3.get_object(Bucket=bkt, Key="dir/big.bin")["Body"].read() == data
    out = tmp_path / "down.bin"
    aws("s3", "cp", f"s3://{bkt}/dir/big.bin", str(out))
    assert out.read_bytes() == data

    # A gzip-encoded upload: over HTTPS the CLI sends "Content-Encoding: gzip,aws-chunked", and
    # only the aws-chunked framing may be removed.
    small = tmp_path / "small.txt"
    small.write_bytes(gzip.compress(b"hello from the aws cli\n"))
    aws("s3", "cp", str(small), f"s3://{bkt}/small.txt", "--content-type", "text/x-test", "--metadata", "k=v",
        "--content-encoding", "gzip")
    got = aws.s3.get_object(Bucket=bkt, Key="small.txt")
    assert got["Body"].read() == small.read_bytes()
    assert got["ContentType"] == "text/x-test" and got["Metadata"] == {"k": "v"}
    assert got["ContentEncoding"] == "gzip"
    assert got["ETag"].strip('"') == hashlib.md5(small.read_bytes()).hexdigest()

    # Server-side copy of a multipart object, then a move.
    aws("s3", "cp", f"s3://{bkt}/dir/big.bin", f"s3://{bkt}/copy/big.bin")
    aws("s3", "mv", f"s3://{bkt}/small.txt", f"s3://{bkt}/moved/small.txt")
    assert aws.s3.get_object(Bucket=bkt, Key="copy/big.bin")["Body"].read() == data
    assert sorted(bucket_keys(aws.s3, bkt)) == ["copy/big.bin", "dir/big.bin", "moved/small.txt"]


def _checksum(alg: str, data: bytes) -> str:
    from awscrt import checksums

    if alg in ("SHA1", "SHA256"):
        return base64.b64encode(hashlib.new(alg.lower(), data).digest()).decode()
    if alg == "CRC64NVME":
        return base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()
    fn = checksums.crc32 if alg == "CRC32" else checksums.crc32c
    return base64.b64encode(fn(data).to_bytes(4, "big")).decode()


def test_cp_with_each_checksum_algorithm(aws: Aws, bkt: str, tmp_path: Path) -> None:
    # Over HTTPS each of these goes as an aws-chunked body with the checksum in a trailer.
    f = tmp_path / "f.bin"
    data = os.urandom(300_001)
    f.write_bytes(data)
    for alg in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
        r = aws("s3", "cp", "--debug", "--checksum-algorithm", alg, str(f), f"s3://{bkt}/{alg}")
        # The body framing really is what the docstring says it is.
        chunked = "'x-amz-content-sha256': b'STREAMING-UNSIGNED-PAYLOAD-TRAILER'" in r.stderr
        assert chunked == aws.endpoint.startswith("https:"), alg
        head = aws.s3.head_object(Bucket=bkt, Key=alg, ChecksumMode="ENABLED")
        assert head[f"Checksum{alg}"] == _checksum(alg, data), alg
        assert aws.s3.get_object(Bucket=bkt, Key=alg)["Body"].read() == data


def test_cp_from_stdin_streams_multipart(aws: Aws, bkt: str) -> None:
    # Unknown length: the CLI buffers 8 MiB parts and uploads them as it reads.
    data = os.urandom(17 * MiB + 5)
    aws("s3", "cp", "-", f"s3://{bkt}/stdin.bin", input=data)
    assert aws.s3.get_object(Bucket=bkt, Key="stdin.bin")["Body"].read() == data
    r = subprocess.run([aws.exe, "--endpoint-url", aws.endpoint, *(["--ca-bundle", str(aws.ca)] if aws.ca else []),
                        "s3", "cp", f"s3://{bkt}/stdin.bin", "-"], env=aws.env, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_sync_up_down_then_nothing_to_do(aws: Aws, bkt: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, {"a.txt": 10, "empty": 0, "sub/b.bin": 300_000, "sub/deeper/c.bin": 70_000,
                            "sub/deeper/big.bin": 9 * MiB} | AWKWARD_NAMES)
    up = aws("s3", "sync", str(src), f"s3://{bkt}/tree").stdout
    assert up.count("upload: ") == len(files), up
    assert bucket_contents(aws.s3, bkt, "tree/") == files

    dst = tmp_path / "dst"
    down = aws("s3", "sync", f"s3://{bkt}/tree", str(dst)).stdout
    assert down.count("download: ") == len(files), down
    assert read_tree(dst) == files

    # Nothing changed: neither direction transfers anything.
    assert aws("s3", "sync", str(src), f"s3://{bkt}/tree").stdout.strip() == ""
    assert aws("s3", "sync", f"s3://{bkt}/tree", str(dst)).stdout.strip() == ""

    # One changed file and one deleted with --delete: exactly those two operations.
    (src / "sub/b.bin").write_bytes(b"changed" * 1000)
    (src / "a.txt").unlink()
    out = aws("s3", "sync", "--delete", str(src), f"s3://{bkt}/tree").stdout
    assert sorted(line.split(":")[0] for line in out.splitlines()) == ["delete", "upload"], out
    expect = {k: v for k, v in files.items() if k != "a.txt"} | {"sub/b.bin": b"changed" * 1000}
    assert bucket_contents(aws.s3, bkt, "tree/") == expect


@http_only
def test_empty_files_do_not_poison_the_connection(aws: Aws, bkt: str, tmp_path: Path) -> None:
    """An upload of an empty file (Expect: 100-continue, Content-Length: 0) answered without a 100
    made botocore read that response's status line again for the next request on the connection:
    the next upload waited for the read timeout and came back without its ETag (multipart failed
    with 'ETag'). One connection, empty and non-empty files interleaved, a short read timeout."""
    src = tmp_path / "src"
    files = make_tree(src, {f"f{i:02d}-{'empty' if i % 2 else 'data'}": 0 if i % 2 else 100 + i for i in range(12)})
    cfg = tmp_path / "aws.cfg"
    cfg.write_text("[default]\ns3 =\n    addressing_style = path\n    max_concurrent_requests = 1\n")
    one_conn = Aws(aws.exe, aws.endpoint, aws.env | {"AWS_CONFIG_FILE": str(cfg)}, aws.ca, aws.s3)
    up = one_conn("--cli-read-timeout", "15", "s3", "sync", str(src), f"s3://{bkt}/t").stdout
    assert up.count("upload: ") == len(files), up
    assert bucket_contents(aws.s3, bkt, "t/") == files


@http_only
def test_ls_recursive_and_rm_recursive(aws: Aws, bkt: str) -> None:
    keys = {"x/1": b"1", "x/y/2": b"22", "x/y/z/3": b"333", "other/4": b"4444", "top": b""}
    for k, v in keys.items():
        aws.s3.put_object(Bucket=bkt, Key=k, Body=v)
    listed = {}
    for line in aws("s3", "ls", "--recursive", f"s3://{bkt}").stdout.splitlines():
        _date, _time, size, key = line.split(None, 3)
        listed[key] = int(size)
    assert listed == {k: len(v) for k, v in keys.items()}
    # Non-recursive listing shows the delimiter's common prefixes as PRE lines.
    top = aws("s3", "ls", f"s3://{bkt}/").stdout.split()
    assert "x/" in top and "other/" in top and "top" in top

    out = aws("s3", "rm", "--recursive", f"s3://{bkt}/x/").stdout
    assert out.count("delete: ") == 3, out
    assert sorted(bucket_keys(aws.s3, bkt)) == ["other/4", "top"]
    assert aws.s3.get_object(Bucket=bkt, Key="other/4")["Body"].read() == b"4444"

    aws("s3", "rb", "--force", f"s3://{bkt}")
    names = [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
    assert bkt not in names


@http_only
def test_s3api_object_calls(aws: Aws, bkt: str, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    data = os.urandom(100_000)
    body.write_bytes(data)
    put = aws.json("s3api", "put-object", "--bucket", bkt, "--key", "d/one.bin", "--body", str(body),
                   "--content-type", "application/x-one", "--metadata", "color=blue")
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    aws.json("s3api", "put-object", "--bucket", bkt, "--key", "d/two.bin", "--body", str(body))
    aws.json("s3api", "put-object", "--bucket", bkt, "--key", "d/sub/three.bin", "--body", str(body))

    head = aws.json("s3api", "head-object", "--bucket", bkt, "--key", "d/one.bin")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/x-one" and head["Metadata"] == {"color": "blue"}

    lst = aws.json("s3api", "list-objects-v2", "--bucket", bkt, "--prefix", "d/", "--delimiter", "/")
    assert [o["Key"] for o in lst["Contents"]] == ["d/one.bin", "d/two.bin"]
    assert [p["Prefix"] for p in lst["CommonPrefixes"]] == ["d/sub/"]
    # Paginated by the CLI itself with a page size of one.
    allk = aws.json("s3api", "list-objects-v2", "--bucket", bkt, "--page-size", "1")
    assert [o["Key"] for o in allk["Contents"]] == ["d/one.bin", "d/sub/three.bin", "d/two.bin"]

    out = tmp_path / "got.bin"
    got = aws.json("s3api", "get-object", "--bucket", bkt, "--key", "d/one.bin", str(out))
    assert out.read_bytes() == data and got["ContentLength"] == len(data)
    rng = aws.json("s3api", "get-object", "--bucket", bkt, "--key", "d/one.bin", "--range", "bytes=10-19",
                   str(out))
    assert out.read_bytes() == data[10:20] and rng["ContentRange"] == f"bytes 10-19/{len(data)}"

    spec = json.dumps({"Objects": [{"Key": "d/one.bin"}, {"Key": "d/sub/three.bin"}, {"Key": "never"}]})
    deleted = aws.json("s3api", "delete-objects", "--bucket", bkt, "--delete", spec)
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["d/one.bin", "d/sub/three.bin", "never"]
    assert "Errors" not in deleted
    assert bucket_contents(aws.s3, bkt) == {"d/two.bin": data}


@http_only
def test_s3api_multipart_flow(aws: Aws, bkt: str, tmp_path: Path) -> None:
    p1, p2 = os.urandom(5 * MiB), os.urandom(1 * MiB + 7)
    (tmp_path / "p1").write_bytes(p1)
    (tmp_path / "p2").write_bytes(p2)
    up = aws.json("s3api", "create-multipart-upload", "--bucket", bkt, "--key", "mp.bin",
                  "--content-type", "application/x-mp")["UploadId"]
    uploads = aws.json("s3api", "list-multipart-uploads", "--bucket", bkt)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp.bin", up)]
    # Upload part 2 first: the order of arrival must not matter.
    e2 = aws.json("s3api", "upload-part", "--bucket", bkt, "--key", "mp.bin", "--upload-id", up,
                  "--part-number", "2", "--body", str(tmp_path / "p2"))["ETag"]
    e1 = aws.json("s3api", "upload-part", "--bucket", bkt, "--key", "mp.bin", "--upload-id", up,
                  "--part-number", "1", "--body", str(tmp_path / "p1"))["ETag"]
    assert e1.strip('"') == hashlib.md5(p1).hexdigest() and e2.strip('"') == hashlib.md5(p2).hexdigest()
    parts = aws.json("s3api", "list-parts", "--bucket", bkt, "--key", "mp.bin", "--upload-id", up)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, len(p1), e1), (2, len(p2), e2)]
    done = aws.json("s3api", "complete-multipart-upload", "--bucket", bkt, "--key", "mp.bin", "--upload-id", up,
                    "--multipart-upload",
                    json.dumps({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}))
    md5s = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest()
    assert done["ETag"].strip('"') == f"{md5s}-2"
    got = aws.s3.get_object(Bucket=bkt, Key="mp.bin")
    assert got["Body"].read() == p1 + p2 and got["ContentType"] == "application/x-mp"
    assert aws.json("s3api", "list-multipart-uploads", "--bucket", bkt).get("Uploads", []) == []

    # An aborted upload leaves nothing behind.
    up2 = aws.json("s3api", "create-multipart-upload", "--bucket", bkt, "--key", "gone.bin")["UploadId"]
    aws.json("s3api", "upload-part", "--bucket", bkt, "--key", "gone.bin", "--upload-id", up2,
             "--part-number", "1", "--body", str(tmp_path / "p2"))
    aws("s3api", "abort-multipart-upload", "--bucket", bkt, "--key", "gone.bin", "--upload-id", up2)
    assert aws.json("s3api", "list-multipart-uploads", "--bucket", bkt).get("Uploads", []) == []
    assert bucket_keys(aws.s3, bkt) == ["mp.bin"]
    err = aws("s3api", "head-object", "--bucket", bkt, "--key", "gone.bin", check=False)
    assert err.returncode != 0 and "404" in err.stderr


@http_only
def test_presign(aws: Aws, bkt: str, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    aws.s3.put_object(Bucket=bkt, Key="shared.bin", Body=data)
    # With signature_version = s3v4 the CLI presigns with SigV4 query parameters: the URL works alone.
    cfg = tmp_path / "v4.cfg"
    cfg.write_text("[default]\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n")
    v4 = Aws(aws.exe, aws.endpoint, aws.env | {"AWS_CONFIG_FILE": str(cfg)}, aws.ca, aws.s3)
    url = v4("s3", "presign", f"s3://{bkt}/shared.bin", "--expires-in", "300").stdout.strip()
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as r:
        assert r.read() == data
    # By default aws CLI v1 presigns with SigV2 (s3gw/sigv2.py): that URL works alone too, until
    # it expires.
    url = aws("s3", "presign", f"s3://{bkt}/shared.bin").stdout.strip()
    assert "AWSAccessKeyId=" in url and "X-Amz-Signature" not in url
    with urllib.request.urlopen(url) as r:
        assert r.read() == data
    url = aws("s3", "presign", f"s3://{bkt}/shared.bin", "--expires-in", "1").stdout.strip()
    wait_for(lambda: url_refused(url), timeout=30, what="the presigned URL to expire")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url)
    assert e.value.code == 403
    assert ET.fromstring(e.value.read()).findtext("Code") == "AccessDenied"

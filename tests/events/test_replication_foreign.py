"""Replication to an S3 service that is not Stowage: moto in server mode (a real HTTP server in
its own process; `moto[server]` is a test dependency, or MOTO_SERVER names its executable)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.conftest import DaemonProc

from .receiver import poll
from .test_replication import rule, versioned, wait_status


def _moto_command() -> list[str] | None:
    exe = os.environ.get("MOTO_SERVER") or shutil.which("moto_server")
    if exe:
        return [exe]
    if importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None:
        return [sys.executable, "-m", "moto.server"]
    return None


@pytest.fixture
def moto() -> Iterator[str]:
    cmd = _moto_command()
    if cmd is None:
        pytest.skip("moto[server] is not installed (pip install -e '.[dev]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    try:
        poll(up, 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_replication_to_moto(daemon_factory: Any, tmp_path: Path, moto: str) -> None:
    conf = tmp_path / "stowage.toml"  # small parts: a 20 MiB object goes as a multipart upload of 4
    conf.write_text("[replication]\nmultipart_threshold = 5242880\npart_size = 5242880\n")
    daemon: DaemonProc = daemon_factory(["--no-mount", "--config", str(conf)])
    remote = boto3.client("s3", endpoint_url=moto, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1", config=BotoConfig(s3={"addressing_style": "path"}))
    remote.create_bucket(Bucket="elsewhere")
    remote.put_bucket_versioning(Bucket="elsewhere", VersioningConfiguration={"Status": "Enabled"})
    s3 = daemon.s3()
    versioned(s3, "src")
    daemon.cli("replication", "target", "add", "moto", "--endpoint", moto, "--access-key", "testing",
               "--secret-key", "testing", "--kind", "s3")
    s3.put_bucket_replication(Bucket="src", ReplicationConfiguration={
        "Role": "", "Rules": [rule("moto", "elsewhere")]})
    big = os.urandom(20 << 20)
    vids = {"small": s3.put_object(Bucket="src", Key="small", Body=b"hi", ContentType="text/plain",
                                   Metadata={"m": "1"}, Tagging="t=1")["VersionId"],
            "big": s3.put_object(Bucket="src", Key="dir/big", Body=big)["VersionId"]}
    wait_status(s3, "src", "small", vids["small"], "COMPLETED")
    wait_status(s3, "src", "dir/big", vids["big"], "COMPLETED")
    got = remote.get_object(Bucket="elsewhere", Key="small")
    assert got["Body"].read() == b"hi" and got["ContentType"] == "text/plain" and got["Metadata"] == {"m": "1"}
    assert remote.get_object_tagging(Bucket="elsewhere", Key="small")["TagSet"] == [{"Key": "t", "Value": "1"}]
    assert remote.get_object(Bucket="elsewhere", Key="dir/big")["Body"].read() == big
    assert remote.head_object(Bucket="elsewhere", Key="dir/big")["ETag"].endswith('-4"')
    s3.delete_object(Bucket="src", Key="small")

    def marker_there() -> bool:
        return bool(remote.list_object_versions(Bucket="elsewhere", Prefix="small").get("DeleteMarkers"))

    poll(marker_there)



"""Real S3 servers for import tests: moto in server mode (a subprocess on a free port) and
Ceph RGW (../shared/tools/rgw-up.sh, 127.0.0.1:18090)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from tests.conftest import REPO


def _rgw_script() -> Path:
    """$STOWAGE_RGW_UP, else shared/tools/rgw-up.sh beside the checkout (or beside a directory
    above it: a git worktree lives deeper than the clone)."""
    if os.environ.get("STOWAGE_RGW_UP"):
        return Path(os.environ["STOWAGE_RGW_UP"])
    for parent in REPO.parents:
        if (parent / "shared" / "tools" / "rgw-up.sh").exists():
            return parent / "shared" / "tools" / "rgw-up.sh"
    return REPO.parent / "shared" / "tools" / "rgw-up.sh"


RGW_SCRIPT = _rgw_script()
RGW_ENDPOINT = "http://127.0.0.1:18090"
RGW_KEYS = ("rgwbenchaccess", "rgwbenchsecret")  # made by rgw-up.sh


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))


def moto_command() -> list[str] | None:
    if importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None:
        return [sys.executable, "-m", "moto.server"]
    found = shutil.which("moto_server")
    return [found] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: the server is up
    except OSError:
        return False


@contextmanager
def moto_server(log: Path) -> Iterator[S3Server]:
    cmd = moto_command()
    assert cmd is not None
    port = _free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{port}/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}", "testing", "testing")
    finally:
        proc.terminate()
        proc.wait(30)


CEPH_ROOT = Path(os.environ.get("CEPH_ROOT", "/var/tmp/rgw-ref"))


def stop_rgw() -> None:
    """Stop what rgw-up.sh started (its own pid files), RGW first: what the script says to do."""
    for name in ("rgw", "osd", "mon"):
        pidfile = CEPH_ROOT / "run" / f"{name}.mypid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)


def rgw_server() -> tuple[S3Server | None, str]:
    """RGW when it answers, or when the script can start it (root, apt packages, about a minute
    the first time: then the reason is "started", and the caller stops it); else (None, why)."""
    server = S3Server(RGW_ENDPOINT, *RGW_KEYS)
    if _answers(RGW_ENDPOINT):
        return server, ""
    if not RGW_SCRIPT.exists():
        return None, f"Ceph RGW is not running on {RGW_ENDPOINT} and {RGW_SCRIPT} does not exist"
    if os.geteuid() != 0:
        return None, "Ceph RGW is not running and starting it (rgw-up.sh) needs root"
    try:
        r = subprocess.run(["bash", str(RGW_SCRIPT)], capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        return None, f"{RGW_SCRIPT} did not bring RGW up within 20 minutes"
    if r.returncode != 0 or not _answers(RGW_ENDPOINT):
        return None, f"{RGW_SCRIPT} failed ({r.returncode}): {(r.stderr or r.stdout)[-500:]}"
    return server, "started"

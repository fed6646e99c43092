"""Real S3 clients against the real daemon: one daemon per test module, a clean environment for
each client (no ~/.aws, ~/.s3cfg or rclone config of the machine leaks in), and the second path
every test checks content through: boto3 reading the bucket directly.

Versions these tests were written against (Debian 12 apt + the venv):
  aws-cli 1.46.3 / botocore 1.43.62, s3cmd 2.3.0, rclone v1.60.1-DEV, restic 0.14.0 (go1.19.8),
  s3fs-fuse 1.90."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_test_bucket

_spec = importlib.util.spec_from_file_location("stowage_tests_root", Path(__file__).parent.parent / "conftest.py")
assert _spec and _spec.loader
_root = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(_root, "DaemonProc"):
    _spec.loader.exec_module(_root)
DaemonProc = _root.DaemonProc


# Variables of the host that would steer a client somewhere else (a CA bundle makes rclone's
# AWS SDK refuse its own transport; profiles and config files could carry other credentials).
_STRIP_PREFIXES = ("AWS_", "RCLONE_", "RESTIC_", "S3CMD")


def require(binary: str) -> str:
    """The client's path, or a clear skip when it is not installed (`make setup` installs it)."""
    venv_bin = Path(sys.executable).parent / binary
    path = str(venv_bin) if venv_bin.exists() else shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (make setup installs it)")
    return path


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIP_PREFIXES)}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run(cmd: Sequence[str], env: Mapping[str, str], timeout: float = 120,
        check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), env=dict(env), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\nstdout:\n{r.stdout[-4000:]}\n"
                             f"stderr:\n{r.stderr[-4000:]}")
    return r


# Names that need care in URLs, signatures and listings (encoding-type=url, XML escaping).
AWKWARD_NAMES = {"sp ace/ü-nïcode 日本.txt": 33, "plus+sign": 5, "pct%25x": 6, "amp&eq=1;x": 7, "q?mark#hash": 8,
                 "paren(1)[2]*~'@$,:": 9}


def make_tree(root: Path, files: Mapping[str, int]) -> dict[str, bytes]:
    """Random files under root, {relative path: size}; returns {relative path: content}."""
    out: dict[str, bytes] = {}
    for rel, size in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        p.write_bytes(data)
        out[rel] = data
    return out


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def bucket_contents(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under prefix read through boto3, keyed relative to the prefix."""
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def bucket_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def start_daemon(base: Path, extra_args: Sequence[str] = ()) -> Any:
    d = DaemonProc(base / "data", ["--no-mount", *extra_args])
    d.start()
    return d


def stop_daemon(d: Any) -> None:
    try:
        d.stop(timeout=30)
    except Exception:
        d.kill()


@pytest.fixture(scope="module")
def cd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The client daemon: plain HTTP S3 on a free port, no mount."""
    d = start_daemon(tmp_path_factory.mktemp("clients"))
    yield d
    stop_daemon(d)


@pytest.fixture(scope="module")
def s3(cd: Any) -> Any:
    return cd.s3()


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    return create_test_bucket(s3, request, "c")

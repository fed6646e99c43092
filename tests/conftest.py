"""Shared fixtures: the real daemon (`stowage serve`) in a subprocess on port 0."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
STOWAGE = [sys.executable, "-m", "appliance"]


@contextlib.contextmanager
def running(d: DaemonProc) -> Iterator[DaemonProc]:
    """`d` started; stopped at the end (killed if it will not stop): a module fixture's daemon."""
    d.start()
    try:
        yield d
    finally:
        try:
            d.stop(timeout=30)
        except Exception:
            d.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow files first: xdist hands files to workers in order, so a long one left last is the tail."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@dataclass
class DaemonProc:
    """A running `stowage serve --data DIR` process and how to reach it."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return str(self.info["s3_endpoint"])

    @property
    def mount(self) -> str | None:
        return self.info.get("mount")

    @property
    def access_key(self) -> str:
        return self._creds()["access_key"]

    @property
    def secret_key(self) -> str:
        return self._creds()["secret_key"]

    def _creds(self) -> dict[str, str]:
        return tomllib.loads((self.data_dir / "credentials.toml").read_text())

    def start(self, timeout: float = 60.0) -> DaemonProc:
        runfile = self.data_dir / "run" / "daemon.json"
        if runfile.exists():
            runfile.unlink()
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*STOWAGE, "serve", "--data", str(self.data_dir), "--listen", "127.0.0.1:0", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_tail()}")
            if runfile.exists():
                try:
                    self.info = json.loads(runfile.read_text())
                    if self.info.get("pid") == self.proc.pid:
                        return self
                except ValueError:
                    pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"daemon not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is not None:
            self._unmount_left()
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._unmount_left()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._unmount_left()

    def _unmount_left(self) -> None:
        """A daemon that died, or could not unmount (a full disk), leaves a dead FUSE mount
        (ENOTCONN) that breaks every later walk of the test's directory."""
        mount = self.info.get("mount")
        if mount:
            subprocess.run(["umount", "-l", mount], capture_output=True)

    def restart(self) -> DaemonProc:
        self.stop()
        return self.start()

    def s3(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
        )

    def cli(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*STOWAGE, *args, "--data", str(self.data_dir)], capture_output=True, text=True,
                           cwd=REPO, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"stowage {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r


_bucket_numbers = itertools.count()


def create_test_bucket(s3: Any, request: pytest.FixtureRequest, tag: str) -> str:
    """A fresh, valid bucket named after the test (unique within the run)."""
    name = f"{tag}{next(_bucket_numbers)}-{request.node.name[:30].lower()}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")[:60]
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session", autouse=True)
def _deletable_temp_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the run, after every loop device is detached: the mount points the
    appliance made immutable (console tests add disks) are released, so that pytest can delete
    this run's directories later; otherwise each run leaves its loop images behind for good."""
    yield
    from tests.diskmgr.conftest import release_mount_points

    release_mount_points(tmp_path_factory.getbasetemp())


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    """Start daemons on demand: factory(extra_args=[...], env={...}, name="d")."""
    started: list[DaemonProc] = []

    def factory(extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                name: str = "data", start: bool = True) -> DaemonProc:
        d = DaemonProc(tmp_path / name, list(extra_args or []), dict(env or {}))
        started.append(d)
        return d.start() if start else d

    yield factory
    for d in started:
        try:
            d.stop(timeout=30)
        except Exception:
            d.kill()


@pytest.fixture
def daemon(daemon_factory: Any) -> DaemonProc:
    """A fresh embedded appliance with S3 on a free port and no mount."""
    return daemon_factory(["--no-mount"])  # type: ignore[no-any-return]

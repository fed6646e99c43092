"""Hostile CLI inputs end in one clear error line and a non-zero exit, never a Python traceback:
files that are not UTF-8, sizes that overflow, a backup into a missing directory, an S3 source
that is not a URL or does not answer. In-process (click's runner), no daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appliance.cli import main
from appliance.cli.common import EX_CONFIG
from appliance.iam import masterkey

NOT_UTF8 = b"\xff\xfe[s3]\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    """`main` sets umask 077 for the process; give the rest of the test run its own back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def run(*args: str) -> Result:
    r = CliRunner().invoke(main, list(args))
    # an exception other than SystemExit is what the user would have seen as a traceback
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    assert "Traceback" not in r.output
    return r


def error_line(r: Result) -> str:
    """The last line on stderr: the one the user reads."""
    lines = r.stderr.strip().splitlines()
    assert lines, r.output
    return lines[-1]


def test_config_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "binary.toml"
    bad.write_bytes(NOT_UTF8)
    r = run("status", "--config", str(bad))
    assert r.exit_code == EX_CONFIG
    assert error_line(r) == f"stowage: error: {bad}: not UTF-8 text (invalid byte at offset 0)"


@pytest.mark.parametrize("text", [b"[gc]\ninterval_seconds = nan\n", b"[snapshot]\ninterval_seconds = -5\n",
                                  NOT_UTF8])
def test_serve_refuses_a_bad_config_before_starting(tmp_path: Path, text: bytes) -> None:
    """The daemon itself (a subprocess: nothing must start) exits with EX_CONFIG, which systemd
    does not restart on."""
    config = tmp_path / "stowage.toml"
    config.write_bytes(text)
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--config", str(config), "--data",
                        str(tmp_path / "data"), "--listen", "127.0.0.1:0", "--no-mount"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == EX_CONFIG, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["policy", "create", "p1", "{file}"],
                                  ["policy", "update", "p1", "{file}"],
                                  ["key", "create", "bob", "--policy-file", "{file}"]])
def test_policy_file_not_utf8(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "binary.json"
    bad.write_bytes(b"\xff\xfe{}")
    r = run(*[a.replace("{file}", str(bad)) for a in args], "--data", str(tmp_path / "data"))
    assert r.exit_code == 2  # click's usage error
    assert "not UTF-8 text" in error_line(r) and str(bad) in error_line(r)


@pytest.mark.parametrize("size", ["1e999", "inf", "nan", "-inf", "1e30", "8192P"])
def test_quota_size_out_of_range(tmp_path: Path, size: str) -> None:
    r = run("quota", "set", "--user", "bob", "--bytes", size, "--data", str(tmp_path / "data"))
    assert r.exit_code == 2
    assert "--bytes" in error_line(r)


def test_export_master_into_a_missing_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    masterkey.load_or_create(data / "keys" / "master.key")
    dest = tmp_path / "no" / "such" / "dir" / "master.key"
    r = run("kms", "export-master", str(dest), "--data", str(data))
    assert r.exit_code == 1
    assert error_line(r) == f"stowage: error: {dest.parent}: no such directory (create it first)"
    assert not dest.parent.exists()


@pytest.mark.parametrize("endpoint", ["not-a-url", "ftp://x", "http://", "http://h:port", "http://h/\r\nX: 1"])
def test_import_s3_endpoint_not_a_url(tmp_path: Path, endpoint: str) -> None:
    r = run("import", "s3", "--endpoint", endpoint, "--access-key", "a", "--secret-key", "b",
            "--data", str(tmp_path / "data"))
    assert r.exit_code == 2
    assert "--endpoint" in error_line(r) and "expected an http:// or https:// URL" in error_line(r)


def test_import_s3_source_unreachable(tmp_path: Path) -> None:
    config = tmp_path / "stowage.toml"
    config.write_text('[s3]\naccess_key = "root"\nsecret_key = "rootsecret"\n')  # a target key without a daemon
    r = run("import", "s3", "--endpoint", "http://127.0.0.1:1", "--access-key", "a", "--secret-key", "b",
            "--config", str(config), "--data", str(tmp_path / "data"))
    assert r.exit_code == 1
    line = error_line(r)
    assert line.startswith("stowage: error: import stopped: ") and "http://127.0.0.1:1" in line

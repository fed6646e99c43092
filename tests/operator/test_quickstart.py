"""The README's quick start, literally: `stowage` finds ./stowage-data (or $STOWAGE_DATA) without
--data, `stowage credentials --env` is eval'ed by a shell, the README's boto3 snippet runs as
written, `serve --banner` says where everything is; one-line errors; the durability and logs
commands' --json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from ..conftest import REPO

DEPS = os.environ.get("PYTHONPATH", "")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "STOWAGE_DATA"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), DEPS) if p)
    env.update(extra)
    return env


def _stowage(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], cwd=cwd, env=_env(**extra),
                          capture_output=True, text=True)


def test_readme_quick_start(daemon_factory: Any, tmp_path: Path) -> None:
    d = daemon_factory(["--no-mount", "--banner"], name="stowage-data")
    banner = d.log_tail(40)
    assert "Stowage is running." in banner and f"S3 endpoint:  {d.endpoint}" in banner
    assert "stowage credentials" in banner and "foreground" in banner
    assert f"console:      {d.endpoint}/_stowage/v1/console/" in banner
    # the daemon runs from the repository here, so the hint names the directory (`make run`'s is ./stowage-data)
    assert f"stowage credentials --data {d.data_dir}" in banner
    # from the directory holding ./stowage-data, no --data
    r = _stowage(tmp_path, "credentials")
    assert r.returncode == 0 and d.access_key in r.stdout and d.endpoint in r.stdout
    r = _stowage(Path("/"), "credentials", "--json", STOWAGE_DATA=str(d.data_dir))
    assert json.loads(r.stdout)["secret_key"] == d.secret_key
    env_lines = _stowage(tmp_path, "credentials", "--env").stdout
    assert re.search(r"^export AWS_ACCESS_KEY_ID=\S+$", env_lines, re.M)
    # the README's python block, run literally after eval "$(stowage credentials --env)"
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S)
    assert snippet is not None
    script = tmp_path / "snippet.py"
    script.write_text(snippet.group(1))
    shell = f'eval "$({sys.executable} -m appliance credentials --env)" && {sys.executable} {script}'
    out = subprocess.run(["bash", "-c", shell], cwd=tmp_path, env=_env(HOME=str(tmp_path)), capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    text, url = out.stdout.splitlines()
    assert text == "hello, stowage"
    with urllib.request.urlopen(url) as resp:  # the presigned URL works
        assert resp.read() == b"hello, stowage"
    # status and a listing without --data, from that directory
    assert json.loads(_stowage(tmp_path, "status", "--json").stdout)["buckets"] == 1
    assert isinstance(json.loads(_stowage(tmp_path, "user", "list", "--json").stdout), list)


def test_errors_are_one_line(tmp_path: Path) -> None:
    r = _stowage(tmp_path, "credentials", "--data", str(tmp_path / "nothing"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "start the embedded appliance once" in r.stderr
    r = _stowage(tmp_path, "access-log", "list", "--data", str(tmp_path / "nothing"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

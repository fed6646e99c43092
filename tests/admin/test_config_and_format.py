"""Bad configuration and unreadable on-disk formats: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from appliance.config import ConfigError, load_config

BAD_CONFIGS = {
    "not toml": ("state_dir = [", "stowage.toml"),
    "unknown key": ('state_dir = "/tmp/x"\nbogus = 1\n', "bogus: unknown setting"),
    "wrong type": ('[s3]\nlisten = 9000\n', "s3.listen: expected a string"),
    "bad listen": ('[s3]\nlisten = "localhost"\n', "expected HOST:PORT"),
    "bad pool": ('[pools.default]\nk = 40\nm = 2\n', "k+m must be at most 32"),
    "bad block": ('[pools.default]\nblock_size = 1000\n', "block_size"),
    "unknown pool": ('[[disks]]\npath = "/srv/d0"\npool = "nope"\n', "unknown pool"),
    "tls half": ('[s3]\ntls_cert = "/c.pem"\n', "tls_cert and s3.tls_key"),
    "mount": ('[mount]\nenabled = "maybe"\n', "mount.enabled"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_is_one_clear_line(tmp_path: Path, name: str) -> None:
    text, expected = BAD_CONFIGS[name]
    path = tmp_path / "stowage.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert expected in ei.value.message and "\n" not in ei.value.message
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--config", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "stowage.toml"
    path.write_text('state_dir = "/srv/stowage"\n[s3]\nlisten = "0.0.0.0:9000"\n[scrub]\ninterval_hours = 1.5\n'
                    '[pools.default]\nk = 4\nm = 2\n[storage_classes]\nGLACIER = "default"\n')
    cfg = load_config(path)
    assert cfg.s3.listen == "0.0.0.0:9000" and cfg.scrub.interval_hours == 1.5 and cfg.pools["default"].k == 4


def test_newer_metadata_format_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    meta = data / "meta"
    meta.mkdir(parents=True)
    db = plyvel.DB(str(meta), create_if_missing=True)
    db.put(b"Aformat", b"99")
    db.close()
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--no-mount",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert "format 99" in r.stderr and "upgrade Stowage" in r.stderr and "Traceback" not in r.stderr


def test_bad_cli_arguments(tmp_path: Path) -> None:
    for args in (["serve", "--data", str(tmp_path), "--listen", "nonsense"],
                 ["serve", "--data", str(tmp_path), "--mount", str(tmp_path / "m"), "--no-mount"],
                 ["frobnicate"]):
        r = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and r.stderr.strip() and "Traceback" not in r.stderr, args


def test_credentials_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    """It ended the daemon's start with a UnicodeDecodeError traceback (found by fuzzing)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.toml").write_bytes(b'access_key = "\xff\xfe"\nsecret_key = "x"\n')
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--no-mount",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "unreadable credentials file" in r.stderr and "Traceback" not in r.stderr


def test_a_file_where_the_metadata_directory_belongs_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta").write_text("not a directory")
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--no-mount",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "cannot open metadata DB" in r.stderr and "Traceback" not in r.stderr


# an entry of the data directory of the wrong kind: (its path, made a directory rather than a file)
WRONG_KIND_ENTRIES = {
    "run": ("run", False), "control.sock": ("control.sock", True), "log": ("log", False),
    "access.log": ("log/access.log", True), "audit.log": ("log/audit.log", True), "keys": ("keys", False),
    "master.key": ("keys/master.key", True), "appliance-id": ("appliance-id", True),
}


@pytest.mark.parametrize("name", list(WRONG_KIND_ENTRIES))
def test_a_state_entry_of_the_wrong_kind_is_one_clear_line(tmp_path: Path, name: str) -> None:
    """Each was a traceback from where it was first met, some from inside the running services
    (a trio ExceptionGroup after the gateway was up) (found by fuzzing)."""
    rel, as_dir = WRONG_KIND_ENTRIES[name]
    data = tmp_path / "data"
    bad = data / rel
    data.mkdir(mode=0o700)
    bad.parent.mkdir(exist_ok=True)
    if as_dir:
        bad.mkdir()
    else:
        bad.write_text("junk")
    r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--no-mount",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    kind = "is a directory" if as_dir else "is not a directory"
    assert r.stderr.startswith(f"stowage: error: {bad} {kind} (") and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_metadata_db_held_by_another_process_is_not_a_configuration_error(tmp_path: Path) -> None:
    """A second start while another process holds the metadata DB (a daemon killed with a thread
    stuck in the kernel holds it until that thread returns) exited 78, a configuration error,
    which systemd never restarts: the box stayed down after the stuck disk answered. It is one
    line and exit 1 (systemd retries)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    db = plyvel.DB(str(data / "meta"), create_if_missing=True)
    try:
        r = subprocess.run([sys.executable, "-m", "appliance", "serve", "--data", str(data), "--no-mount",
                            "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    finally:
        db.close()
    assert r.returncode == 1, r.stderr
    assert f"the metadata DB at {data / 'meta'} is in use by another process" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

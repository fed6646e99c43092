"""The master key ring: generated 0600, wraps with bound context, rotates, refuses loose modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.engine.errors import FormatError
from appliance.iam.masterkey import MasterKeyError, load_or_create, parse


def test_generated_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    key = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    blob = key.wrap(b"secret", b"iam-secret:AK1")
    assert b"secret" not in blob
    again = load_or_create(path)
    assert again.unwrap(blob, b"iam-secret:AK1") == b"secret"


def test_context_is_bound_and_damage_detected(tmp_path: Path) -> None:
    key = load_or_create(tmp_path / "master.key")
    blob = key.wrap(b"secret", b"iam-secret:AK1")
    with pytest.raises(MasterKeyError):
        key.unwrap(blob, b"iam-secret:AK2")
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(MasterKeyError):
        key.unwrap(flipped, b"iam-secret:AK1")
    with pytest.raises(FormatError):
        key.unwrap(b"\x09" + blob[1:], b"iam-secret:AK1")


def test_rotation_keeps_old_blobs_readable(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = load_or_create(path)
    old = key.wrap(b"one", b"c")
    first = key.current
    key.add_key()
    key.save()
    key = load_or_create(path)
    assert key.current != first and not key.wrapped_by_current(old)
    assert key.unwrap(old, b"c") == b"one"
    new = key.wrap(b"two", b"c")
    key.retire(first)
    assert key.unwrap(new, b"c") == b"two"
    with pytest.raises(MasterKeyError, match="does not have"):
        key.unwrap(old, b"c")


def test_loose_mode_and_garbage_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_or_create(path)
    with pytest.raises(MasterKeyError):
        load_or_create(tmp_path / "missing.key", create=False)
    for bad in [b"", b"[]", b'{"format": 2}', b'{"format": 1, "current": "x", "keys": []}',
                b'{"format": 1, "current": "a", "keys": [{"id": "a", "key": "c2hvcnQ="}]}', b"\xff\xfe"]:
        with pytest.raises(MasterKeyError):
            parse(bad)


def test_systemd_credential_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_or_create(tmp_path / "a.key")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "stowage-master").write_text(source.to_json())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    key = load_or_create(tmp_path / "never-created.key")
    assert key.current == source.current and key.path is None
    assert not (tmp_path / "never-created.key").exists()

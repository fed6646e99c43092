"""Hostile console requests against the real daemon (what fuzzing the console found): strings
no UTF-8 text can hold (a JSON "\\ud800") are a 400 with the console's JSON error, not a
dropped connection; a disk add naming a device with a NUL is refused and audited; the audit log
keeps an entry whatever text it is given; a replace of a disk by itself is refused at once (not
"started"); and a disabled user's key says so only to whoever holds its secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from appliance.audit import AuditLog
from tests.conftest import DaemonProc

from .conftest import ConsoleClient, add_user, console_url

SURROGATE_BODIES = {
    "presign key": b'{"bucket": "bkt", "key": "\\ud800"}',
    "presign version_id": b'{"bucket": "bkt", "key": "k", "version_id": "\\ud800"}',
    "presign nested key": b'{"bucket": "bkt", "key": "k", "x": [{"\\udfff": 1}]}',
    "disk add device": b'{"action": "add", "device": "\\ud800", "confirm": "\\ud800"}',
    "disk add role": b'{"action": "add", "device": "/nonexistent", "confirm": "/nonexistent", "role": "\\ud800"}',
}
PATHS = {"presign key": "presign", "presign version_id": "presign", "presign nested key": "presign",
         "disk add device": "disks/action", "disk add role": "disks/action"}


def _audit(d: DaemonProc) -> list[dict[str, Any]]:
    path = d.data_dir / "log" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _log(d: DaemonProc) -> str:
    assert d.log_path is not None
    return d.log_path.read_text(errors="replace")


def test_lone_surrogates_are_a_400(cd: DaemonProc, root: ConsoleClient) -> None:
    tracebacks = _log(cd).count("Traceback")
    body = b'{"access_key": "%s", "secret_key": "\\ud800"}' % cd.access_key.encode()
    r = requests.post(console_url(cd) + "api/login", data=body, headers={"Content-Type": "application/json"},
                      timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "BadRequest", r.text
    for name, raw in SURROGATE_BODIES.items():
        r = root("POST", PATHS[name], data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.json()["error"] == "BadRequest", (name, r.text)
    log = _log(cd)
    assert log.count("Traceback") == tracebacks and "--- Logging error ---" not in log
    assert root("GET", "session").status_code == 200  # the daemon still serves


def test_device_with_a_nul_is_refused_and_audited(cd: DaemonProc, root: ConsoleClient) -> None:
    seen = len(_audit(cd))
    r = root("POST", "disks/action", json={"action": "add", "device": "a\x00b", "confirm": "a\x00b"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidArgument" and "not a valid device name" in r.json()["message"]
    added = [e for e in _audit(cd)[seen:] if e["action"] == "disks.add"]
    assert len(added) == 1 and added[0]["outcome"] == "InvalidArgument" and added[0]["source"] == "console"
    assert "device=a\x00b" in added[0]["target"]
    assert "Traceback" not in _log(cd)


def test_audit_log_keeps_an_entry_of_any_text(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "log" / "audit.log")
    try:
        audit.record(source="console", who="arn:aws:iam::1:root", where="127.0.0.1:1", action="disks.add",
                     target="device=/dev/x, role=\ud800", outcome="InvalidArgument", before={"k\udcff": "v\x00"})
        audit.record(source="console", who="é", where="", action="disks.add", target="role=data")
    finally:
        audit.close()
    first, second = [json.loads(line) for line in (tmp_path / "log" / "audit.log").read_text().splitlines()]
    assert first["target"] == "device=/dev/x, role=\ud800" and first["before"] == {"k\udcff": "v\x00"}
    assert second["who"] == "é" and '"who":"é"' in (tmp_path / "log" / "audit.log").read_text()


def test_replace_of_a_disk_by_itself_is_refused_at_once(cd: DaemonProc, root: ConsoleClient) -> None:
    disk = root("GET", "disks").json()["disks"][0]["disk_id"]
    seen = len(_audit(cd))
    r = root("POST", "disks/action", json={"action": "replace", "disk": disk, "new": disk})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "InvalidArgument", "message": "replace: OLD and NEW are the same disk"}
    entries = [e for e in _audit(cd)[seen:] if e["action"] == "disks.replace"]
    assert [e["outcome"] for e in entries] == ["InvalidArgument"]
    assert root("GET", "disks").json()["services"]["drain"] == {}


def test_a_failed_login_does_not_say_the_user_is_disabled(cd: DaemonProc) -> None:
    access_key, secret_key = add_user(cd, "hostile-disabled")
    cd.cli("user", "disable", "hostile-disabled")
    url = console_url(cd) + "api/login"
    wrong = requests.post(url, json={"access_key": access_key, "secret_key": "wrong" + secret_key}, timeout=30)
    unknown = requests.post(url, json={"access_key": "STW" + "X" * 17, "secret_key": "wrong"}, timeout=30)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "InvalidCredentials",
                                              "message": "The access key or the secret key is wrong."}
    right = requests.post(url, json={"access_key": access_key, "secret_key": secret_key}, timeout=30)
    assert right.status_code == 401 and right.json() == wrong.json()

"""Alerts to a real local webhook (http.server) and a real local SMTP receiver (aiosmtpd): each
condition once when it starts and once when it clears; state kept across a restart; the SMTP
password wrapped, never in a log. In process on a real store, and end to end on the daemon."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from appliance.alerts import SMTP_PASSWORD, Alerter
from appliance.config import AlertsConfig
from appliance.engine.objectstore import ObjectStore
from appliance.iam.masterkey import load_or_create
from appliance.opstate import OperatorState
from diskmgr.state import DiskState

from ..engine.conftest import store_factory  # noqa: F401 - the fixture
from ..healing.helpers import vanish


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.auth: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as s:  # a free port: the controller checks it is up by connecting to it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], str]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield got, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _poll(pred: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_alerts_fire_once_and_resolve(store_factory: Callable[..., ObjectStore], tmp_path: Path,  # noqa: F811
                                            smtp: tuple[Inbox, int],
                                            webhook: tuple[list[dict[str, Any]], str]) -> None:
    inbox, port = smtp
    hooks, url = webhook
    store = store_factory(k=4, m=2)
    cfg = AlertsConfig(webhook_url=url, smtp_host="127.0.0.1", smtp_port=port, smtp_from="stowage@box.test",
                       smtp_to=["ops@box.test"], pool_full_percent=100.0)  # this test box's disk may be full
    master = load_or_create(tmp_path / "master.key")
    state = OperatorState(store.db)
    alerter = Alerter(store, None, cfg, state, master)
    await alerter.evaluate()
    assert hooks == [] and inbox.messages == []  # a healthy pool says nothing
    disk = next(iter(store.disks))
    disk.state, disk.reasons = DiskState.FAILED, ["I/O errors: 12"]
    await alerter.evaluate()
    await alerter.evaluate()  # once each: a second evaluation sends nothing new
    assert sorted((h["alert"], h["status"]) for h in hooks) == [
        (f"disk:{disk.disk_id}", "firing"), ("redundancy:default", "firing")]
    by_key = {h["alert"]: h for h in hooks}
    assert by_key[f"disk:{disk.disk_id}"]["severity"] == "critical"
    assert by_key[f"disk:{disk.disk_id}"]["detail"] == "I/O errors: 12"
    assert by_key["redundancy:default"]["summary"] == "pool default survives 1 more disk failure(s) instead of 2"
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert len(subjects) == 2 and all(s.startswith(f"[stowage {store.db.appliance_id}] CRITICAL: ") or
                                      s.startswith(f"[stowage {store.db.appliance_id}] WARNING: ") for s in subjects)
    assert inbox.messages[0]["To"] == "ops@box.test"
    # a new Alerter (a restart) knows they were sent
    alerter = Alerter(store, None, cfg, state, master)
    await alerter.evaluate()
    assert len(hooks) == 2 and len(inbox.messages) == 2
    disk.state, disk.reasons = DiskState.OK, []
    await alerter.evaluate()
    await alerter.evaluate()
    assert sorted((h["alert"], h["status"]) for h in hooks[2:]) == [
        (f"disk:{disk.disk_id}", "resolved"), ("redundancy:default", "resolved")]
    assert all(h["resolved"] for h in hooks[2:])
    assert sum(1 for m in inbox.messages if "RESOLVED" in m["Subject"]) == 2
    assert alerter.to_json() == [] and state.get("alerts") == {"active": {}}
    # a full pool, with the threshold lowered to what this filesystem already uses
    alerter = Alerter(store, None, replace(cfg, pool_full_percent=0.001), state, master)
    await alerter.evaluate()
    assert hooks[-1]["alert"] == "capacity:default" and hooks[-1]["status"] == "firing"


async def test_a_failed_delivery_is_retried(store_factory: Callable[..., ObjectStore], tmp_path: Path,  # noqa: F811
                                            webhook: tuple[list[dict[str, Any]], str]) -> None:
    hooks, url = webhook
    store = store_factory(k=4, m=2)
    state = OperatorState(store.db)
    master = load_or_create(tmp_path / "master.key")
    dead = Alerter(store, None, AlertsConfig(webhook_url="http://127.0.0.1:9/none", pool_full_percent=100.0), state,
                   master)
    next(iter(store.disks)).state = DiskState.OFFLINE
    await dead.evaluate()
    assert all(not a["sent"] for a in dead.to_json())
    alive = Alerter(store, None, AlertsConfig(webhook_url=url, pool_full_percent=100.0), state, master)
    await alive.evaluate()
    assert {h["alert"] for h in hooks} == {f"disk:{next(iter(store.disks)).disk_id}", "redundancy:default"}


async def test_smtp_password_is_wrapped(store_factory: Callable[..., ObjectStore], tmp_path: Path) -> None:  # noqa: F811
    store = store_factory()
    state = OperatorState(store.db)
    master = load_or_create(tmp_path / "master.key")
    alerter = Alerter(store, None, AlertsConfig(), state, master)
    await alerter.set_password("hunter2-smtp")
    assert alerter.password() == "hunter2-smtp"
    raw = b"".join(v for _, v in store.db.scan(b"g"))
    assert b"hunter2-smtp" not in raw and SMTP_PASSWORD.encode() in raw
    new_master = load_or_create(tmp_path / "other.key")
    assert await alerter.rewrap(new_master) == 1
    assert alerter.password() == "hunter2-smtp"


def test_a_vanished_disk_is_announced(daemon_factory: Any, tmp_path: Path, smtp: tuple[Inbox, int],
                                      webhook: tuple[list[dict[str, Any]], str]) -> None:
    inbox, port = smtp
    hooks, url = webhook
    cfg = tmp_path / "stowage.toml"
    cfg.write_text(f'[alerts]\nwebhook_url = "{url}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                   f'smtp_from = "stowage@box.test"\nsmtp_to = ["ops@box.test"]\ninterval_seconds = 0.2\n'
                   'pool_full_percent = 100.0\n')
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    d.s3().create_bucket(Bucket="alerted")
    d.s3().put_object(Bucket="alerted", Key="k", Body=b"x" * 100000)
    victim = sorted((d.data_dir / "disks").iterdir())[0]
    vanish(victim, tmp_path / "pulled")
    fired = _poll(lambda: [h for h in hooks if h["alert"].startswith("disk:") and h["status"] == "firing"])
    assert fired[0]["severity"] == "critical" and str(victim) in fired[0]["summary"]
    _poll(lambda: any(h["alert"] == "redundancy:default" for h in hooks))
    _poll(lambda: len(inbox.messages) >= 2)
    rows = json.loads(d.cli("alerts", "list", "--json").stdout)
    assert {r["key"] for r in rows} >= {fired[0]["alert"], "redundancy:default"}
    d.cli("alerts", "smtp-password", input="s3cr3t-smtp-pw\n")
    d.restart()
    d.cli("alerts", "check")
    # not repeated after the restart (the embedded mode may replace the vanished directory by a new
    # disk, and then the old one's alert resolves)
    assert len([h for h in hooks if h["alert"] == fired[0]["alert"] and h["status"] == "firing"]) == 1
    logs = d.log_path.read_text() + "".join(p.read_text() for p in (d.data_dir / "log").iterdir())
    assert "s3cr3t-smtp-pw" not in logs


async def test_a_service_backlog_alerts_and_is_exported(store_factory: Callable[..., ObjectStore],  # noqa: F811
                                                        tmp_path: Path,
                                                        webhook: tuple[list[dict[str, Any]], str]) -> None:
    from prometheus_client import generate_latest

    from appliance.metrics import appliance_registry

    hooks, url = webhook
    store = store_factory()
    alerter = Alerter(store, None, AlertsConfig(webhook_url=url, pool_full_percent=100.0), OperatorState(store.db),
                      load_or_create(tmp_path / "master.key"))
    queue = [5000]
    alerter.backlogs["replication"] = (lambda: queue[0], 1000)
    await alerter.evaluate()
    assert [(h["alert"], h["status"]) for h in hooks] == [("backlog:replication", "firing")]
    queue[0] = 3
    await alerter.evaluate()
    assert [(h["alert"], h["status"]) for h in hooks][-1] == ("backlog:replication", "resolved")
    registry, collector = appliance_registry(store, None)
    collector.backlogs["replication"] = lambda: queue[0]
    assert b'stowage_service_backlog{service="replication"} 3.0' in generate_latest(registry)

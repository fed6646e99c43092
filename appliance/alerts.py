"""Built-in alerts: the conditions an operator must hear about, sent to a webhook (a JSON POST)
and by email (SMTP from [alerts]), each once when it starts and once when it clears.

Conditions, evaluated every alerts.interval_seconds:

    disk:<id>            a disk is failed, failing, offline or warning (its reasons in the text)
    redundancy:<pool>    a pool survives fewer disk failures than its geometry's m
    capacity:<pool>      a pool is past alerts.pool_full_percent full
    heal-backlog         more than alerts.heal_backlog segments wait for repair
    unrecoverable        the healer found objects it cannot rebuild

The alerts that are firing are kept in the metadata DB (g"alerts", through MetaDB commits), so
a restart neither repeats nor forgets them. A send that fails is retried at the next evaluation
(the alert is marked sent only when every configured channel took it). The SMTP password is
stored wrapped by the master key (g"smtp-password"), never in the TOML or a log.
"""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any

import trio

from appliance.config import AlertsConfig
from appliance.engine.disks import Disk
from appliance.engine.objectstore import ObjectStore
from appliance.iam.masterkey import MasterKey
from appliance.services.healing import Healing

from .opstate import ALERTS, OperatorState

log = logging.getLogger("stowage.alerts")
SMTP_PASSWORD = "smtp-password"
_PASSWORD_CONTEXT = b"stowage alerts smtp-password"
SEND_TIMEOUT = 15.0
UNHEALTHY = {"failed": "critical", "offline": "critical", "failing": "warning", "warning": "warning"}
GONE = frozenset({"failed", "offline", "removed"})


@dataclass(frozen=True)
class Condition:
    key: str
    severity: str  # critical | warning
    summary: str
    detail: str = ""


@dataclass
class Alert:
    key: str
    severity: str
    summary: str
    detail: str
    since: float
    sent: bool = False  # the "firing" message went out on every channel
    resolved_at: float = 0.0  # cleared; the "resolved" message is still to go out


def pool_space(members: list[Disk]) -> tuple[int, int]:
    """(bytes, free bytes on writable disks) of a pool's filesystems: disks sharing one (the
    embedded mode) count once, and its free space counts if any of them takes writes."""
    size: dict[int, int] = {}
    free: dict[int, int] = {}
    for d in members:
        dev = d.device()  # as last read: a stalled disk must not hold the loop
        if dev is None:
            continue
        if dev not in size:
            size[dev], free[dev] = d.total_bytes(), 0
        if d.writable:
            free[dev] = max(free[dev], d.free_bytes())
    return sum(size.values()), sum(free.values())


def conditions(store: ObjectStore, healing: Healing | None, cfg: AlertsConfig) -> list[Condition]:
    found: list[Condition] = []
    disks = list(store.disks)
    for d in disks:
        sev = UNHEALTHY.get(str(d.state))
        if sev is not None:
            why = "; ".join(d.reasons) or str(d.state)
            found.append(Condition(f"disk:{d.disk_id}", sev, f"disk {d.disk_id} ({d.path}) is {d.state}", why))
    for pool in sorted({d.pool for d in disks}):
        members = [d for d in disks if d.pool == pool and d.state != "removed"]
        g = store.geometry(pool)
        lost = sum(1 for d in members if str(d.state) in GONE or not d.readable)
        if g.m and lost:
            left = g.m - lost
            found.append(Condition(f"redundancy:{pool}", "critical" if left <= 0 else "warning",
                                   f"pool {pool} survives {max(left, 0)} more disk failure(s) instead of {g.m}",
                                   f"{lost} of its {len(members)} disks are not readable"))
        size, free = pool_space(members)
        if size and (size - free) * 100.0 / size > cfg.pool_full_percent:
            pct = (size - free) * 100.0 / size
            found.append(Condition(f"capacity:{pool}", "warning",
                                   f"pool {pool} is {pct:.0f}% full (alert above {cfg.pool_full_percent:g}%)"))
    if healing is not None:
        heal = healing.healer.progress
        backlog = heal.pending + (heal.total - heal.done if heal.running else 0)
        if backlog > cfg.heal_backlog:
            found.append(Condition("heal-backlog", "warning",
                                   f"{backlog} segments wait for repair (alert above {cfg.heal_backlog})"))
        if heal.unrecoverable:
            shown = ", ".join(heal.unrecoverable[:20])
            more = f" and {len(heal.unrecoverable) - 20} more" if len(heal.unrecoverable) > 20 else ""
            found.append(Condition("unrecoverable", "critical",
                                   f"{len(heal.unrecoverable)} object(s) cannot be recovered", shown + more))
    return found


def message(alert: Alert, status: str, appliance: str) -> dict[str, Any]:
    return {"status": status, "alert": alert.key, "severity": alert.severity, "summary": alert.summary,
            "detail": alert.detail, "appliance": appliance,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(alert.since)),
            "resolved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(alert.resolved_at))
            if alert.resolved_at else None}


Sender = Callable[[dict[str, Any]], None]  # blocking; raises OSError (or smtplib's) on failure


def webhook_sender(url: str) -> Sender:
    def send(doc: dict[str, Any]) -> None:
        req = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json",
                                                                    "User-Agent": "stowage-alerts"})
        with urllib.request.urlopen(req, timeout=SEND_TIMEOUT) as resp:
            if resp.status >= 300:
                raise OSError(f"webhook answered {resp.status}")

    return send


def smtp_sender(cfg: AlertsConfig, password: Callable[[], str | None]) -> Sender:
    def send(doc: dict[str, Any]) -> None:
        msg = EmailMessage()
        word = "RESOLVED" if doc["status"] == "resolved" else doc["severity"].upper()
        msg["Subject"] = f"[stowage {doc['appliance']}] {word}: {doc['summary']}"
        msg["From"] = cfg.smtp_from
        msg["To"] = ", ".join(cfg.smtp_to)
        lines = [doc["summary"], "", doc["detail"], "", f"alert: {doc['alert']}", f"since: {doc['since']}"]
        if doc["resolved"]:
            lines.append(f"resolved: {doc['resolved']}")
        msg.set_content("\n".join(lines) + "\n")
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SEND_TIMEOUT) as smtp:
            if cfg.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            secret = password()
            if cfg.smtp_user and secret:
                smtp.login(cfg.smtp_user, secret)
            smtp.send_message(msg)

    return send


def wrap_password(master: MasterKey, password: str) -> dict[str, Any]:
    return {"wrapped": base64.b64encode(master.wrap(password.encode(), _PASSWORD_CONTEXT)).decode()}


def unwrap_password(master: MasterKey, stored: dict[str, Any] | None) -> str | None:
    if not stored or not isinstance(stored.get("wrapped"), str):
        return None
    return master.unwrap(base64.b64decode(stored["wrapped"]), _PASSWORD_CONTEXT).decode()


@dataclass
class Alerter:
    store: ObjectStore
    healing: Healing | None
    cfg: AlertsConfig
    state: OperatorState
    master: MasterKey
    senders: list[Sender] = field(default_factory=list)
    active: dict[str, Alert] = field(default_factory=dict)
    # service -> (its backlog, the length above which it alerts): Operator.register_backlog
    backlogs: dict[str, tuple[Callable[[], float], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.senders:
            if self.cfg.webhook_url:
                self.senders.append(webhook_sender(self.cfg.webhook_url))
            if self.cfg.smtp_host:
                self.senders.append(smtp_sender(self.cfg, self.password))
        stored = self.state.get(ALERTS) or {}
        for key, doc in (stored.get("active") or {}).items():
            try:
                self.active[key] = Alert(**doc)
            except TypeError:
                log.warning("dropping a damaged stored alert %s", key)

    def password(self) -> str | None:
        return unwrap_password(self.master, self.state.get(SMTP_PASSWORD))

    async def _save(self) -> None:
        await self.state.put(ALERTS, {"active": {k: asdict(a) for k, a in self.active.items()}})

    async def _send(self, doc: dict[str, Any]) -> bool:
        ok = True
        for send in self.senders:
            try:
                await trio.to_thread.run_sync(send, doc, abandon_on_cancel=True)
            except (OSError, smtplib.SMTPException) as exc:
                ok = False
                log.warning("alert %s (%s) not delivered: %s", doc["alert"], doc["status"], exc)
        return ok

    async def evaluate(self) -> None:
        now = time.time()
        found = conditions(self.store, self.healing, self.cfg)
        for service, (backlog, limit) in sorted(self.backlogs.items()):
            n = backlog()
            if n > limit:
                found.append(Condition(f"backlog:{service}", "warning",
                                       f"{n:.0f} items wait in the {service} queue (alert above {limit})"))
        current = {c.key: c for c in found}
        changed = False
        for key, c in current.items():
            a = self.active.get(key)
            if a is None or a.resolved_at:
                self.active[key] = Alert(key, c.severity, c.summary, c.detail, now)
                log.warning("alert: %s", c.summary)
                changed = True
            elif (a.severity, a.summary, a.detail) != (c.severity, c.summary, c.detail):
                a.severity, a.summary, a.detail = c.severity, c.summary, c.detail
                changed = True
        for key, a in list(self.active.items()):
            if key not in current and not a.resolved_at:
                a.resolved_at = now
                log.info("alert resolved: %s", a.summary)
                changed = True
        appliance = self.store.db.appliance_id
        for key, a in list(self.active.items()):
            if not a.sent and await self._send(message(a, "firing", appliance)):
                a.sent, changed = True, True
            if a.resolved_at and a.sent and await self._send(message(a, "resolved", appliance)):
                del self.active[key]
                changed = True
            elif a.resolved_at and not a.sent:
                del self.active[key]  # cleared before anyone heard of it: nothing to resolve
                changed = True
        if changed:
            await self._save()

    async def set_password(self, password: str) -> None:
        await self.state.put(SMTP_PASSWORD, wrap_password(self.master, password) if password else {})

    async def rewrap(self, master: MasterKey) -> int:
        """Master-key rotation: wrap the SMTP password with the new current key."""
        secret = unwrap_password(self.master, self.state.get(SMTP_PASSWORD))
        self.master = master
        if secret is None:
            return 0
        await self.state.put(SMTP_PASSWORD, wrap_password(master, secret))
        return 1

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.active.values()]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.evaluate()
            except Exception:
                log.exception("evaluating alerts failed")
            await trio.sleep(self.cfg.interval_seconds)

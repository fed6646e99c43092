"""Where notifications are delivered: an HTTP webhook or an append-only JSON-lines file.

A target is built from the TOML ([notify.targets.NAME]) or from an EventTargetRecord added with
`stowage notify target add` (its authorization header wrapped by the master key). `send` either
returns (delivered) or raises DeliveryFailed; the worker retries.

The webhook is a blocking urllib3 pool used from worker threads (urllib3 comes with botocore):
a 2xx answer is a delivery, anything else (a refusal, a timeout, a TLS failure) is not.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
import urllib3

from appliance.config import NotifyTargetConfig, header_value_ok, url_parses
from appliance.engine import events_keys
from appliance.engine.errors import StowageError
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import EventTargetRecord


class SecretWrapper(Protocol):
    """What wraps stored secrets: the appliance master key (appliance/iam/masterkey.py)."""

    def wrap(self, secret: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...

    def wrapped_by_current(self, blob: bytes) -> bool: ...


class DeliveryFailed(Exception):
    pass


class TargetError(StowageError):
    """A target definition is not valid (or names one that does not exist)."""

    code = "InvalidArgument"


class Target(Protocol):
    name: str
    kind: str

    async def send(self, message: dict[str, Any]) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def secret_context(name: str) -> bytes:
    return b"event-target:" + name.encode()


@dataclass
class Webhook:
    name: str
    url: str
    auth_header: str = ""
    tls_verify: bool = True
    ca_file: str = ""
    timeout: float = 10.0
    kind: str = "webhook"
    _pool: urllib3.PoolManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if self.tls_verify else "CERT_NONE"}
        if self.ca_file:
            tls["ca_certs"] = self.ca_file
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False, **tls)

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        try:
            r = self._pool.request("POST", self.url, body=body, headers=headers,
                                   timeout=urllib3.Timeout(total=self.timeout), redirect=False)
        except (urllib3.exceptions.HTTPError, ValueError) as exc:  # Value: a header http.client refuses
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= r.status < 300:
            raise DeliveryFailed(f"the webhook answered {r.status}")

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        await trio.to_thread.run_sync(self._post, body, abandon_on_cancel=True)  # no local state touched

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "tls_verify": self.tls_verify, "auth_header": bool(self.auth_header)}


@dataclass
class JsonLinesFile:
    name: str
    path: str
    kind: str = "file"

    def _append(self, line: bytes) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryFailed(f"{self.path}: {exc.strerror}") from None

    async def send(self, message: dict[str, Any]) -> None:
        await trio.to_thread.run_sync(self._append, json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def describe(self) -> dict[str, Any]:
        return {"path": self.path}


def from_config(name: str, t: NotifyTargetConfig, timeout: float) -> Target:
    if t.type == "file":
        return JsonLinesFile(name, t.path)
    return Webhook(name, t.url, t.auth_header, t.tls_verify, t.ca_file, timeout)


def check_definition(kind: str, settings: dict[str, Any]) -> None:
    if kind == "webhook":
        url = settings.get("url", "")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048 \
                or not url_parses(url):
            raise TargetError("a webhook target needs an http:// or https:// URL")
    elif kind == "file":
        path = settings.get("path", "")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise TargetError("a file target needs an absolute path")
    else:
        raise TargetError(f"unknown target type {kind!r}: expected webhook or file")


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise TargetError("a target name is 1-64 letters, digits, '-', '_' or '.'")


def check_header_value(value: str, what: str) -> None:
    """A value sent as an HTTP header: one with a line break would be refused by http.client at
    every delivery (and, before it was caught there, stopped the daemon)."""
    if not header_value_ok(value):
        raise TargetError(f"{what} must be printable ASCII, without line breaks or control characters")


def new_record(name: str, kind: str, settings: dict[str, Any], secret: str, master: SecretWrapper) -> EventTargetRecord:
    check_name(name)
    check_definition(kind, settings)
    check_header_value(secret, "the auth header")
    wrapped = base64.b64encode(master.wrap(secret.encode(), secret_context(name))).decode() if secret else ""
    return EventTargetRecord(name, kind, dict(settings), wrapped, time.time_ns())


def from_record(rec: EventTargetRecord, master: SecretWrapper, timeout: float) -> Target:
    if rec.kind == "file":
        return JsonLinesFile(rec.name, str(rec.settings["path"]))
    secret = master.unwrap(base64.b64decode(rec.wrapped), secret_context(rec.name)).decode() if rec.wrapped else ""
    return Webhook(rec.name, str(rec.settings["url"]), secret, bool(rec.settings.get("tls_verify", True)),
                   str(rec.settings.get("ca_file", "")), timeout)


async def rewrap_targets(store: ObjectStore, master: SecretWrapper) -> int:
    """Re-wrap the secrets of notification and replication targets not wrapped by the master
    key's current key (`stowage kms rotate-master`); returns how many were."""
    n = 0
    async with store.txn() as t:
        for prefix in (events_keys.NOTIFY_TARGETS, events_keys.REPLICATION_TARGETS):
            for k, raw in t.batch.scan(prefix):
                rec = EventTargetRecord.decode(raw)
                blob = base64.b64decode(rec.wrapped) if rec.wrapped else b""
                if blob and not master.wrapped_by_current(blob):
                    secret = master.unwrap(blob, secret_context(rec.name))
                    rec.wrapped = base64.b64encode(master.wrap(secret, secret_context(rec.name))).decode()
                    t.batch.put(k, rec)
                    n += 1
    return n

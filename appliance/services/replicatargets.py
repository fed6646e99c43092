"""Replication targets: remote S3 endpoints added with `stowage replication target add`.

Stored as EventTargetRecord (kind "stowage" for another Stowage box, "s3" for any other S3
service) under O r<name>; the secret key is wrapped by the master key (never in plain text) and
re-wrapped by `stowage kms rotate-master` (notifytargets.rewrap_targets).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from appliance.config import url_parses
from appliance.engine.records import EventTargetRecord

from .notifytargets import SecretWrapper, TargetError, check_name, secret_context
from .s3push import Endpoint

KINDS = ("stowage", "s3")


@dataclass
class RemoteTarget:
    name: str
    kind: str  # "stowage": version ids and REPLICA status kept; "s3": any S3 service
    endpoint: Endpoint

    @property
    def keeps_versions(self) -> bool:
        return self.kind == "stowage"

    def describe(self) -> dict[str, Any]:
        ep = self.endpoint
        return {"name": self.name, "kind": self.kind, "endpoint": ep.url, "region": ep.region,
                "access_key": ep.access_key, "tls_verify": ep.tls_verify}


def new_record(name: str, kind: str, settings: dict[str, Any], secret_key: str,
               master: SecretWrapper) -> EventTargetRecord:
    check_name(name)
    if kind not in KINDS:
        raise TargetError(f"unknown replication target kind {kind!r}: expected stowage or s3")
    url = settings.get("endpoint", "")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048 \
            or not url_parses(url):
        raise TargetError("a replication target needs an http:// or https:// endpoint URL")
    if not settings.get("access_key") or not secret_key:
        raise TargetError("a replication target needs an access key and a secret key")
    wrapped = base64.b64encode(master.wrap(secret_key.encode(), secret_context(name))).decode()
    return EventTargetRecord(name, kind, dict(settings), wrapped, time.time_ns())


def from_record(rec: EventTargetRecord, master: SecretWrapper, pool: int) -> RemoteTarget:
    secret = master.unwrap(base64.b64decode(rec.wrapped), secret_context(rec.name)).decode()
    s = rec.settings
    return RemoteTarget(rec.name, rec.kind, Endpoint(str(s["endpoint"]), str(s["access_key"]), secret,
                                                     str(s.get("region") or "us-east-1"),
                                                     bool(s.get("tls_verify", True)), pool))

"""The event services the S3 gateway talks to: notifications (and replication, when running)."""

from __future__ import annotations

from dataclasses import dataclass

from .notify import NotifyService
from .replicate import ReplicationService


@dataclass
class EventHub:
    notify: NotifyService
    replication: ReplicationService | None = None

"""The event services the S3 gateway talks to: notifications (and replication, when running)."""

from __future__ import annotations

from dataclasses import dataclass

from .notify import NotifyService


@dataclass
class EventHub:
    notify: NotifyService

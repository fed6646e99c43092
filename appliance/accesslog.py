"""The structured access log: one JSON line per S3 or IAM request, for the buckets it is on for
(`stowage access-log enable BUCKET`, or every request with access_log.enabled), written to a
rotated file (access_log.path, default <state_dir>/log/access.log, mode 0600) or to the journal
(access_log.target = "journal", each field a journal field STOWAGE_<NAME>).

    {"time": "2026-12-02T12:00:00.123Z", "request_id": "...", "remote": "127.0.0.1:40522",
     "principal": "arn:aws:iam::...:root", "access_key": "AKIA...", "operation": "PutObject",
     "bucket": "photos", "key": "a.jpg", "status": 200, "error_code": "", "bytes_in": 1234,
     "bytes_out": 0, "duration_ms": 3.2, "user_agent": "Boto3/..."}

Nothing secret is in a line: no header but the user agent, no query string (a presigned URL's
signature stays out), the access key id only (not a secret).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.engine.objectstore import ObjectStore
from s3gw.exchange import Exchange

from .journald import Journal

log = logging.getLogger("stowage.access")


def iso_ms(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def entry(ex: Exchange) -> dict[str, Any]:
    return {"time": iso_ms(ex.wall), "request_id": ex.request_id, "remote": ex.remote,
            "principal": ex.principal or "anonymous", "access_key": ex.access_key, "operation": ex.op,
            "bucket": ex.bucket, "key": ex.key, "status": ex.status, "error_code": ex.error_code,
            "bytes_in": ex.bytes_in, "bytes_out": ex.bytes_out, "duration_ms": round(ex.duration * 1000, 3),
            "user_agent": ex.user_agent}


def file_path(cfg: Config) -> Path:
    """Where the access log is written when its target is "file"."""
    return Path(cfg.access_log.path or os.path.join(cfg.state_dir, "log", "access.log"))


def _file_writer(path: Path, max_bytes: int, backups: int) -> Callable[[dict[str, Any]], None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))

    def write(doc: dict[str, Any]) -> None:
        line = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        old = os.umask(0o077)  # a rotated file is created 0600 too
        try:
            handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        finally:
            os.umask(old)

    return write


def _journal_writer() -> Callable[[dict[str, Any]], None]:
    journal = Journal()

    def write(doc: dict[str, Any]) -> None:
        fields = {"MESSAGE": f"{doc['operation']} {doc['bucket']}/{doc['key']} {doc['status']}",
                  "SYSLOG_IDENTIFIER": "stowage-access", "PRIORITY": "6"}
        fields.update({f"STOWAGE_{k.upper()}": str(v) for k, v in doc.items()})
        journal.send(fields)

    return write


class AccessLog:
    """An Observer of the S3 application."""

    def __init__(self, cfg: Config, store: ObjectStore) -> None:
        self.all = cfg.access_log.enabled
        self.store = store
        c = cfg.access_log
        self.path = file_path(cfg)
        self.write = _journal_writer() if c.target == "journal" else _file_writer(self.path, c.max_bytes, c.backups)

    def wanted(self, ex: Exchange) -> bool:
        if self.all:
            return True
        if not ex.bucket:
            return False
        rec = self.store.bucket_logging(ex.bucket)
        return rec is not None and rec.access_log

    def observe(self, ex: Exchange) -> None:
        if not self.wanted(ex):
            return
        try:
            self.write(entry(ex))
        except OSError as exc:  # a full log disk must not fail requests
            log.warning("access log write failed: %s", exc)

"""The audit log: one JSON line for every administrative change, whoever made it and however:
the CLI (through the control socket, or offline with the daemon stopped), the IAM API, S3
configuration requests (bucket settings), the console.

    {"time": "2026-12-02T12:00:00.123Z", "source": "cli" | "iam" | "s3" | "console" | "cli-offline",
     "who": "uid 0 (root)" | "arn:aws:iam::...:user/alice", "from": "127.0.0.1:53211" | "pid 123",
     "action": "user.add" | "iam:CreateUser" | "PutBucketVersioning", "target": "...",
     "outcome": "ok" | "<error code>", "before": {...} | null, "after": {...} | null}

Written to <state_dir>/log/audit.log (mode 0600, rotated) and, as one summary line without the
values, to the daemon log. Secrets never reach it: every value whose key names a secret
(secret, password, token, private key) is replaced by "[redacted]" before anything is written.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import pwd
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("stowage.audit")

REDACTED = "[redacted]"
_SECRET_WORDS = ("secret", "password", "passwd", "token", "private", "credential", "signature", "sessionkey")
MAX_BYTES = 64 << 20
BACKUPS = 10
# control-socket operations that only read
READ_ONLY_SUFFIXES = (".list", ".show", ".describe", ".status", ".counters", ".check", ".get")
READ_ONLY_OPS = frozenset({"status"})


def is_secret_name(name: str) -> bool:
    n = name.lower().replace("_", "").replace("-", "")
    return any(w in n for w in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like) with every secret-named field's value replaced."""
    if isinstance(value, Mapping):
        return {str(k): (REDACTED if is_secret_name(str(k)) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def is_change(op: str) -> bool:
    return op not in READ_ONLY_OPS and not op.endswith(READ_ONLY_SUFFIXES)


def describe_uid(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Only the fields that differ (both sides), so a bucket setting's entry shows that setting."""
    if before is None or after is None:
        return (dict(before) if before is not None else None), (dict(after) if after is not None else None)
    names = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in names}, {k: after.get(k) for k in names}


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(value: object) -> str:
    """`value` for the daemon log's summary line: what UTF-8 cannot carry and control characters
    (a NUL, a line break that would forge a second line) as escapes."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and _utf8(text):
        return text
    return "".join(c if c.isprintable() and _utf8(c) else c.encode("unicode_escape", "backslashreplace").decode()
                   for c in text)


@dataclass
class AuditLog:
    path: Path

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                             encoding="utf-8", delay=True)
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    @staticmethod
    def path_for(state_dir: str) -> Path:
        return Path(state_dir) / "log" / "audit.log"

    @classmethod
    def for_state_dir(cls, state_dir: str) -> AuditLog:
        return cls(cls.path_for(state_dir))

    def record(self, *, source: str, who: str, where: str, action: str, target: str = "", outcome: str = "ok",
               before: Any = None, after: Any = None) -> None:
        entry = {"time": _now(), "source": source, "who": who, "from": where, "action": action, "target": target,
                 "outcome": outcome, "before": redact(before), "after": redact(after)}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
        if not _utf8(line):  # a lone surrogate (from a JSON \ud800, a non-UTF-8 argv): escaped, never lost
            line = json.dumps(entry, ensure_ascii=True, separators=(",", ":"), default=str)
        old = os.umask(0o077)
        try:
            self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        finally:
            os.umask(old)
        log.info("audit: %s %s %s by %s from %s: %s", *(_printable(v) for v in (source, action, target, who, where,
                                                                                 outcome)))

    def close(self) -> None:
        self._handler.close()

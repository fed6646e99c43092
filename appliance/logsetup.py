"""Logging: human lines (time, level, logger) on a terminal or in a file; under systemd, native
journal entries with fields (PRIORITY, SYSLOG_IDENTIFIER, STOWAGE_LOGGER, CODE_FILE/LINE/FUNC,
THREAD_NAME; `journalctl -u stowage -o verbose` shows them, `STOWAGE_LOGGER=stowage.heal`
filters on them), falling back to stderr lines with an sd-daemon(3) "<N>" severity prefix when
the journal socket cannot be reached.

Every handler redacts what must never reach a log even by mistake: request signatures
(X-Amz-Signature=, Signature=) and anything after a "secret"/"password"/"token" key in key=value
or "key": "value" form.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from .journald import SOCKET, Journal

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_SECRETS = re.compile(
    r"((?:X-Amz-Signature|Signature)=)[^&\s\"']+"
    r"|((?:secret|password|token)[\w-]*\"?\s*[:=]\s*\"?)[^\s\"',}]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JournalFormatter(RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


class JournalHandler(logging.Handler):
    """A log record as one native journal entry with fields."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal
        self.setFormatter(RedactingFormatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.journal.send({
                "MESSAGE": self.format(record), "PRIORITY": str(_PRIORITY.get(record.levelno, 6)),
                "SYSLOG_IDENTIFIER": "stowage", "STOWAGE_LOGGER": record.name, "CODE_FILE": record.pathname,
                "CODE_LINE": str(record.lineno), "CODE_FUNC": record.funcName, "THREAD_NAME": record.threadName or "",
            })
        except OSError:
            self.handleError(record)


def under_systemd() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))


def setup_logging(level: str = "info") -> None:
    handler: logging.Handler
    if under_systemd() and os.path.exists(SOCKET):
        handler = JournalHandler(Journal())
    else:
        handler = logging.StreamHandler(sys.stderr)
        if under_systemd():
            handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
        else:
            handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

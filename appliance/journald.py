"""Structured entries to the systemd journal over its native socket (systemd.journal-fields(7),
the native protocol of sd_journal_send(3)), without a library: one datagram of FIELD=value lines;
a value with a newline is sent length-prefixed. Used for the daemon's log under systemd and for
the access log with access_log.target = "journal"."""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

SOCKET = "/run/systemd/journal/socket"


def _field(name: str, value: str) -> bytes:
    key = name.upper().encode()
    data = value.encode("utf-8", "replace")
    if b"\n" in data:
        return key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key + b"=" + data + b"\n"


def encode(fields: Mapping[str, str]) -> bytes:
    return b"".join(_field(k, v) for k, v in fields.items())


class Journal:
    def __init__(self, path: str = SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, fields: Mapping[str, str]) -> None:
        """Raises OSError when the journal cannot take it (not running, datagram too large)."""
        self.sock.sendto(encode(fields), self.path)

    def close(self) -> None:
        self.sock.close()

"""Console sessions: who is logged in, for how long, and the token their page must send.

A login yields two random secrets: the session id, which travels only in an HttpOnly cookie
(scripts cannot read it), and the request token, which the page keeps and sends in a header with
every API call (a cookie alone, which the browser attaches by itself, never suffices: that is
the CSRF defence, and it also keeps out other pages of this origin, which could otherwise use
the cookie; see docs/console.md). Neither is stored: the table keeps their SHA-256 digests, so
a dump of the daemon's memory or a log of the table does not hand out a live session.

Sessions live in the daemon's memory only (a restart logs everyone out), expire after IDLE
seconds without a request and ABSOLUTE seconds after login, and are re-checked against the
identities on every request: a key revoked or a user disabled ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

IDLE = 60 * 60.0
ABSOLUTE = 12 * 60 * 60.0
MAX_SESSIONS = 10_000


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass
class Session:
    access_key: str
    user: str  # for display: the principal's name as the identities report it
    token_digest: bytes
    created: float
    last_seen: float

    def expires_at(self) -> float:
        return min(self.last_seen + IDLE, self.created + ABSOLUTE)


@dataclass(frozen=True)
class NewSession:
    session_id: str  # for the cookie
    token: str  # for the page
    session: Session


class Sessions:
    def __init__(self) -> None:
        self._by_digest: dict[bytes, Session] = {}

    def create(self, access_key: str, user: str) -> NewSession:
        now = time.monotonic()
        self._sweep(now)
        if len(self._by_digest) >= MAX_SESSIONS:  # drop the oldest rather than refuse logins
            oldest = min(self._by_digest, key=lambda d: self._by_digest[d].last_seen)
            del self._by_digest[oldest]
        sid, token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        s = Session(access_key, user, _digest(token), now, now)
        self._by_digest[_digest(sid)] = s
        return NewSession(sid, token, s)

    def find(self, session_id: str, token: str | None) -> Session | None:
        """The live session of this cookie whose request token matches (None otherwise)."""
        if not session_id:
            return None
        key = _digest(session_id)
        s = self._by_digest.get(key)
        if s is None:
            return None
        now = time.monotonic()
        if now >= s.expires_at():
            del self._by_digest[key]
            return None
        if token is None or not hmac.compare_digest(s.token_digest, _digest(token)):
            return None
        s.last_seen = now
        return s

    def drop(self, session_id: str) -> None:
        self._by_digest.pop(_digest(session_id), None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, s in self._by_digest.items() if now >= s.expires_at()]:
            del self._by_digest[key]

    def __len__(self) -> int:
        return len(self._by_digest)

"""An access key's own limits (CredentialRecord format 3): a session policy that narrows what the
key may do to what both its user's policies and the session policy allow (as an AWS session
policy, or a MinIO service account's policy), and an expiry after which the key is refused with
ExpiredToken (identities.py). The rules for setting them, shared by `stowage key create` and the
MinIO import.
"""

from __future__ import annotations

import time

from .document import MAX_POLICY_BYTES, MalformedPolicy
from .errors import InvalidInput, LimitExceeded, MalformedPolicyDocument
from .policy import parse_policy

MAX_SESSION_POLICY_BYTES = MAX_POLICY_BYTES["identity"]
MAX_EXPIRES_NS = 253402300799 * 10**9  # 9999-12-31T23:59:59Z: beyond it the date cannot be printed


def check_session_policy(text: str) -> str:
    """The document, if it is a valid identity policy (no Principal: it applies to the key's
    requests); else MalformedPolicyDocument naming the problem, or LimitExceeded if too large."""
    if len(text.encode("utf-8", "replace")) > MAX_SESSION_POLICY_BYTES:
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MAX_SESSION_POLICY_BYTES}")
    try:
        parse_policy(text, "identity", name="session policy")
    except MalformedPolicy as exc:
        raise MalformedPolicyDocument(f"session policy: {exc.message}") from None
    return text


def check_expiry(expires_ns: object, *, future: bool) -> int:
    """A key's expiry in Unix ns (0: never). `future`: it must not have passed (a new key)."""
    if not isinstance(expires_ns, int) or isinstance(expires_ns, bool) or not 0 <= expires_ns <= MAX_EXPIRES_NS:
        raise InvalidInput("expires_ns: expected a time in Unix nanoseconds, or 0 for never")
    if future and expires_ns and expires_ns <= time.time_ns():
        raise InvalidInput("the expiry has passed already: give a time in the future")
    return expires_ns

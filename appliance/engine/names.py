"""Bucket-name and object-key rules (S3's, so every S3 client's names work here)."""

from __future__ import annotations

import ipaddress
import re

from .errors import InvalidBucketName, InvalidKey, KeyTooLong

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024


def check_bucket_name(name: str) -> None:
    """S3 general-purpose bucket naming rules."""
    reason = ""
    if not _BUCKET_RE.match(name):
        reason = "must be 3-63 characters of lowercase letters, digits, dots and hyphens, " \
                 "beginning and ending with a letter or digit"
    elif ".." in name or ".-" in name or "-." in name:
        reason = "must not contain two adjacent periods or a period next to a hyphen"
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")):
        reason = "uses a reserved prefix"
    elif name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        reason = "uses a reserved suffix"
    else:
        try:
            ipaddress.IPv4Address(name)
            reason = "must not be formatted as an IP address"
        except ValueError:
            pass
    if reason:
        raise InvalidBucketName(f"The specified bucket is not valid: {reason}", bucket=name)


def check_key(key: str) -> None:
    if not key:
        raise InvalidKey("object key must not be empty")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey("object key is not valid UTF-8") from exc
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLong(f"Your key is too long: {len(raw)} bytes (max {MAX_KEY_BYTES})")
    if "\x00" in key:
        raise InvalidKey("object key must not contain NUL")

"""Bucket-name and object-key rules (S3's, so every S3 client's names work here).

Keys: S3 allows 1,024 bytes; the store holds up to 4,095 (PATH_MAX less its NUL), so that every
path the mount can create is a key. Longer keys than S3's are created only by the mount
(`long_key=True` on the facade's writes); S3 requests may name, overwrite and delete them.
"""

from __future__ import annotations

import ipaddress
import re

from . import entropy
from .errors import InvalidBucketName, InvalidKey, KeyTooLong

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 4095  # what the store holds: a path of PATH_MAX (4096) bytes less its NUL
S3_MAX_KEY_BYTES = 1024  # what an S3 request may create


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


def check_key(key: str, limit: int = MAX_KEY_BYTES) -> None:
    if not key:
        raise InvalidKey("object key must not be empty")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey("object key is not valid UTF-8") from exc
    if len(raw) > limit:
        raise KeyTooLong(f"Your key is too long: {len(raw)} bytes (max {limit})")
    if "\x00" in key:
        raise InvalidKey("object key must not contain NUL")


def check_new_key(key: str, exists: bool, long_key: bool) -> None:
    """A write's key: S3's limit for a key it creates, the store's for the mount (`long_key`)
    and for overwriting a key that exists (one only the mount could have made)."""
    check_key(key, MAX_KEY_BYTES if long_key or exists else S3_MAX_KEY_BYTES)


def cli_safe_token(nbytes: int) -> str:
    """secrets.token_urlsafe(nbytes) that never begins with "-". Command-line clients read an
    argument that begins with one as an option (`aws s3api upload-part --upload-id -dU0…` fails
    with "expected one argument"), so 1 in 64 upload and version IDs and secret keys could not be
    passed the usual way. Redrawing keeps the rest of the alphabet uniform."""
    while True:
        token = entropy.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token

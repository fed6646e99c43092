"""POSIX attributes carried in S3 user metadata, and who may set them.

The mount keeps a file's `mode`, `uid` and `gid` in user metadata (x-amz-meta-mode/uid/gid, the
s3fs layout; rclone writes octal modes). They decide what local users may do with the file, so an
S3 request that sets them asks for local powers: the mount honours them only on versions marked
`posix_trusted`, which an S3 write gets when it carries none of them or when its principal is
allowed `stowage:PutPosixAttributes` on the object (the root user is). Times and `user.` extended
attributes grant nothing and are honoured from anyone. setuid/setgid bits are never taken from
S3: `without_setid` drops them from every S3 write, trusted or not.

Pure code, shared by the gateway (which decides) and the mount (which reads `mode`).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence

from .policy import AuthzRequest, Policy, Principal, authorize, s3_arn

PUT_POSIX_ATTRIBUTES = "stowage:PutPosixAttributes"
# The user-metadata entries that grant local powers (times and xattrs do not).
POSIX_KEYS = ("mode", "uid", "gid")
# Every st_mode file type: s3fs writes special files (FIFO, socket, device) as decimal st_modes too.
FILE_TYPES = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK)
SETID = stat.S_ISUID | stat.S_ISGID


def parse_mode(text: str | None) -> int | None:
    """s3fs's decimal st_mode ("33188") or rclone's octal ("100644", "0644"); None when absent or
    unparseable. A value is decimal when it is a valid 16-bit st_mode with a file type, else octal."""
    if not text:
        return None
    text = text.strip()
    try:
        dec = int(text, 10)
    except ValueError:
        dec = -1
    if 0 <= dec <= 0o177777 and stat.S_IFMT(dec) in FILE_TYPES and not text.startswith("0"):
        return dec
    if text and all(c in "01234567" for c in text):
        return int(text, 8)
    return dec & 0o7777 if dec >= 0 else None


def carries_posix(user_meta: Mapping[str, str]) -> bool:
    return any(k in user_meta for k in POSIX_KEYS)


def without_setid(user_meta: Mapping[str, str]) -> dict[str, str]:
    """user_meta with setuid/setgid cleared from `mode`, written back in the form it came in."""
    um = dict(user_meta)
    text = um.get("mode")
    mode = parse_mode(text)
    if text is None or mode is None or not mode & SETID:
        return um
    text = text.strip()
    cleared = mode & ~SETID
    um["mode"] = str(cleared) if text == str(mode) else format(cleared, f"0{len(text)}o")
    return um


def may_put_posix(principal: Principal, identity_policies: Sequence[Policy], bucket_policy: Policy | None,
                  bucket: str, key: str, context: Mapping[str, str | Sequence[str]]) -> bool:
    """Whether `principal` may set POSIX attributes on bucket/key (`stowage:PutPosixAttributes`)."""
    request = AuthzRequest(principal, PUT_POSIX_ATTRIBUTES, s3_arn(bucket, key), context)
    return authorize(request, identity_policies, bucket_policy).allowed

"""POSIX attributes kept as S3 user metadata, s3fs- and rclone-compatible.

Read: `mode` (s3fs: decimal st_mode, e.g. "33188"; rclone: octal, e.g. "100644" or "0644"),
`uid`, `gid`, `mtime`/`atime`/`ctime` (s3fs: integer seconds or "sec.nsec"; rclone: float
seconds). Write: mode in decimal with the file-type bits (what s3fs writes), times as
"sec" or "sec.nnnnnnnnn" (read by both s3fs >= 1.91 and rclone). Extended attributes live in
one `xattr` entry exactly as s3fs keeps them: URL-encoded JSON {name: base64(value)}.
Objects without these get defaults: 0644 files, 0755 directories, owner 0:0, mtime = the
version's last-modified time.
"""

from __future__ import annotations

import base64
import json
import stat
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import pyfuse3

from appliance.engine import ObjectVersion

FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755
LINK_MODE = stat.S_IFLNK | 0o777
TYPES = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK)
XATTR_KEY = "xattr"
XATTR_MAX_BYTES = 64 * 1024
BLOCK = 4096


@dataclass
class Posix:
    mode: int
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0


# A change of a node's attributes: edits its Posix and user metadata in place (chmod, xattrs, ...).
Mutate = Callable[[Posix, dict[str, str]], None]


def parse_mode(text: str | None) -> int | None:
    """s3fs decimal or rclone octal; None when absent or unparseable."""
    if not text:
        return None
    text = text.strip()
    try:
        dec = int(text, 10)
    except ValueError:
        dec = -1
    if 0 <= dec <= 0o177777 and stat.S_IFMT(dec) in TYPES and not text.startswith("0"):
        return dec
    if text and all(c in "01234567" for c in text):
        return int(text, 8)
    return dec & 0o7777 if dec >= 0 else None


def parse_time_ns(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip()
    try:
        if "." in text:
            sec, _, frac = text.partition(".")
            return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
        return int(text) * 1_000_000_000
    except ValueError:
        return None


def format_time(ns: int) -> str:
    sec, nsec = divmod(ns, 1_000_000_000)
    return f"{sec}.{nsec:09d}" if nsec else str(sec)


def parse_int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def posix_of(v: ObjectVersion | None, default_mode: int, default_ns: int) -> Posix:
    """Attributes of an object (file, symlink or directory marker)."""
    if v is None:
        return Posix(default_mode, 0, 0, default_ns, default_ns, default_ns)
    um = v.user_meta
    mode = parse_mode(um.get("mode"))
    if mode is None:
        mode = default_mode
    elif stat.S_IFMT(mode) not in TYPES:
        mode = stat.S_IFMT(default_mode) | (mode & 0o7777)
    mtime = parse_time_ns(um.get("mtime")) or v.last_modified_ns
    return Posix(
        mode=mode,
        uid=parse_int(um.get("uid")) or 0,
        gid=parse_int(um.get("gid")) or 0,
        mtime_ns=mtime,
        atime_ns=parse_time_ns(um.get("atime")) or mtime,
        ctime_ns=parse_time_ns(um.get("ctime")) or v.last_modified_ns,
    )


def meta_of(p: Posix, user_meta: dict[str, str] | None = None) -> dict[str, str]:
    um = dict(user_meta or {})
    # rclone's octal-mode writes are replaced by s3fs's decimal form on the first change
    um.update(mode=str(p.mode), uid=str(p.uid), gid=str(p.gid), mtime=format_time(p.mtime_ns),
              atime=format_time(p.atime_ns), ctime=format_time(p.ctime_ns))
    return um


def entry(ino: int, p: Posix, size: int, timeout: float) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = ino
    e.generation = 0
    e.entry_timeout = timeout
    e.attr_timeout = timeout
    e.st_mode = p.mode
    e.st_nlink = 1
    e.st_uid = p.uid
    e.st_gid = p.gid
    e.st_rdev = 0
    e.st_size = size
    e.st_blksize = BLOCK
    e.st_blocks = (size + 511) // 512
    e.st_atime_ns = p.atime_ns
    e.st_mtime_ns = p.mtime_ns
    e.st_ctime_ns = p.ctime_ns
    return e


def now_ns() -> int:
    return time.time_ns()


# --- extended attributes (s3fs format) ---------------------------------------------------------


def xattrs_of(user_meta: dict[str, str]) -> dict[str, bytes]:
    raw = user_meta.get(XATTR_KEY)
    if not raw:
        return {}
    try:
        decoded = json.loads(urllib.parse.unquote(raw))
        return {str(k): base64.b64decode(v) for k, v in decoded.items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def with_xattrs(user_meta: dict[str, str], xattrs: dict[str, bytes]) -> dict[str, str]:
    um = dict(user_meta)
    if not xattrs:
        um.pop(XATTR_KEY, None)
        return um
    body = json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(xattrs.items())},
                      separators=(",", ":"))
    um[XATTR_KEY] = urllib.parse.quote(body, safe="")
    return um

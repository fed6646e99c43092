"""POSIX attributes kept as S3 user metadata, s3fs- and rclone-compatible.

Read: `mode` (s3fs: decimal st_mode, e.g. "33188"; rclone: octal, e.g. "100644" or "0644"),
`uid`, `gid`, `mtime`/`atime`/`ctime` (s3fs: integer seconds or "sec.nsec"; rclone: float
seconds). Write: mode in decimal with the file-type bits (what s3fs writes), times as
"sec" or "sec.nnnnnnnnn" (read by both s3fs >= 1.91 and rclone). Special files (FIFOs, sockets,
devices) are zero-length objects whose `mode` has their type bits, as s3fs makes them; a
device's number is `rdev` (decimal st_rdev, as s3fs-c and s3backer write it). Extended attributes live in
one `xattr` entry exactly as s3fs keeps them: URL-encoded JSON {name: base64(value)}.
`mode`, `uid` and `gid` count only on versions whose `posix_trusted` is set (written by the
mount, or over S3 by a principal allowed stowage:PutPosixAttributes); whatever an object lacks
or may not set comes from the bucket's configured defaults (access.py), mtime from the
version's last-modified time.
"""

from __future__ import annotations

import base64
import functools
import json
import stat
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyfuse3

from appliance.engine import ObjectVersion, PosixEntry
from appliance.iam.posixattrs import parse_mode

from .access import Defaults

XATTR_KEY = "xattr"
XATTR_MAX_BYTES = 64 * 1024
# st_blksize, the preferred I/O size: cp, cat and Python's open() size their buffers by it. 1 MiB
# is the largest write the kernel sends the mount in one request; at 4 KiB, cp wrote in 128 KiB
# requests (1 GiB: 240 MiB/s and 5.1 s of daemon CPU, against ~330 MiB/s and 3.7 s at 1 MiB).
# NFS (wsize) and CephFS (object size) report theirs likewise.
BLOCK = 1 << 20
MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to chown
MAX_RDEV = 2**32 - 1  # FUSE carries a device number in 32 bits
MAX_TIME_NS = 2**63  # a timestamp in signed 64-bit nanoseconds (until 2262)


@dataclass(slots=True)  # many are kept (listcache.py)
class Posix:
    mode: int
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    rdev: int = 0  # character and block devices only


def is_device(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


# A version as far as its attributes go: whole, or as a directory listing decodes it
Version = ObjectVersion | PosixEntry

# A change of a node's attributes: edits its Posix and user metadata in place (chmod, xattrs, ...).
Mutate = Callable[[Posix, dict[str, str]], None]


def default_mode(ftype: int, d: Defaults) -> int:
    """The mode of a node of file type `ftype` that has none of its own."""
    if ftype == stat.S_IFDIR:
        return ftype | d.dir_perm
    if ftype == stat.S_IFLNK:
        return ftype | 0o777  # a symlink's permission bits are never checked
    return ftype | d.file_perm  # regular files and the special files a trusted mode made


# A directory's files mostly share a few modes and owners: their parses are memoized (pure
# functions of short strings), which a listing of many files feels.
_mode_of = functools.lru_cache(maxsize=1024)(parse_mode)


def trusted_mode(v: Version) -> int | None:
    """The mode the version's metadata sets, when it may set one."""
    return _mode_of(v.user_meta.get("mode")) if v.posix_trusted else None


def parse_time_ns(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip()
    try:
        if "." in text:
            sec, _, frac = text.partition(".")
            ns = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
        else:
            ns = int(text) * 1_000_000_000
    except ValueError:
        return None
    # what a kernel timestamp holds (any S3 writer sets these: one beyond made the whole
    # directory's listing fail with EIO, pyfuse3 raising OverflowError)
    return ns if -MAX_TIME_NS <= ns < MAX_TIME_NS else None


def format_time(ns: int) -> str:
    sec, nsec = divmod(ns, 1_000_000_000)
    return f"{sec}.{nsec:09d}" if nsec else str(sec)


@functools.lru_cache(maxsize=1024)
def parse_id(text: str | None, limit: int = MAX_ID) -> int | None:
    try:
        n = int(text) if text else None
    except ValueError:
        return None
    return n if n is not None and 0 <= n <= limit else None


def _or(value: int | None, default: int) -> int:
    """`value` unless it is missing: 0 (the epoch, device 0) is a value, not an absence."""
    return default if value is None else value


def posix_of(v: Version | None, ftype: int, d: Defaults, default_ns: int) -> Posix:
    """Attributes of a node of file type `ftype` whose object (file, symlink, special file or
    directory marker) is `v`; an implicit directory has none."""
    if v is None:
        return Posix(default_mode(ftype, d), d.uid, d.gid, default_ns, default_ns, default_ns)
    um = v.user_meta
    mode = uid = gid = None
    if v.posix_trusted:
        mode, uid, gid = _mode_of(um.get("mode")), parse_id(um.get("uid")), parse_id(um.get("gid"))
    mtime = _or(parse_time_ns(um.get("mtime")), v.last_modified_ns)
    return Posix(
        mode=default_mode(ftype, d) if mode is None else ftype | (mode & 0o7777),
        uid=d.uid if uid is None else uid,
        gid=d.gid if gid is None else gid,
        mtime_ns=mtime,
        atime_ns=_or(parse_time_ns(um.get("atime")), mtime),
        ctime_ns=_or(parse_time_ns(um.get("ctime")), v.last_modified_ns),
        rdev=_or(parse_id(um.get("rdev"), MAX_RDEV), 0) if is_device(ftype) else 0,
    )


def meta_of(p: Posix, user_meta: dict[str, str] | None = None) -> dict[str, str]:
    um = dict(user_meta or {})
    # rclone's octal-mode writes are replaced by s3fs's decimal form on the first change
    um.update(mode=str(p.mode), uid=str(p.uid), gid=str(p.gid), mtime=format_time(p.mtime_ns),
              atime=format_time(p.atime_ns), ctime=format_time(p.ctime_ns))
    if is_device(p.mode):
        um["rdev"] = str(p.rdev)
    else:
        um.pop("rdev", None)
    return um


def kill_privileges(p: Posix, *, outsider: bool, chown: bool = False) -> None:
    """What Linux does to a mode on a write or truncate of a regular file by a process without
    CAP_FSETID, and on any chown of a non-directory: setuid goes, and setgid when the group may
    execute or when the caller is an `outsider` (neither privileged nor in the file's group)."""
    if stat.S_ISDIR(p.mode) or not (chown or stat.S_ISREG(p.mode)):
        return
    p.mode &= ~stat.S_ISUID
    if p.mode & stat.S_IXGRP or outsider:
        p.mode &= ~stat.S_ISGID


class PosixView(Protocol):
    """What a reply's attributes are read from: a Posix, or a listed file (listcache.Listed)."""

    @property
    def mode(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def rdev(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...
    @property
    def atime_ns(self) -> int: ...
    @property
    def ctime_ns(self) -> int: ...


def entry(ino: int, p: PosixView, size: int, timeout: float, nlink: int = 1,
          attr_timeout: float | None = None) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = ino
    e.generation = 0
    e.entry_timeout = timeout
    e.attr_timeout = timeout if attr_timeout is None else attr_timeout
    e.st_mode = p.mode
    e.st_nlink = nlink
    e.st_uid = p.uid
    e.st_gid = p.gid
    e.st_rdev = p.rdev
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

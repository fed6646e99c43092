"""Key <-> path rules (fusefs/SEMANTICS.md is the prose version).

A node is (bucket, path): path is the object key of a file, or the key prefix of a directory
without its trailing "/" ("" for the bucket itself). A key is shown in the mount only if every
"/"-separated segment is a usable file name: not empty (no "//", no leading "/"), not "." or
"..", at most 255 bytes. Other keys stay reachable through S3 only.
"""

from __future__ import annotations

import errno

import pyfuse3

from appliance.engine import MAX_KEY_BYTES

NAME_MAX = 255


def decode_name(name: bytes) -> str:
    """A directory entry name from the kernel as a key segment (UTF-8 only)."""
    if len(name) > NAME_MAX:
        raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise pyfuse3.FUSEError(errno.EINVAL) from None  # keys are UTF-8; see SEMANTICS.md
    if not text or text in (".", "..") or "/" in text or "\x00" in text:
        raise pyfuse3.FUSEError(errno.EINVAL)
    return text


def join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def dir_prefix(path: str) -> str:
    """The key prefix of the directory at `path` ("" for a bucket root)."""
    return f"{path}/" if path else ""


def marker_key(path: str) -> str:
    """The s3fs-compatible directory marker object of a directory."""
    return f"{path}/"


def check_key_length(key: str, is_dir: bool = False) -> None:
    """Keys hold up to MAX_KEY_BYTES (4095: any path shorter than PATH_MAX fits); a directory's
    marker takes one byte more."""
    if len(key.encode()) + (1 if is_dir else 0) > MAX_KEY_BYTES:
        raise pyfuse3.FUSEError(errno.ENAMETOOLONG)


def segment_visible(seg: str) -> bool:
    return bool(seg) and seg not in (".", "..") and len(seg.encode()) <= NAME_MAX


def split(path: str) -> tuple[str, str]:
    """(parent path, last name)."""
    parent, _, name = path.rpartition("/")
    return parent, name

"""The configured defaults: the owner, group and permission bits the mount shows where S3 did not
(or was not allowed to) say, per bucket (`[mount]` and `[mount.buckets.NAME]` in the TOML).

User and group names are resolved once, when the mount starts; an unknown one stops the start
with a ConfigError naming the setting.
"""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass

from appliance.config import ConfigError, MountConfig, parse_perm


@dataclass(frozen=True)
class Defaults:
    uid: int
    gid: int
    file_perm: int
    dir_perm: int



def _uid(name: str, where: str) -> int:
    if name.isascii() and name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ConfigError(f"{where}: no such user {name!r}") from None


def _gid(name: str, where: str) -> int:
    if name.isascii() and name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(f"{where}: no such group {name!r}") from None


class BucketDefaults:
    """Defaults per bucket name: the bucket's own table over the mount-wide settings."""

    def __init__(self, mount: MountConfig) -> None:
        self.mount_wide = Defaults(_uid(mount.owner, "mount.owner"), _gid(mount.group, "mount.group"),
                                   parse_perm(mount.file_mode, "mount.file_mode"),
                                   parse_perm(mount.dir_mode, "mount.dir_mode"))
        self.buckets: dict[str, Defaults] = {}
        base = self.mount_wide
        for name, b in mount.buckets.items():
            where = f"mount.buckets.{name}"
            self.buckets[name] = Defaults(
                _uid(b.owner, f"{where}.owner") if b.owner else base.uid,
                _gid(b.group, f"{where}.group") if b.group else base.gid,
                parse_perm(b.file_mode, f"{where}.file_mode") if b.file_mode else base.file_perm,
                parse_perm(b.dir_mode, f"{where}.dir_mode") if b.dir_mode else base.dir_perm,
            )

    def of(self, bucket: str) -> Defaults:
        return self.buckets.get(bucket, self.mount_wide)

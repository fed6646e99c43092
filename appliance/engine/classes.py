"""Storage classes: each names a pool and an erasure-coding geometry (docs/storage-classes.md).

The built-in table gives AWS's class names a meaning on one box: STANDARD is the pool's own
geometry (4+2 on six disks), the infrequent-access classes a denser one on the same disks (5+1
on six), the archive classes the densest one in the `archive` pool (the default pool while no
disk is in an archive pool), REDUCED_REDUNDANCY one parity chunk fewer. The config may change
any of them and add class names of its own (as Ceph's placement targets do); any other name is
InvalidStorageClass.

A profile derives the geometry from the pool's (k, m) and its disk count n, so a pool that grows
gets wider archive stripes for new data without a config change:
    standard  (k, m)
    reduced   (k, max(1, m-1))            fewer parity chunks, never none while the pool has any
    dense     m' = max(1, m-1), k' = min(n - m', 2k)
    densest   m' = max(1, m-1), k' = min(n - m', 16)
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import Config, ConfigError, StorageClassConfig

from .codec import Geometry
from .errors import InvalidStorageClass

ARCHIVE_POOL = "archive"
MAX_DENSE_K = 16

BUILTIN: dict[str, StorageClassConfig] = {
    "STANDARD": StorageClassConfig("default", "standard"),
    "REDUCED_REDUNDANCY": StorageClassConfig("default", "reduced"),
    "STANDARD_IA": StorageClassConfig("default", "dense"),
    "ONEZONE_IA": StorageClassConfig("default", "dense"),
    "GLACIER_IR": StorageClassConfig("default", "dense"),
    "INTELLIGENT_TIERING": StorageClassConfig("default", "standard"),
    "GLACIER": StorageClassConfig(ARCHIVE_POOL, "densest"),
    "DEEP_ARCHIVE": StorageClassConfig(ARCHIVE_POOL, "densest"),
    # accepted as they always were (AWS names them; this box has no such hardware): STANDARD
    "OUTPOSTS": StorageClassConfig("default", "standard"),
    "SNOW": StorageClassConfig("default", "standard"),
    "EXPRESS_ONEZONE": StorageClassConfig("default", "standard"),
}
# Classes whose objects AWS reads only after a RestoreObject (not enforced yet: docs/lifecycle.md).
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclass(frozen=True, slots=True)
class Placement:
    """Where new data of a class goes: a pool and the geometry of its segments."""

    storage_class: str
    pool: str
    geometry: Geometry


def class_spec(cfg: Config, storage_class: str) -> StorageClassConfig:
    """The configured (or built-in) spec of a class; InvalidStorageClass for an unknown name."""
    given = cfg.storage_classes.get(storage_class)
    base = BUILTIN.get(storage_class)
    if given is None:
        if base is None:
            raise InvalidStorageClass(f"unknown storage class {storage_class!r}", storage_class=storage_class)
        return base
    spec = StorageClassConfig(pool=given) if isinstance(given, str) else given
    base = base or StorageClassConfig("default", "standard")
    # A pool named without a profile keeps the built-in profile, unless the pool has a fixed
    # geometry, which is then what the operator asked for.
    profile = spec.profile or base.profile
    if isinstance(given, str) and given in cfg.pools and cfg.pools[given].k:
        profile = "standard"
    return StorageClassConfig(spec.pool or base.pool, profile, spec.k, spec.m)


def known_classes(cfg: Config) -> list[str]:
    return sorted(set(BUILTIN) | set(cfg.storage_classes))


def profile_geometry(profile: str, n: int, k: int, m: int) -> tuple[int, int]:
    """(k, m) of a profile on a pool of n disks whose own geometry is k+m."""
    if profile in ("", "standard") or n <= 0:
        return k, m
    m2 = max(1, m - 1) if m else 0
    if profile == "reduced":
        return k, m2
    cap = 2 * k if profile == "dense" else MAX_DENSE_K
    return max(k, min(n - m2, cap)), m2


def resolve(cfg: Config, storage_class: str, pool_disks: dict[str, int], pool_geometry: dict[str, Geometry]
            ) -> Placement:
    """The placement of a class, given each pool's disk count and geometry. A class whose pool
    has no disks falls back to "default" (an `archive` pool is optional)."""
    spec = class_spec(cfg, storage_class)
    pool = spec.pool if pool_disks.get(spec.pool, 0) else "default"
    base = pool_geometry.get(pool) or Geometry(1, 0, 1 << 20)
    n = pool_disks.get(pool, 0)
    if spec.k:
        k, m = spec.k, spec.m
        if n and k + m > n:
            raise ConfigError(f"storage_classes.{storage_class}: geometry {k}+{m} needs {k + m} disks, "
                              f"pool {pool!r} has {n}")
    else:
        k, m = profile_geometry(spec.profile, n, base.k, base.m)
    return Placement(storage_class, pool, Geometry(k, m, base.block_size))

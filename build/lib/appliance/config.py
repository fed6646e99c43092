"""One TOML file, one typed, immutable Config.

`load_config(path)` reads /etc/stowage/stowage.toml (or --config); `embedded_config(dir)` is the
`--data DIR` shortcut: metadata under DIR/meta, six directory-backed disks under DIR/disks,
S3 on 127.0.0.1:9000, the mount at DIR/mnt when FUSE is usable. Validation raises ConfigError
with one line that names the offending setting.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from diskmgr.errors import StowageError

DEFAULT_CONFIG_PATH = Path("/etc/stowage/stowage.toml")
DEFAULT_STATE_DIR = Path("/var/lib/stowage")
DEFAULT_MASTER_KEY = Path("/etc/stowage/master.key")
EMBEDDED_DISKS = 6
MIB = 1 << 20
OBJECT_OWNERSHIP = ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced")


class ConfigError(StowageError):
    """The configuration is invalid."""

    code = "ConfigError"


@dataclass(frozen=True)
class PoolConfig:
    """A pool of data disks with its erasure-coding geometry (0 = adapt to the disk count)."""

    k: int = 0
    m: int = 0
    block_size: int = MIB


@dataclass(frozen=True)
class DiskConfig:
    """A data disk given statically (embedded mode, or directories in a config file)."""

    path: str = ""
    pool: str = "default"


@dataclass(frozen=True)
class S3Config:
    listen: str = "127.0.0.1:9000"
    domain: str = ""  # virtual-hosted-style base domain, e.g. "s3.local"
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    max_connections: int = 512
    # one client address may hold this many of them: a client trickling connections cannot take all
    max_connections_per_client: int = 128
    max_header_bytes: int = 64 * 1024  # the request line and all headers together
    header_timeout: float = 30.0  # seconds for a request's line and headers to arrive, all together
    request_timeout: float = 300.0  # seconds between two reads of a request body
    idle_timeout: float = 60.0  # keep-alive idle time before the connection is closed
    max_object_size: int = 5 * 1024**3  # the largest single PUT or part (AWS's 5 GiB)
    enabled: bool = True
    # What a new bucket starts with (docs/access-control.md). The defaults are what Ceph RGW and
    # AWS before April 2023 give (ACLs enabled, no public access block); "BucketOwnerEnforced"
    # and true are AWS's current defaults.
    default_object_ownership: str = "ObjectWriter"
    default_public_access_block: bool = False
    # The default encryption of a new bucket (docs/encryption.md): "AES256" (SSE-S3, what AWS
    # gives every bucket since January 2023) or "none". Also what DeleteBucketEncryption restores.
    default_bucket_encryption: str = "AES256"
    # Signature Version 2 (s3gw/sigv2.py) for the clients that still sign with it (presigned URLs
    # of boto3 and aws CLI v1, s3cmd signurl, older SDKs); false refuses it as a SigV4-only AWS
    # region does. SigV4 is what every client that can speak it uses either way.
    allow_sigv2: bool = True


@dataclass(frozen=True)
class MountBucketConfig:
    """[mount.buckets.NAME]: one bucket's defaults; "" = the mount-wide setting."""

    owner: str = ""
    group: str = ""
    file_mode: str = ""
    dir_mode: str = ""


@dataclass(frozen=True)
class MountConfig:
    enabled: str = "auto"  # "auto" | "yes" | "no"
    path: str = ""
    staging_dir: str = ""  # where open files are staged; default <meta>/staging
    allow_other: bool = True
    # What the mount shows for objects without trusted POSIX attributes, for implicit directories
    # and for bucket directories (fusefs/SEMANTICS.md): user and group names or numeric ids,
    # octal permission bits. Private to root unless opened deliberately.
    owner: str = "0"
    group: str = "0"
    file_mode: str = "0600"
    dir_mode: str = "0700"
    buckets: dict[str, MountBucketConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrubConfig:
    rate_bytes_per_sec: int = 64 * MIB
    interval_hours: float = 24.0 * 7
    enabled: bool = True


@dataclass(frozen=True)
class GcConfig:
    grace_seconds: float = 60.0  # readers in flight may still hold a replaced version
    interval_seconds: float = 5.0


@dataclass(frozen=True)
class SnapshotConfig:
    interval_seconds: float = 3600.0
    keep: int = 3


@dataclass(frozen=True)
class KmsConfig:
    # The appliance master key, which wraps every stored secret; kept apart from the data disks.
    # Default: <state_dir>/keys/master.key in the embedded mode, else /etc/stowage/master.key.
    master_key_file: str = ""


@dataclass(frozen=True)
class TlsConfig:
    """[tls]: HTTPS for the S3 gateway (appliance/tls.py). The certificate itself is s3.tls_cert
    and s3.tls_key; without them a self-signed one is generated under <state_dir>/tls."""

    # auto: HTTPS for the installed appliance (a config file that is not embedded) and for any
    # non-loopback listen address; plain HTTP for the embedded mode on loopback. on | off: always.
    mode: str = "auto"
    names: list[str] = field(default_factory=list)  # extra host names/addresses of the generated cert
    reload_interval: float = 10.0  # seconds between checks of the configured cert files for changes


@dataclass(frozen=True)
class Config:
    state_dir: str = str(DEFAULT_STATE_DIR)
    meta_dir: str = ""  # default <state_dir>/meta
    control_socket: str = ""  # default <state_dir>/control.sock
    embedded: bool = False
    credentials_file: str = ""  # embedded mode: generated root key lives here
    disks: list[DiskConfig] = field(default_factory=list)
    pools: dict[str, PoolConfig] = field(default_factory=lambda: {"default": PoolConfig()})
    # storage class (x-amz-storage-class) -> pool; classes not listed go to "default"
    storage_classes: dict[str, str] = field(default_factory=dict)
    s3: S3Config = field(default_factory=S3Config)
    mount: MountConfig = field(default_factory=MountConfig)
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    kms: KmsConfig = field(default_factory=KmsConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    log_level: str = "info"

    @property
    def meta_path(self) -> Path:
        return Path(self.meta_dir or os.path.join(self.state_dir, "meta"))

    @property
    def control_path(self) -> Path:
        return Path(self.control_socket or os.path.join(self.state_dir, "control.sock"))

    @property
    def master_key_path(self) -> Path:
        if self.kms.master_key_file:
            return Path(self.kms.master_key_file)
        return Path(self.state_dir) / "keys" / "master.key" if self.embedded else DEFAULT_MASTER_KEY

    @property
    def staging_path(self) -> Path:
        return Path(self.mount.staging_dir or os.path.join(self.meta_path, "staging"))

    @property
    def disks_dir(self) -> Path:
        """Where managed disks are mounted (and embedded disks live)."""
        return Path(self.state_dir) / "disks"


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a TOML table, type-checking every field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            raise ConfigError(f"{where + '.' if where else ''}{name}: unknown setting")
        values[name] = _convert(cls, name, value, f"{where + '.' if where else ''}{name}")
    return cls(**values)


def _convert(cls: type, name: str, value: Any, where: str) -> Any:
    default = cls()
    current = getattr(default, name)
    if is_dataclass(current):
        return _build(type(current), value, where)
    if name == "pools":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of pools")
        return {pname: _build(PoolConfig, p, f"{where}.{pname}") for pname, p in value.items()}
    if cls is MountConfig and name == "buckets":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of buckets")
        return {bname: _build(MountBucketConfig, b, f"{where}.{bname}") for bname, b in value.items()}
    if name == "storage_classes":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where}: expected a table of CLASS = \"pool\"")
        return dict(value)
    if name == "disks":
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected an array of tables")
        return [_build(DiskConfig, d, f"{where}[{i}]") for i, d in enumerate(value)]
    if cls is TlsConfig and name == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: expected an array of host names or addresses")
        return list(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(current, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(current, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ConfigError(f"s3.listen: expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def validate(cfg: Config) -> Config:
    if not cfg.state_dir:
        raise ConfigError("state_dir: must not be empty")
    parse_listen(cfg.s3.listen)
    if cfg.mount.enabled not in ("auto", "yes", "no"):
        raise ConfigError(f"mount.enabled: expected auto, yes or no, got {cfg.mount.enabled!r}")
    _validate_mount_access(cfg.mount)
    if cfg.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level: expected debug, info, warning or error, got {cfg.log_level!r}")
    if bool(cfg.s3.tls_cert) != bool(cfg.s3.tls_key):
        raise ConfigError("s3.tls_cert and s3.tls_key must be given together")
    if cfg.tls.mode not in ("auto", "on", "off"):
        raise ConfigError(f"tls.mode: expected auto, on or off, got {cfg.tls.mode!r}")
    if cfg.tls.reload_interval <= 0:
        raise ConfigError("tls.reload_interval: must be positive")
    if bool(cfg.s3.access_key) != bool(cfg.s3.secret_key):
        raise ConfigError("s3.access_key and s3.secret_key must be given together")
    for name, pool in cfg.pools.items():
        if pool.k < 0 or pool.m < 0:
            raise ConfigError(f"pools.{name}: k and m must not be negative")
        if pool.k > 0 and pool.k + pool.m > 32:
            raise ConfigError(f"pools.{name}: k+m must be at most 32")
        if pool.block_size < 4096 or pool.block_size > 64 * MIB or pool.block_size % 4096:
            raise ConfigError(f"pools.{name}.block_size: must be a multiple of 4096 between 4 KiB and 64 MiB")
    for sc, pool_name in cfg.storage_classes.items():
        if pool_name not in cfg.pools:
            raise ConfigError(f"storage_classes.{sc}: unknown pool {pool_name!r}")
    for i, disk in enumerate(cfg.disks):
        if not disk.path:
            raise ConfigError(f"disks[{i}].path: must not be empty")
        if disk.pool not in cfg.pools:
            raise ConfigError(f"disks[{i}].pool: unknown pool {disk.pool!r}")
    for name in ("max_connections", "max_connections_per_client", "max_header_bytes", "max_object_size",
                 "header_timeout", "request_timeout", "idle_timeout"):
        if getattr(cfg.s3, name) <= 0:
            raise ConfigError(f"s3.{name}: must be positive")
    if cfg.scrub.rate_bytes_per_sec <= 0:
        raise ConfigError("scrub.rate_bytes_per_sec: must be positive")
    if cfg.s3.default_object_ownership not in OBJECT_OWNERSHIP:
        raise ConfigError(f"s3.default_object_ownership: expected {', '.join(OBJECT_OWNERSHIP)}, "
                          f"got {cfg.s3.default_object_ownership!r}")
    if cfg.s3.default_bucket_encryption not in ("AES256", "none"):
        raise ConfigError(f"s3.default_bucket_encryption: expected AES256 or none, "
                          f"got {cfg.s3.default_bucket_encryption!r}")
    return cfg


def parse_perm(text: str, where: str) -> int:
    """Octal permission bits ("0640"); setuid and setgid are refused (the mount never shows them
    on what it did not create)."""
    try:
        perm = int(text, 8)
    except ValueError:
        raise ConfigError(f"{where}: expected octal permission bits such as \"0640\", got {text!r}") from None
    if not 0 <= perm <= 0o1777:
        raise ConfigError(f"{where}: expected permission bits between 0000 and 1777 (no setuid/setgid), "
                          f"got {text!r}")
    return perm


def _validate_mount_access(mount: MountConfig) -> None:
    tables: list[tuple[str, MountConfig | MountBucketConfig]] = [("mount", mount)]
    tables += [(f"mount.buckets.{name}", b) for name, b in mount.buckets.items()]
    for where, t in tables:
        for name in ("file_mode", "dir_mode"):
            if getattr(t, name) or t is mount:
                parse_perm(getattr(t, name), f"{where}.{name}")
        for name in ("owner", "group"):
            if t is mount and not getattr(t, name):
                raise ConfigError(f"{where}.{name}: must not be empty (a name or a numeric id)")


def load_config(path: Path) -> Config:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file (give --config FILE or --data DIR)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    try:
        return validate(_build(Config, raw, ""))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc


def fuse_usable() -> bool:
    return os.path.exists("/dev/fuse") and os.access("/dev/fuse", os.R_OK | os.W_OK)


def embedded_config(data_dir: Path, base: Config | None = None) -> Config:
    """The `--data DIR` appliance: everything under one directory, six disks, local S3."""
    cfg = base or Config()
    root = data_dir.resolve()
    disks = cfg.disks or [DiskConfig(path=str(root / "disks" / f"disk{i}")) for i in range(EMBEDDED_DISKS)]
    mount = cfg.mount if cfg.mount.path else replace(cfg.mount, path=str(root / "mnt"))
    return validate(replace(cfg, state_dir=str(root), meta_dir=str(root / "meta"), embedded=True,
                            credentials_file=str(root / "credentials.toml"), disks=disks, mount=mount))

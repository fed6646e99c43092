"""One TOML file, one typed, immutable Config.

`load_config(path)` reads /etc/stowage/stowage.toml (or --config); `embedded_config(dir)` is the
`--data DIR` shortcut: metadata under DIR/meta, six directory-backed disks under DIR/disks,
S3 on 127.0.0.1:9000, the mount at DIR/mnt when FUSE is usable. Validation raises ConfigError
with one line that names the offending setting.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    # spin the pool's disks down after this long idle (`hdparm -S`; real block devices only,
    # directory and loop disks skip it); SMART polling, scrubbing and placement then leave
    # sleeping disks asleep (docs/storage-classes.md). 0 = never.
    spin_down_seconds: int = 0


@dataclass(frozen=True)
class StorageClassConfig:
    """[storage_classes.NAME]: where a storage class is stored (docs/storage-classes.md).
    "" / 0 = the built-in default of an AWS class name (standard profile in "default" for others);
    k > 0 gives the geometry outright, else `profile` derives it from the pool's disk count."""

    pool: str = ""
    profile: str = ""  # "standard" | "dense" | "densest" | "reduced"
    k: int = 0
    m: int = 0


CLASS_PROFILES = ("standard", "dense", "densest", "reduced")


@dataclass(frozen=True)
class LifecycleConfig:
    """The lifecycle worker (docs/lifecycle.md)."""

    enabled: bool = True
    interval_seconds: float = 3600.0  # between passes over the buckets with lifecycle rules
    # One lifecycle "day" lasts this many seconds instead of 86400 (Ceph's rgw_lc_debug_interval),
    # and passes run every quarter of such a day: for tests and demonstrations only. 0 = off.
    debug_day_seconds: float = 0.0
    max_actions_per_second: float = 500.0  # expirations and aborts, all buckets together
    transition_bytes_per_second: int = 128 * MIB  # data re-encoded by transitions and restores
    # A restore is never finished sooner than this after it was asked (tests and demonstrations
    # of the x-amz-restore states; AWS takes minutes to hours).
    restore_min_seconds: float = 0.0


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
    # close(2) makes a file visible at once; it is durable at fsync(2) or within this many
    # seconds (fusefs/SEMANTICS.md, "Durability")
    durability_seconds: float = 1.0


@dataclass(frozen=True)
class ScrubConfig:
    rate_bytes_per_sec: int = 64 * MIB
    interval_hours: float = 24.0 * 7
    enabled: bool = True


@dataclass(frozen=True)
class RebalanceConfig:
    """Moving existing shards onto disks added to a pool (docs/storage-classes.md)."""

    enabled: bool = True
    rate_bytes_per_sec: int = 32 * MIB  # shard bytes read and written by the moves
    # balanced: every disk within this fraction of the mean share (and at least one shard) of its share
    tolerance: float = 0.05
    # a pool is measured once its set of disks has not changed for this long after a disk joined
    # (an operator adding several disks one after another gets one rebalance)
    settle_seconds: float = 30.0


@dataclass(frozen=True)
class GcConfig:
    grace_seconds: float = 60.0  # readers in flight may still hold a replaced version
    interval_seconds: float = 5.0


@dataclass(frozen=True)
class StallConfig:
    """A data disk that leaves an operation unanswered this long is stalled: a write goes on
    with the other shards (never fewer than k+1), the disk monitor shows the disk offline, and
    reads go around it (docs/fault-matrix.md)."""

    seconds: float = 10.0


@dataclass(frozen=True)
class VolumesConfig:
    """Small shards packed into per-disk volume files (engine/volumes.py): an object
    (encrypted or not) of at most `pack_bytes` is appended to volumes, group-synced, instead of one file
    per shard (0: every shard a file). A volume is closed at `volume_bytes`; the garbage
    collector compacts closed volumes once `compact_dead_ratio` of their bytes are dead."""

    pack_bytes: int = 1 << 20
    volume_bytes: int = 256 << 20
    compact_dead_ratio: float = 0.5


@dataclass(frozen=True)
class MemoryConfig:
    """What all large streams together may hold in flight (engine/budget.py): uploads their
    queued and encoded blocks (`write_buffer_bytes`; a write waits for its share), downloads
    their batches (`read_buffer_bytes`; a read without a share takes smaller batches, down to a
    block at a time). More streams share these instead of each adding its own ~20-35 MiB to the
    daemon's memory."""

    write_buffer_bytes: int = 64 << 20
    read_buffer_bytes: int = 128 << 20


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
class AdminConfig:
    """The appliance's own endpoints (/_stowage/v1/...): metrics and health."""

    # A second listen address (HOST:PORT) serving only /_stowage/v1/ paths; "" = the S3 port only.
    listen: str = ""
    # /_stowage/v1/metrics without a bearer token (`stowage metrics-token`) or a signed request.
    metrics_public: bool = False


@dataclass(frozen=True)
class AccessLogConfig:
    """The structured access log (JSON lines, one per S3 or IAM request)."""

    enabled: bool = False  # for every bucket; `stowage access-log enable BUCKET` turns it on per bucket
    target: str = "file"  # "file" (path, rotated) or "journal"
    path: str = ""  # default <state_dir>/log/access.log
    max_bytes: int = 64 * MIB  # rotate past this size
    backups: int = 5  # rotated files kept
    # S3 server access logging (PutBucketLogging): how often log objects are delivered
    delivery_interval_seconds: float = 300.0


@dataclass(frozen=True)
class AlertsConfig:
    """Alerts to a webhook and by email, each once when it fires and once when it clears."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""  # its password is set with `stowage alerts smtp-password` (kept wrapped)
    smtp_from: str = ""
    smtp_to: list[str] = field(default_factory=list)
    interval_seconds: float = 30.0  # how often conditions are evaluated
    pool_full_percent: float = 85.0
    heal_backlog: int = 1000  # segments waiting for repair
    replication_backlog: int = 10000  # versions waiting to be replicated (all targets)


@dataclass(frozen=True)
class DurabilityConfig:
    """The inputs of `stowage durability` (docs/durability.md) that the box cannot measure."""

    afr_percent: float = 1.5  # annual failure rate of a healthy disk
    # rebuild speed when no heal history exists yet, bytes per second
    rebuild_bytes_per_sec: int = 100 * MIB
    replication_sites: int = 0  # independent copies elsewhere (a replication target)


@dataclass(frozen=True)
class NotifyTargetConfig:
    """A bucket-notification target (docs/notifications.md): type "webhook" (POST to `url`, with
    `auth_header` as its Authorization header when set, TLS verified unless tls_verify is false,
    against `ca_file` when given) or "file" (JSON lines appended to `path`)."""

    type: str = "webhook"
    url: str = ""
    auth_header: str = ""
    tls_verify: bool = True
    ca_file: str = ""
    path: str = ""


@dataclass(frozen=True)
class NotifyConfig:
    # events kept per target while it fails; past it writes still succeed and the events that do
    # not fit are counted and logged ("count"), or writes fail with 503 SlowDown ("slowdown")
    queue_limit: int = 100_000
    overflow: str = "count"
    retry_max_seconds: float = 60.0  # the longest wait between two delivery attempts
    timeout_seconds: float = 10.0  # one webhook request
    targets: dict[str, NotifyTargetConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicationConfig:
    """Bucket replication (docs/replication.md); targets are added with `stowage replication target add`."""

    workers: int = 4  # versions replicated at once
    multipart_threshold: int = 64 * MIB  # larger objects are sent as multipart uploads
    part_size: int = 16 * MIB  # ... of this part size (memory per worker: one part)
    retry_max_seconds: float = 60.0
    queue_limit: int = 1_000_000  # versions waiting per target; past it, counted and marked FAILED


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
class AcmeConfig:
    """[acme]: the certificate of [tls] mode = "acme", from an ACME CA by HTTP-01
    (appliance/acmecert.py), for a box whose public names resolve to it."""

    directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    email: str = ""  # the account's contact (optional)
    names: list[str] = field(default_factory=list)  # the public DNS names of the certificate (required)
    http_listen: str = "0.0.0.0:80"  # where /.well-known/acme-challenge/ is answered (the CA connects to :80)
    ca_bundle: str = ""  # CA certificates for the directory's HTTPS (a private ACME CA); default: the system's
    renew_days: int = 30  # renew when the certificate has fewer days left
    check_interval: float = 3600.0  # seconds between checks of the certificate's end
    retry_interval: float = 600.0  # seconds before a failed order is tried again


@dataclass(frozen=True)
class Config:
    state_dir: str = str(DEFAULT_STATE_DIR)
    meta_dir: str = ""  # default <state_dir>/meta
    control_socket: str = ""  # default <state_dir>/control.sock
    embedded: bool = False
    credentials_file: str = ""  # embedded mode: generated root key lives here
    disks: list[DiskConfig] = field(default_factory=list)
    pools: dict[str, PoolConfig] = field(default_factory=lambda: {"default": PoolConfig()})
    # storage class (x-amz-storage-class) -> pool name, or its full placement (engine/classes.py
    # has the built-in defaults of AWS's class names)
    storage_classes: dict[str, str | StorageClassConfig] = field(default_factory=dict)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    s3: S3Config = field(default_factory=S3Config)
    mount: MountConfig = field(default_factory=MountConfig)
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    rebalance: RebalanceConfig = field(default_factory=RebalanceConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    stall: StallConfig = field(default_factory=StallConfig)
    volumes: VolumesConfig = field(default_factory=VolumesConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    kms: KmsConfig = field(default_factory=KmsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    access_log: AccessLogConfig = field(default_factory=AccessLogConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    durability: DurabilityConfig = field(default_factory=DurabilityConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    replication: ReplicationConfig = field(default_factory=ReplicationConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    acme: AcmeConfig = field(default_factory=AcmeConfig)
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
    if cls is NotifyConfig and name == "targets":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of targets")
        return {tname: _build(NotifyTargetConfig, t, f"{where}.{tname}") for tname, t in value.items()}
    if name == "storage_classes":
        if not isinstance(value, dict) or not all(isinstance(v, str | dict) for v in value.values()):
            raise ConfigError(f"{where}: expected a table of CLASS = \"pool\" or [storage_classes.CLASS] tables")
        return {sc: v if isinstance(v, str) else _build(StorageClassConfig, v, f"{where}.{sc}")
                for sc, v in value.items()}
    if cls is AlertsConfig and name == "smtp_to":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected an array of addresses")
        return list(value)
    if name == "disks":
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected an array of tables")
        return [_build(DiskConfig, d, f"{where}[{i}]") for i, d in enumerate(value)]
    if cls in (TlsConfig, AcmeConfig) and name == "names":
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
        if "\x00" in value:  # no path, name or URL holds one; os calls refuse it with a ValueError
            raise ConfigError(f"{where}: must not contain a NUL character")
        return value
    return value


def parse_listen(listen: str, where: str = "s3.listen") -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not (0 <= int(port) <= 65535):
        raise ConfigError(f"{where}: expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _validate_acme(cfg: Config) -> None:
    if cfg.s3.tls_cert:
        raise ConfigError("tls.mode = \"acme\" obtains the certificate itself: remove s3.tls_cert/s3.tls_key")
    if not cfg.acme.names:
        raise ConfigError("acme.names: the public DNS names of the certificate are required with tls.mode = \"acme\"")
    if not cfg.acme.directory.startswith("https://"):
        raise ConfigError("acme.directory: expected an https:// URL")
    parse_listen(cfg.acme.http_listen, "acme.http_listen")
    if cfg.acme.renew_days < 1 or cfg.acme.check_interval <= 0 or cfg.acme.retry_interval <= 0:
        raise ConfigError("acme: renew_days, check_interval and retry_interval must be positive")


NO_DEFAULT_ENCRYPTION = "none"  # [s3] default_bucket_encryption: new buckets get no default encryption


def default_bucket_encryption(cfg: Config) -> dict[str, str] | None:
    """BucketRecord.encryption of a new bucket ([s3] default_bucket_encryption): made by the
    gateway, the mount's mkdir, and recover-metadata for a bucket rebuilt from shard headers."""
    algorithm = cfg.s3.default_bucket_encryption
    return None if algorithm == NO_DEFAULT_ENCRYPTION else {"algorithm": algorithm}


def validate(cfg: Config) -> Config:
    if not cfg.state_dir:
        raise ConfigError("state_dir: must not be empty")
    parse_listen(cfg.s3.listen)
    if cfg.mount.enabled not in ("auto", "yes", "no"):
        raise ConfigError(f"mount.enabled: expected auto, yes or no, got {cfg.mount.enabled!r}")
    _validate_mount_access(cfg.mount)
    if not 0 < cfg.stall.seconds <= 600:
        raise ConfigError("stall.seconds: must be more than 0 and at most 600")
    for name in ("write_buffer_bytes", "read_buffer_bytes"):
        if not 8 << 20 <= getattr(cfg.memory, name) <= 64 << 30:
            raise ConfigError(f"memory.{name}: must be between 8 MiB and 64 GiB")
    if not 0 <= cfg.volumes.pack_bytes <= 64 << 20:
        raise ConfigError("volumes.pack_bytes: must be between 0 and 67108864")
    if not 1 << 20 <= cfg.volumes.volume_bytes <= 16 << 30:
        raise ConfigError("volumes.volume_bytes: must be between 1 MiB and 16 GiB")
    if not 0 < cfg.volumes.compact_dead_ratio <= 1:
        raise ConfigError("volumes.compact_dead_ratio: must be more than 0 and at most 1")
    if cfg.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level: expected debug, info, warning or error, got {cfg.log_level!r}")
    if bool(cfg.s3.tls_cert) != bool(cfg.s3.tls_key):
        raise ConfigError("s3.tls_cert and s3.tls_key must be given together")
    if cfg.tls.mode not in ("auto", "on", "off", "acme"):
        raise ConfigError(f"tls.mode: expected auto, on, off or acme, got {cfg.tls.mode!r}")
    if cfg.tls.mode == "acme":
        _validate_acme(cfg)
    if cfg.tls.reload_interval <= 0:
        raise ConfigError("tls.reload_interval: must be positive")
    if bool(cfg.s3.access_key) != bool(cfg.s3.secret_key):
        raise ConfigError("s3.access_key and s3.secret_key must be given together")
    for name, pool in cfg.pools.items():
        if pool.spin_down_seconds < 0:
            raise ConfigError(f"pools.{name}: spin_down_seconds must not be negative")
        if pool.k < 0 or pool.m < 0:
            raise ConfigError(f"pools.{name}: k and m must not be negative")
        if pool.k > 0 and pool.k + pool.m > 32:
            raise ConfigError(f"pools.{name}: k+m must be at most 32")
        if pool.block_size < 4096 or pool.block_size > 64 * MIB or pool.block_size % 4096:
            raise ConfigError(f"pools.{name}.block_size: must be a multiple of 4096 between 4 KiB and 64 MiB")
    _validate_classes(cfg)
    if cfg.rebalance.rate_bytes_per_sec <= 0 or cfg.rebalance.settle_seconds < 0 \
            or not 0 < cfg.rebalance.tolerance < 1:
        raise ConfigError("rebalance: rate must be positive, settle_seconds not negative, tolerance between 0 "
                          "and 1")
    if cfg.lifecycle.debug_day_seconds < 0 or cfg.lifecycle.interval_seconds <= 0 \
            or cfg.lifecycle.max_actions_per_second <= 0 or cfg.lifecycle.transition_bytes_per_second <= 0:
        raise ConfigError("lifecycle: rates and intervals must be positive (debug_day_seconds 0 = off)")
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
    if cfg.s3.default_bucket_encryption not in ("AES256", NO_DEFAULT_ENCRYPTION):
        raise ConfigError(f"s3.default_bucket_encryption: expected AES256 or none, "
                          f"got {cfg.s3.default_bucket_encryption!r}")
    _validate_intervals(cfg)
    _validate_operator(cfg)
    _validate_events(cfg)
    _validate_header_values(cfg)
    _validate_finite(cfg, "")  # last: a range check above names its range (`not 0 < nan` holds)
    return cfg


def _validate_finite(value: Any, where: str) -> None:
    """Every float setting, in every section, table and array, is a finite number: TOML has nan
    and inf, and `nan <= 0` is False, so a range check alone lets nan by to the services."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    elif is_dataclass(value):
        for f in fields(value):
            _validate_finite(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)
    elif isinstance(value, dict):
        for key, item in value.items():
            _validate_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _validate_finite(item, f"{where}[{i}]")


def _validate_intervals(cfg: Config) -> None:
    """The periods and timeouts the services sleep or wait on (a negative one makes trio.sleep
    raise; 0 would spin). nan and inf are left to _validate_finite."""
    positive = {"gc.interval_seconds": cfg.gc.interval_seconds,
                "snapshot.interval_seconds": cfg.snapshot.interval_seconds,
                "scrub.interval_hours": cfg.scrub.interval_hours,
                "notify.retry_max_seconds": cfg.notify.retry_max_seconds,
                "notify.timeout_seconds": cfg.notify.timeout_seconds,
                "replication.retry_max_seconds": cfg.replication.retry_max_seconds}
    for where, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{where}: must be positive")
    not_negative = {"gc.grace_seconds": cfg.gc.grace_seconds,
                    "lifecycle.restore_min_seconds": cfg.lifecycle.restore_min_seconds}
    for where, value in not_negative.items():
        if value < 0:
            raise ConfigError(f"{where}: must not be negative")


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def header_value_ok(value: str) -> bool:
    """A value sent as an HTTP header (an Authorization header, say): printable ASCII only, since
    http.client refuses a line break or control character at every request and encodes latin-1."""
    return value.isascii() and value.isprintable()


def url_parses(url: str) -> bool:
    """A URL a request can be sent to: a host, a valid port, no whitespace or control character."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError when out of range or not a number)
    except ValueError:
        return False
    return bool(parts.hostname)


def _validate_header_values(cfg: Config) -> None:
    """Settings that end up in an HTTP request or response line or header (or a mail header):
    a CR or LF would split it, and http.client refuses any control character with a ValueError
    at the first request (the notify worker, the alerts sender), so they are refused here."""
    texts: dict[str, str] = {"s3.region": cfg.s3.region, "s3.domain": cfg.s3.domain,
                             "alerts.webhook_url": cfg.alerts.webhook_url, "alerts.smtp_from": cfg.alerts.smtp_from,
                             "acme.directory": cfg.acme.directory, "acme.email": cfg.acme.email}
    texts.update({f"alerts.smtp_to[{i}]": v for i, v in enumerate(cfg.alerts.smtp_to)})
    for name, t in cfg.notify.targets.items():
        texts[f"notify.targets.{name}.url"] = t.url
        texts[f"notify.targets.{name}.auth_header"] = t.auth_header
    for where, value in texts.items():
        if _has_control(value):
            raise ConfigError(f"{where}: must not contain control characters (CR, LF, tab, ...)")
    for name, t in cfg.notify.targets.items():
        if not header_value_ok(t.auth_header):
            raise ConfigError(f"notify.targets.{name}.auth_header: must be ASCII text")
    if not cfg.s3.region.isascii():
        raise ConfigError("s3.region: must be ASCII text")


def _validate_operator(cfg: Config) -> None:
    if cfg.admin.listen:
        parse_listen(cfg.admin.listen, "admin.listen")
    if cfg.access_log.target not in ("file", "journal"):
        raise ConfigError(f"access_log.target: expected file or journal, got {cfg.access_log.target!r}")
    if cfg.access_log.max_bytes <= 0 or cfg.access_log.backups < 0:
        raise ConfigError("access_log.max_bytes must be positive and access_log.backups not negative")
    if cfg.access_log.delivery_interval_seconds <= 0:
        raise ConfigError("access_log.delivery_interval_seconds: must be positive")
    a = cfg.alerts
    if a.webhook_url and not a.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"alerts.webhook_url: expected an http:// or https:// URL, got {a.webhook_url!r}")
    if a.smtp_host and (not a.smtp_from or not a.smtp_to):
        raise ConfigError("alerts.smtp_host needs alerts.smtp_from and alerts.smtp_to")
    if not 0 < a.pool_full_percent <= 100 or a.interval_seconds <= 0 or min(a.heal_backlog, a.replication_backlog) < 0:
        raise ConfigError("alerts: pool_full_percent in (0, 100], interval_seconds positive, heal_backlog and "
                          "replication_backlog >= 0")
    d = cfg.durability
    if not 0 < d.afr_percent < 100 or d.rebuild_bytes_per_sec <= 0 or d.replication_sites < 0:
        raise ConfigError("durability: afr_percent in (0, 100), rebuild_bytes_per_sec positive, "
                          "replication_sites >= 0")


def _validate_events(cfg: Config) -> None:
    if cfg.notify.overflow not in ("count", "slowdown"):
        raise ConfigError(f"notify.overflow: expected count or slowdown, got {cfg.notify.overflow!r}")
    if cfg.notify.queue_limit <= 0 or cfg.replication.queue_limit <= 0:
        raise ConfigError("notify.queue_limit and replication.queue_limit must be positive")
    for name, t in cfg.notify.targets.items():
        where = f"notify.targets.{name}"
        if not name or "\x00" in name or ":" in name:
            raise ConfigError(f"{where}: a target name must be non-empty, without ':' or NUL")
        if t.type == "webhook" and not t.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: expected an http:// or https:// URL")
        if t.type == "file" and not t.path:
            raise ConfigError(f"{where}.path: must not be empty")
        if t.type not in ("webhook", "file"):
            raise ConfigError(f"{where}.type: expected webhook or file, got {t.type!r}")
    r = cfg.replication
    if r.workers <= 0 or r.part_size < 5 * MIB or r.multipart_threshold < r.part_size:
        raise ConfigError("replication: workers must be positive, part_size at least 5 MiB and "
                          "multipart_threshold at least part_size")


def _validate_classes(cfg: Config) -> None:
    for sc, spec in cfg.storage_classes.items():
        where = f"storage_classes.{sc}"
        if not sc or len(sc) > 64 or not all(c.isascii() and (c.isupper() or c.isdigit() or c == "_") for c in sc):
            raise ConfigError(f"{where}: a class name is 1-64 of A-Z, 0-9 and _")
        c = StorageClassConfig(pool=spec) if isinstance(spec, str) else spec
        if c.pool and c.pool not in cfg.pools:
            raise ConfigError(f"{where}: unknown pool {c.pool!r}")
        if c.profile and c.profile not in CLASS_PROFILES:
            raise ConfigError(f"{where}.profile: expected one of {', '.join(CLASS_PROFILES)}, got {c.profile!r}")
        if c.k < 0 or c.m < 0 or (c.k == 0 and c.m) or c.k + c.m > 32:
            raise ConfigError(f"{where}: k and m must be given together, k+m at most 32")


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
    if not 0 < mount.durability_seconds <= 3600:
        raise ConfigError("mount.durability_seconds: must be more than 0 and at most 3600")


def load_config(path: Path) -> Config:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file (give --config FILE or --data DIR)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except UnicodeDecodeError as exc:  # a ValueError, not a TOMLDecodeError
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from exc
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

"""`stowage serve`: the composition root. The only place services are wired together.

Start order: metadata DB, disks (labels checked), the object store, start-up sweeps, then each
service with `await nursery.start(...)` (S3 gateway, FUSE mount, GC, healing, control socket,
watchdog). READY=1 is sent when all of them are up. SIGTERM/SIGINT: STOPPING=1, then the
nursery is cancelled; each service cleans up in its own `finally` (the gateway drains, the
mount is unmounted) and the DB is closed last.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import resource
import signal
import ssl
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from appliance.engine.diskload import load_disks
from appliance.engine.disks import DiskSet
from appliance.engine.gc import sweep_orphans
from appliance.engine.identity import replace_plaintext_snapshots
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.engine.usage import count_all as count_usage
from appliance.iam.admin import IdentityAdmin
from appliance.iam.credentials import resolve_root_key
from appliance.iam.kms import Kms
from appliance.iam.masterkey import MasterKey, credential_path, mark_master
from appliance.iam.objectkeys import ObjectKeys
from appliance.iam.sealing import rewrap_all
from appliance.malloctune import tune_malloc
from appliance.services.eventhub import EventHub
from appliance.services.gc import serve_gc
from appliance.services.healing import Healing
from appliance.services.lifecycle import LifecycleWorker, serve_lifecycle
from appliance.services.notify import NotifyService
from appliance.services.notifytargets import rewrap_targets
from appliance.services.replicate import ReplicationService
from appliance.services.restore import RestoreWorker, serve_restore
from appliance.services.site import SiteService, rewrap_peers
from diskmgr.durable import write_atomic
from diskmgr.state import DiskState
from fusefs.access import BucketDefaults
from fusefs.service import serve_fuse
from s3gw.adminserver import serve_admin
from s3gw.service import Endpoint, serve_s3
from s3gw.siteapi import SiteEndpoint

from . import __version__, accesslog, migrate
from . import tls as tls_setup
from .audit import AuditLog
from .config import Config, ConfigError, fuse_usable
from .consoleadmin import ConsoleAdmin, counter_total
from .control import ControlServer, Emit
from .operator import Operator
from .ops import disks as disk_ops
from .ops import healing as healing_ops
from .ops import iam as iam_ops
from .ops import kms as kms_ops
from .ops import notify as notify_ops
from .ops import operator as operator_ops
from .ops import replication as replication_ops
from .ops import site as site_ops
from .ops import usage as usage_ops
from .sdnotify import Notifier, run_debug_wedge, run_status, run_watchdog

log = logging.getLogger("stowage.daemon")

@dataclass
class Daemon:
    cfg: Config
    store: ObjectStore
    identities: IdentityAdmin
    control: ControlServer
    notifier: Notifier
    healing: Healing  # the self-healing services; their progress shows in `status`
    kms: Kms  # the built-in KMS and the master key (server-side encryption)
    events: EventHub  # bucket notifications (and replication)
    lifecycle: LifecycleWorker  # applies the buckets' lifecycle rules; its progress shows in `status`
    restore: RestoreWorker  # makes and expires the copies RestoreObject asks for
    keys: ObjectKeys = field(init=False)  # what the frontends encrypt and decrypt object data with
    operator: Operator = field(init=False)  # metrics, health, logs, alerts
    console_admin: ConsoleAdmin = field(init=False)  # the web console's disks, durability, version, charts
    started: float = field(default_factory=time.time)
    s3_endpoint: str = ""
    mount_path: str = ""
    admin_port: int = 0  # the admin listen address's bound port (admin.listen), 0 = none
    tls: tls_setup.TlsContexts | None = None  # the gateway's certificate, reloaded on SIGHUP
    site: SiteService | None = None  # site replication (stowage site add)

    def __post_init__(self) -> None:
        self.keys = ObjectKeys(self.kms)
        self.operator = Operator(self.cfg, self.store, self.healing, self.keys, self.identities.master)
        self.console_admin = ConsoleAdmin(self.cfg, self.store, self.healing, self.control, self.operator.auditor.log,
                                          lambda: counter_total(self.operator.gateway.requests))

    @property
    def disks(self) -> DiskSet:
        return self.store.disks

    def summary(self) -> str:
        disks = list(self.disks)
        ok = sum(1 for d in disks if d.state == DiskState.OK)
        heal = self.healing.healer.progress
        healing = f", healing {heal.done}/{heal.total}" if heal.running else ""
        return f"{ok}/{len(disks)} disks ok, S3 {self.s3_endpoint or 'off'}, mount {self.mount_path or 'off'}{healing}"

    def status(self, object_counts: dict[str, int] | None = None) -> dict[str, Any]:
        store = self.store
        cap = store.capacity()
        geo = store.geometry()
        buckets = store.list_buckets()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started, 1),
            "s3_endpoint": self.s3_endpoint,
            "mount": self.mount_path or None,
            "pools": [
                {
                    "name": pool,
                    "geometry": {"k": g.k, "m": g.m, "block_size": g.block_size},
                    "disks": len(store.disks.pool(pool)),
                    "raw_bytes": cap.raw_total,
                    "usable_bytes": cap.usable_total,
                    "used_bytes": cap.raw_total - cap.raw_free,
                    "free_usable_bytes": cap.usable_free,
                }
                for pool, g in ([("default", geo)] + [(p, store.geometry(p)) for p in store.disks.pools()
                                                     if p != "default"])
            ],
            "disks": [{"disk_id": d.disk_id, "path": str(d.path), "pool": d.pool, "state": d.state,
                       "reasons": d.reasons} for d in self.disks],
            # a metadata DB that failed a write refuses every commit (S3 503) until a restart
            "metadata": {"writable": not store.db.failed, "error": store.db.failed or None,
                         # the mount's closed files not yet durable (durable within mount.durability_seconds)
                         "undurable_commits": store.has_undurable},
            "buckets": len(buckets),
            "objects": sum(object_counts.values()) if object_counts is not None else None,
            "objects_per_bucket": object_counts,
            "services": {**self.healing.progress_json(), "lifecycle": self.lifecycle.progress_json(),
                         "restore": self.restore.progress_json()},
            "notifications": self.events.notify.status(),
            "replication": self.events.replication.status() if self.events.replication else None,
        }


def _write_runfile(cfg: Config, info: dict[str, Any]) -> Path:
    run = Path(cfg.state_dir) / "run"
    run.mkdir(parents=True, exist_ok=True)
    path = run / "daemon.json"
    write_atomic(path, json.dumps(info, indent=2), 0o600)
    return path


def _state_entries(cfg: Config) -> list[tuple[Path, bool, str]]:
    """(path, is a directory, what it holds) of what the daemon makes or opens besides the
    metadata DB and the disks; a directory before what is in it."""
    state = Path(cfg.state_dir)
    audit = AuditLog.path_for(cfg.state_dir)
    out = [(state / "run", True, "the daemon's run file"), (state / "appliance-id", False, "the appliance id"),
           (audit.parent, True, "the audit log"), (audit, False, "the audit log"),
           (cfg.control_path, False, "the control socket")]
    if cfg.access_log.target == "file":
        access = accesslog.file_path(cfg)
        out += [(access.parent, True, "the access log"), (access, False, "the access log")]
    if credential_path() is None:  # (systemd's credential, when given, is the key: the file is not read)
        key = cfg.master_key_path
        out += [(key.parent, True, "the master key"), (key, False, "the master key")]
    return out


def _check_state_entries(cfg: Config) -> None:
    """A file where one of them is a directory, or the reverse, is one clear line at start (it
    was a traceback from wherever it was first met, some from inside the running services)."""
    for path, is_dir, holds in _state_entries(cfg):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue  # made when needed
        except OSError as exc:
            raise ConfigError(f"{path} ({holds}): {exc.strerror or exc}") from exc
        if is_dir and not stat.S_ISDIR(mode):
            raise ConfigError(f"{path} is not a directory (it is where {holds} goes): move it away")
        if not is_dir and stat.S_ISDIR(mode):
            raise ConfigError(f"{path} is a directory (it is where {holds} goes): move it away")


def _mount_wanted(cfg: Config) -> bool:
    if cfg.mount.enabled == "no" or not cfg.mount.path:
        return False
    if cfg.mount.enabled == "auto":
        return fuse_usable()
    return True


PRIVATE_UMASK = 0o077  # the metadata DB holds every secret, the shards every object


def _warn_if_open(cfg: Config) -> None:
    """What the daemon creates is private (umask 077), but an embedded data directory made
    beforehand by someone else may still let other local users in."""
    try:
        mode = Path(cfg.state_dir).stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if cfg.embedded and mode & 0o077:
        log.warning("data directory %s is open to other users (mode %03o); chmod 700 it", cfg.state_dir, mode)


def _raise_open_files() -> None:
    """Open-file soft limit up to the hard one (Debian's login default is 1,024, the unit's
    1,048,576): shard files of concurrent requests, client sockets and LevelDB's tables share it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def run(cfg: Config, notifier: Notifier | None = None, on_ready: Callable[[Daemon], None] | None = None
              ) -> None:
    """`on_ready`: called once every service is up (`stowage serve --banner` prints where things are)."""
    os.umask(PRIVATE_UMASK)  # in every mode, not only under the systemd unit's UMask=
    _raise_open_files()
    tune_malloc()
    _warn_if_open(cfg)
    _check_state_entries(cfg)
    if _mount_wanted(cfg):
        BucketDefaults(cfg.mount)  # an unknown owner or group is a config error (exit 78), found now
    notifier = notifier or Notifier.from_environ()
    await trio.to_thread.run_sync(migrate.before_open, cfg)  # the pre-upgrade snapshot, when one is due
    db = await trio.to_thread.run_sync(MetaDB, cfg.meta_path)
    try:
        (Path(cfg.state_dir) / "appliance-id").write_text(db.appliance_id + "\n")
        disks = await trio.to_thread.run_sync(load_disks, cfg, db)
        store = ObjectStore(cfg, db, disks)
        await trio.to_thread.run_sync(store.drop_stale_staging)
        await trio.to_thread.run_sync(sweep_orphans, store)
        await trio.to_thread.run_sync(count_usage, db)  # once: the counters of an older version's data
        root = resolve_root_key(cfg)
        if root.generated:
            # the secret only to a terminal: stdout may be a log (the journal, a file)
            secret = root.secret_key if sys.stdout.isatty() else "(see `stowage credentials`)"
            print(f"Stowage root credentials (stored in {cfg.credentials_file}, mode 0600):\n"
                  f"  access key: {root.access_key}\n  secret key: {secret}", flush=True)
        identities = await IdentityAdmin.open(store, root, cfg.master_key_path)
        kms = Kms(db, identities.master)  # one key ring: rotate-master changes what both use
        await trio.to_thread.run_sync(mark_master, db, identities.master)
        # round-1 plain-text secrets were just wrapped (now or offline): the snapshots taken
        # before still hold them, so they are replaced before the snapshot service starts
        await replace_plaintext_snapshots(store)
        await trio.to_thread.run_sync(migrate.stamp_version, db)
        healing = Healing.create(store, {dc.path for dc in cfg.disks})
        notify = NotifyService(store, cfg, identities.master)
        await trio.to_thread.run_sync(notify.load)
        replication = ReplicationService(store, cfg, identities.master, lambda: kms.resolver())
        await trio.to_thread.run_sync(replication.load)
        daemon = Daemon(cfg, store, identities, ControlServer(cfg.control_path), notifier, healing, kms,
                        EventHub(notify, replication), LifecycleWorker(store, cfg), RestoreWorker(store, cfg))
        daemon.tls = await trio.to_thread.run_sync(_prepare_tls, cfg)
        daemon.site = SiteService(store, identities.master, replication, site_ops.site_key(identities),
                                  identities.refresh, identities.identities.root.canonical_id,
                                  notify_targets=notify.targets.keys)
        await trio.to_thread.run_sync(daemon.site.load)
        await _serve(daemon, on_ready)
    finally:
        db.close()
        log.info("metadata DB closed")


async def _serve(d: Daemon, on_ready: Callable[[Daemon], None] | None = None) -> None:
    cfg = d.cfg
    register_control_ops(d)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_debug_wedge)
            await nursery.start(serve_gc, d.store)
            await nursery.start(serve_lifecycle, d.store, cfg, d.lifecycle)
            await nursery.start(serve_restore, d.restore)
            for worker in d.healing.workers():
                await nursery.start(worker)
            for worker in d.operator.workers():
                await nursery.start(worker)
            await nursery.start(d.console_admin.serve)
            await nursery.start(d.events.notify.serve)
            if d.events.replication is not None:
                await nursery.start(d.events.replication.serve)
            if d.site is not None:
                await nursery.start(d.site.serve)
            await nursery.start(tls_setup.serve_reload, d.tls, cfg.tls.reload_interval)
            if cfg.tls.mode == "acme" and d.tls is not None:
                from . import acmecert

                await nursery.start(acmecert.serve, cfg, d.tls, d.identities.master)
            op = d.operator
            if cfg.s3.enabled:
                endpoint: Endpoint = await nursery.start(partial(
                    serve_s3, d.store, cfg, d.identities, d.keys, admin=op.admin, observers=op.observers,
                    state=op.server, iam_changes=op.auditor.iam, events=d.events,
                    tls_context=d.tls.current if d.tls else None, console_admin=d.console_admin))
                d.s3_endpoint = endpoint.url
            if cfg.admin.listen:
                d.admin_port = await nursery.start(serve_admin, op.admin, cfg)
            if _mount_wanted(cfg):
                d.mount_path = str(await nursery.start(serve_fuse, d.store, cfg, d.keys))
            await nursery.start(d.control.serve)
            await nursery.start(run_watchdog, d.notifier)
            op.readiness.phase = "serving"
            # what start-up built (modules, configuration, the store's state) lives as long as
            # the process: kept out of the collector's full passes, each of which held the
            # event loop ~32 ms (every request in flight waited), ~2 ms once frozen
            gc.freeze()
            if on_ready is not None:
                on_ready(d)
            # after the banner, so whoever waits on the run file (the CLI, tests) finds it
            # printed; before READY, so systemd's "started" means the run file is there
            _write_runfile(cfg, {"pid": os.getpid(), "version": __version__, "s3_endpoint": d.s3_endpoint,
                                 "mount": d.mount_path or None, "control_socket": str(cfg.control_path),
                                 "admin_port": d.admin_port or None,
                                 "state_dir": cfg.state_dir,
                                 "tls_certificate": str(d.tls.files.cert) if d.tls else None,
                                 "tls_fingerprint": d.tls.fingerprint if d.tls else None})
            log.info("ready: %s", d.summary())
            d.notifier.ready(d.summary())
            await nursery.start(run_status, d.notifier, d.summary)
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                d.notifier.stopping("stopping: draining requests, unmounting")
                op.readiness.phase = "stopping"
                nursery.cancel_scope.cancel()
                break
    with contextlib.suppress(FileNotFoundError):
        (Path(cfg.state_dir) / "run" / "daemon.json").unlink()


def _prepare_tls(cfg: Config) -> tls_setup.TlsContexts | None:
    """The gateway's certificate (generated on first start when none is configured); its
    fingerprint is printed for clients that pin it."""
    if not cfg.s3.enabled:
        return None
    files = tls_setup.prepare(cfg)
    if files is None:
        return None
    try:
        contexts = tls_setup.TlsContexts(files)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"s3.tls_cert/s3.tls_key: cannot load {files.cert} and {files.key}: {exc}") from exc
    print(f"Stowage TLS certificate: {files.cert}\n  SHA-256 fingerprint: {contexts.fingerprint}", flush=True)
    return contexts


def register_backlogs(d: Daemon) -> None:
    """The queues the operator's metrics export and its alerts watch (alerts.replication_backlog)."""
    notify, replication = d.events.notify, d.events.replication
    d.operator.register_backlog("notifications", lambda: float(sum(st.queued for st in notify.stats.values())))
    if replication is not None:
        d.operator.register_backlog("replication", lambda: float(sum(st.queued for st in replication.stats.values())),
                                    alert_above=d.cfg.alerts.replication_backlog)


def register_control_ops(d: Daemon) -> None:
    d.operator.auditor.attach(d.identities, d.store, d.control)
    register_backlogs(d)
    async def status(args: dict[str, Any], emit: Emit) -> Any:
        counts = await trio.to_thread.run_sync(d.store.count_objects)
        return d.status(counts)

    d.control.register("status", status)
    iam_ops.register(d.control, d.identities)
    disk_ops.register(d.control, d.store, d.cfg.pools, d.healing)
    healing_ops.register(d.control, d.healing)
    operator_ops.register(d.control, d.operator.state, d.store, d.operator.alerter)
    notify_ops.register(d.control, d.events.notify)
    if d.events.replication is not None:
        replication_ops.register(d.control, d.events.replication)
    if d.site is not None:
        site_ops.register(d.control, d.site)
        d.operator.admin.register("site", SiteEndpoint(d.site, d.operator.admin).handle)

    async def rewrap_secrets(master: MasterKey) -> int:
        return await d.identities.write(lambda view: rewrap_all(view, master))

    usage_ops.register(d.control, d.store, d.lifecycle, d.identities.identities)
    async def rewrap_event_targets(master: MasterKey) -> int:
        return await rewrap_targets(d.store, master)

    kms_ops.register(d.control, d.kms, d.store, lambda: d.healing.snapshotter.take(force=True),
                     [rewrap_secrets, d.operator.alerter.rewrap, rewrap_event_targets,
                      partial(rewrap_peers, d.store)])

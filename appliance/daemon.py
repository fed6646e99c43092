"""`stowage serve`: the composition root. The only place services are wired together.

Start order: metadata DB, disks (labels checked), the object store, start-up sweeps, then each
service with `await nursery.start(...)` (S3 gateway, FUSE mount, GC, healing, control socket,
watchdog). READY=1 is sent when all of them are up. SIGTERM/SIGINT: STOPPING=1, then the
nursery is cancelled; each service cleans up in its own `finally` (the gateway drains, the
mount is unmounted) and the DB is closed last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from appliance.engine.diskload import load_disks
from appliance.engine.disks import DiskSet
from appliance.engine.gc import sweep_orphans
from appliance.engine.identity import replace_plaintext_snapshots
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.iam.admin import IdentityAdmin
from appliance.iam.credentials import resolve_root_key
from appliance.iam.kms import Kms
from appliance.iam.masterkey import MasterKey, mark_master
from appliance.iam.objectkeys import ObjectKeys
from appliance.iam.sealing import rewrap_all
from appliance.services.gc import serve_gc
from appliance.services.healing import Healing
from diskmgr.durable import write_atomic
from diskmgr.state import DiskState
from fusefs.access import BucketDefaults
from fusefs.service import serve_fuse
from s3gw.service import Endpoint, serve_s3

from . import __version__
from .config import Config, fuse_usable
from .control import ControlServer, Emit
from .ops import disks as disk_ops
from .ops import healing as healing_ops
from .ops import iam as iam_ops
from .ops import kms as kms_ops
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
    keys: ObjectKeys = field(init=False)  # what the frontends encrypt and decrypt object data with
    started: float = field(default_factory=time.time)
    s3_endpoint: str = ""
    mount_path: str = ""

    def __post_init__(self) -> None:
        # a KMS key made on first use (aws/s3) exists only in the DB until a snapshot holds it
        self.keys = ObjectKeys(self.kms, lambda: self.healing.snapshotter.take(force=True))

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
            "metadata": {"writable": not store.db.failed, "error": store.db.failed or None},
            "buckets": len(buckets),
            "objects": sum(object_counts.values()) if object_counts is not None else None,
            "objects_per_bucket": object_counts,
            "services": self.healing.progress_json(),
        }


def _write_runfile(cfg: Config, info: dict[str, Any]) -> Path:
    run = Path(cfg.state_dir) / "run"
    run.mkdir(parents=True, exist_ok=True)
    path = run / "daemon.json"
    write_atomic(path, json.dumps(info, indent=2), 0o600)
    return path


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


async def run(cfg: Config, notifier: Notifier | None = None) -> None:
    os.umask(PRIVATE_UMASK)  # in every mode, not only under the systemd unit's UMask=
    _warn_if_open(cfg)
    if _mount_wanted(cfg):
        BucketDefaults(cfg.mount)  # an unknown owner or group is a config error (exit 78), found now
    notifier = notifier or Notifier.from_environ()
    db = await trio.to_thread.run_sync(MetaDB, cfg.meta_path)
    try:
        (Path(cfg.state_dir) / "appliance-id").write_text(db.appliance_id + "\n")
        disks = await trio.to_thread.run_sync(load_disks, cfg, db)
        store = ObjectStore(cfg, db, disks)
        await trio.to_thread.run_sync(store.drop_stale_staging)
        await trio.to_thread.run_sync(sweep_orphans, store)
        root = resolve_root_key(cfg)
        if root.generated:
            print(f"Stowage root credentials (stored in {cfg.credentials_file}, shown once):\n"
                  f"  access key: {root.access_key}\n  secret key: {root.secret_key}", flush=True)
        identities = await IdentityAdmin.open(store, root, cfg.master_key_path)
        kms = Kms(db, identities.master)  # one key ring: rotate-master changes what both use
        await trio.to_thread.run_sync(mark_master, db, identities.master)
        # round-1 plain-text secrets were just wrapped (now or offline): the snapshots taken
        # before still hold them, so they are replaced before the snapshot service starts
        await replace_plaintext_snapshots(store)
        healing = Healing.create(store, {dc.path for dc in cfg.disks})
        daemon = Daemon(cfg, store, identities, ControlServer(cfg.control_path), notifier, healing, kms)
        await _serve(daemon)
    finally:
        db.close()
        log.info("metadata DB closed")


async def _serve(d: Daemon) -> None:
    cfg = d.cfg
    register_control_ops(d)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_debug_wedge)
            await nursery.start(serve_gc, d.store)
            for worker in d.healing.workers():
                await nursery.start(worker)
            if cfg.s3.enabled:
                endpoint: Endpoint = await nursery.start(serve_s3, d.store, cfg, d.identities, d.keys)
                d.s3_endpoint = endpoint.url
            if _mount_wanted(cfg):
                d.mount_path = str(await nursery.start(serve_fuse, d.store, cfg, d.keys))
            await nursery.start(d.control.serve)
            await nursery.start(run_watchdog, d.notifier)
            _write_runfile(cfg, {"pid": os.getpid(), "version": __version__, "s3_endpoint": d.s3_endpoint,
                                 "mount": d.mount_path or None, "control_socket": str(cfg.control_path),
                                 "state_dir": cfg.state_dir})
            log.info("ready: %s", d.summary())
            d.notifier.ready(d.summary())
            await nursery.start(run_status, d.notifier, d.summary)
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                d.notifier.stopping("stopping: draining requests, unmounting")
                nursery.cancel_scope.cancel()
                break
    with contextlib.suppress(FileNotFoundError):
        (Path(cfg.state_dir) / "run" / "daemon.json").unlink()


def register_control_ops(d: Daemon) -> None:
    async def status(args: dict[str, Any], emit: Emit) -> Any:
        counts = await trio.to_thread.run_sync(d.store.count_objects)
        return d.status(counts)

    d.control.register("status", status)
    iam_ops.register(d.control, d.identities)
    disk_ops.register(d.control, d.store, d.cfg.pools, d.healing)
    healing_ops.register(d.control, d.healing)

    async def rewrap_secrets(master: MasterKey) -> int:
        return await d.identities.write(lambda view: rewrap_all(view, master))

    kms_ops.register(d.control, d.kms, d.store, lambda: d.healing.snapshotter.take(force=True), [rewrap_secrets])

"""The mount service: pyfuse3 inside the daemon's trio loop.

`serve_fuse(store, cfg, keys)` is started by appliance/daemon.py with `nursery.start`. pyfuse3 has one
global session per process, so there is one mount per daemon. `pyfuse3.main()` is an ordinary
trio coroutine (it reads /dev/fuse with trio.lowlevel.wait_readable and runs each request as a
task), so it runs as a task of our own nursery beside the invalidation worker. On cancellation
(daemon shutdown) open files are committed, then the session is closed with unmount.

A mount left by a crashed daemon answers ENOTCONN (the mount guard, fusefs/guard.py, makes sure
of it when a thread of the dead daemon is stuck in the kernel); it is detached (`fusermount3 -u -z`, then
`umount -l`) before mounting again. A live mount at the path (another daemon) is refused.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pyfuse3
import trio

from appliance.config import Config, ConfigError
from appliance.engine import ObjectStore
from appliance.iam.objectkeys import ObjectKeys

from .guard import MountGuard
from .operations import StowageFS
from .opstats import instrument

log = logging.getLogger("stowage.fuse")
_active = False


def _stale(path: Path) -> bool:
    try:
        os.statvfs(path)  # never answered from the kernel's attribute cache, unlike stat
        return False
    except OSError as exc:
        return exc.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO)


def _detach(path: Path) -> None:
    for cmd in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        if shutil.which(cmd[0]) and subprocess.run(cmd, capture_output=True).returncode == 0:
            return


def prepare_mountpoint(path: Path) -> None:
    """Create the mount point; clean a stale mount; refuse a live one (blocking)."""
    if _stale(path):
        log.warning("%s: stale FUSE mount from an earlier run; detaching it", path)
        _detach(path)
        if _stale(path):
            raise ConfigError(f"mount.path {path}: a stale mount could not be detached")
    path.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(path):
        raise ConfigError(f"mount.path {path}: something is already mounted there")


def _clean_staging(staging: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    for leftover in staging.iterdir():
        if leftover.is_file():
            leftover.unlink()


def mount_options(cfg: Config) -> set[str]:
    opts = set(pyfuse3.default_options)
    # The kernel checks every access against the attributes we report (without it, allow_other
    # would let any local user do anything); setuid/setgid programs and device nodes are never
    # honoured from the mount.
    opts |= {"fsname=stowage", "subtype=stowage", "default_permissions", "nosuid", "nodev"}
    if cfg.mount.allow_other:
        opts.add("allow_other")
    return opts


async def serve_fuse(store: ObjectStore, cfg: Config, keys: ObjectKeys, *,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    global _active
    if _active:
        raise ConfigError("one FUSE mount per process (pyfuse3 has a single session)")
    path = await trio.to_thread.run_sync(Path(cfg.mount.path).resolve)
    await trio.to_thread.run_sync(prepare_mountpoint, path)
    await trio.to_thread.run_sync(_clean_staging, cfg.staging_path)
    ops = StowageFS(store, cfg, keys)
    instrument(ops)  # per-operation counts and latencies for the metrics endpoint
    pyfuse3.init(ops, str(path), mount_options(cfg))
    _active = ops.mounted = True
    guard = MountGuard()
    try:
        async with trio.open_nursery() as nursery:
            ops.nursery = nursery  # files written in order are streamed to the store from here
            nursery.start_soon(_main_loop, path)
            nursery.start_soon(ops.flush_times_forever)
            nursery.start_soon(ops.durability_forever)
            # the kernel's INIT and our first GETATTR go through the loop we just started
            st = await trio.to_thread.run_sync(os.stat, path)
            await trio.to_thread.run_sync(widen_read_ahead, st.st_dev)
            guard.start(st.st_dev, os.getpid())  # here, on the loop's thread: see fusefs/guard.py
            log.info("mounted at %s", path)
            task_status.started(str(path))
            await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(30):
                await ops.commit_all()
                await store.make_durable()
            ops.mounted = False
            await trio.to_thread.run_sync(guard.release)
            try:
                pyfuse3.close(unmount=True)
            except Exception:
                log.exception("closing the FUSE session failed")
            if await trio.to_thread.run_sync(os.path.ismount, path) or _stale(path):
                await trio.to_thread.run_sync(_detach, path)
            _active = False
            log.info("unmounted %s", path)


# The kernel gives a FUSE connection 128 KiB of read-ahead, so a sequential read reached the mount
# in 128 KiB requests; at 1 MiB (the largest read request, as for writes) a 1 GiB read ran at
# 455-489 MiB/s against 366-419 (4 alternating rounds, caches dropped).
READ_AHEAD_KB = 1024


def widen_read_ahead(dev: int, sysfs: Path = Path("/sys/class/bdi")) -> None:
    """Set the mount's read-ahead (its backing device info, gone with the mount); where sysfs is
    not writable (no root, a container) the kernel's default stays."""
    knob = sysfs / f"{os.major(dev)}:{os.minor(dev)}" / "read_ahead_kb"
    try:
        knob.write_text(f"{READ_AHEAD_KB}\n")
    except OSError as exc:
        log.info("the mount's read-ahead stays the kernel's default (%s)", exc)


async def _main_loop(path: Path) -> None:
    await pyfuse3.main(min_tasks=2, max_tasks=64)
    log.warning("the FUSE session at %s ended (unmounted from outside?)", path)
    await trio.sleep_forever()

"""The appliance's state as Prometheus metrics, read when scraped (a custom collector): disks,
pools, the self-healing services, objects and bytes per bucket and storage class, FUSE
operations, the metadata journal's group commits, and the process (psutil, event-loop lag).

Scrapes run in a worker thread (s3gw/metrics.py). What costs a walk (shard files per disk,
object sizes per bucket) is cached for CACHE_SECONDS so frequent scrapes stay cheap.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import psutil
import trio
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.alerts import pool_space
from appliance.engine import keys
from appliance.engine.journal import BATCH_BOUNDS
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import ObjectVersion
from appliance.engine.volumes import volume_numbers, volume_path
from appliance.services.healing import Healing
from diskmgr.latency import BOUNDS_MS, LatencyHistogram
from diskmgr.state import DiskState
from fusefs.opstats import STATS as FUSE_STATS

CACHE_SECONDS = 60.0
LAG_INTERVAL = 1.0  # the event-loop lag probe sleeps this long and measures the overshoot
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
T = TypeVar("T")


@dataclass
class _Cached:
    """A value recomputed at most every `ttl` seconds (scrapes may come from two threads)."""

    compute: Callable[[], object]
    ttl: float = CACHE_SECONDS
    _value: object = None
    _at: float = -1e18
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> object:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._value, self._at = self.compute(), time.monotonic()
            return self._value


def exported_buckets(lifetime: list[int], total: float) -> tuple[list[tuple[str, float]], float]:
    """A diskmgr.latency histogram (4 buckets per doubling from 10 µs) as cumulative Prometheus
    buckets in seconds, one per doubling (every 4th bound) plus +Inf, and its sum."""
    out: list[tuple[str, float]] = []
    running = 0
    for i, c in enumerate(lifetime[:-1]):
        running += c
        if i % 4 == 3:
            out.append((repr(BOUNDS_MS[i] / 1000.0), float(running)))
    out.append(("+Inf", float(sum(lifetime))))
    return out, total


def _hist(name: str, doc: str, labels: list[str], items: Iterator[tuple[list[str], LatencyHistogram]]
          ) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=labels)
    for values, h in items:
        buckets, total = exported_buckets(list(h.lifetime), h.lifetime_sum)
        fam.add_metric(values, buckets, total)
    return fam


# A service's backlog (items waiting: replication, notification or lifecycle queues), read when scraped
Backlog = Callable[[], float]


class ApplianceCollector(Collector):
    def __init__(self, store: ObjectStore, healing: Healing | None) -> None:
        self.store = store
        self.healing = healing
        # service name -> its backlog; services register here (Operator.register_backlog)
        self.backlogs: dict[str, Backlog] = {}
        self._shards = _Cached(self._count_shards)
        self._volumes = _Cached(self._volume_bytes)
        self._buckets = _Cached(self._bucket_usage)

    def _count_shards(self) -> dict[str, int]:
        return {d.disk_id: sum(1 for _ in d.iter_shard_files()) for d in list(self.store.disks)}

    def _volume_bytes(self) -> dict[str, int]:
        """Disk id -> bytes of its volume files (small objects' packed shards: engine/volumes.py)."""
        out: dict[str, int] = {}
        for d in list(self.store.disks):
            total = 0
            for n in volume_numbers(d.path):
                with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
                    total += os.stat(volume_path(d.path, n)).st_size
            out[d.disk_id] = total
        return out

    def _bucket_usage(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(bucket, storage class) -> (current objects, their bytes)."""
        usage: dict[tuple[str, str], tuple[int, int]] = {}
        for b in self.store.list_buckets():
            for _, v in self.store.db.scan_records(ObjectVersion, keys.latest_prefix(b.name)):
                n, size = usage.get((b.name, v.storage_class), (0, 0))
                usage[(b.name, v.storage_class)] = (n + 1, size + v.size)
            usage.setdefault((b.name, "STANDARD"), (0, 0))
        return usage

    def collect(self) -> Iterator[Metric]:
        yield from self._disks()
        yield from self._pools()
        yield from self._services()
        yield from self._backlogs()
        yield from self._objects()
        yield from self._fuse()
        yield from self._journal()
        yield from self._buffers()

    def _disks(self) -> Iterator[Metric]:
        disks = list(self.store.disks)
        state = GaugeMetricFamily("stowage_disk_state", "1 for the disk's current state",
                                  labels=["disk", "pool", "state"])
        reasons = GaugeMetricFamily("stowage_disk_health_reason", "1 for each reason the disk is not ok",
                                    labels=["disk", "reason"])
        total = GaugeMetricFamily("stowage_disk_size_bytes", "Size of the disk's filesystem", labels=["disk", "pool"])
        free = GaugeMetricFamily("stowage_disk_free_bytes", "Free bytes usable for shards", labels=["disk", "pool"])
        shards = GaugeMetricFamily("stowage_disk_shards", "Shard files held (counted at most once a minute)",
                                   labels=["disk"])
        volume_bytes = GaugeMetricFamily("stowage_disk_volume_bytes", "Bytes of the volume files holding small "
                                         "objects' packed shards, dead records included until compacted (counted "
                                         "at most once a minute)", labels=["disk"])
        counters = {
            "reads": CounterMetricFamily("stowage_disk_reads", "Shard reads", labels=["disk"]),
            "writes": CounterMetricFamily("stowage_disk_writes", "Shard writes", labels=["disk"]),
            "read_bytes": CounterMetricFamily("stowage_disk_read_bytes", "Shard bytes read", labels=["disk"]),
            "write_bytes": CounterMetricFamily("stowage_disk_written_bytes", "Shard bytes written", labels=["disk"]),
            "io_errors": CounterMetricFamily("stowage_disk_io_errors", "I/O errors", labels=["disk"]),
            "checksum_failures": CounterMetricFamily("stowage_disk_checksum_failures", "Shards that failed their "
                                                     "checksum", labels=["disk"]),
        }
        held = self._shards.get()
        packed = self._volumes.get()
        assert isinstance(held, dict) and isinstance(packed, dict)
        for d in disks:
            for s in DiskState:
                state.add_metric([d.disk_id, d.pool, s.value], 1.0 if d.state == s else 0.0)
            for r in d.reasons:
                reasons.add_metric([d.disk_id, r], 1.0)
            total.add_metric([d.disk_id, d.pool], float(d.total_bytes()))
            free.add_metric([d.disk_id, d.pool], float(d.free_bytes()))
            shards.add_metric([d.disk_id], float(held.get(d.disk_id, 0)))
            volume_bytes.add_metric([d.disk_id], float(packed.get(d.disk_id, 0)))
            for name, fam in counters.items():
                fam.add_metric([d.disk_id], float(getattr(d.counters, name)))
        yield from (state, reasons, total, free, shards, volume_bytes, *counters.values())
        yield _hist("stowage_disk_io_latency_seconds", "Shard read and write latency (waiting for the disk's "
                    "limiter included)", ["disk"], (([d.disk_id], d.counters.latency) for d in disks))

    def _pools(self) -> Iterator[Metric]:
        store = self.store
        pools = sorted(set(store.disks.pools()) | {"default"})
        size = GaugeMetricFamily("stowage_pool_size_bytes", "Raw bytes of the pool's disks", labels=["pool"])
        free = GaugeMetricFamily("stowage_pool_free_bytes", "Raw free bytes on the pool's writable disks",
                                 labels=["pool"])
        disks = GaugeMetricFamily("stowage_pool_disks", "Disks of the pool by readiness", labels=["pool", "usable"])
        geo = GaugeMetricFamily("stowage_pool_parity_shards", "m: disks the pool's geometry survives losing",
                                labels=["pool", "k"])
        for p in pools:
            members = store.disks.pool(p)
            t, f = pool_space(members)
            size.add_metric([p], float(t))
            free.add_metric([p], float(f))
            disks.add_metric([p, "true"], float(sum(1 for d in members if d.writable)))
            disks.add_metric([p, "false"], float(sum(1 for d in members if not d.writable)))
            g = store.geometry(p)
            geo.add_metric([p, str(g.k)], float(g.m))
        yield from (size, free, disks, geo)

    def _services(self) -> Iterator[Metric]:
        if self.healing is None:
            return
        heal = self.healing.healer.progress
        yield GaugeMetricFamily("stowage_heal_backlog_segments", "Segments waiting in the heal queue",
                                value=float(heal.pending + (heal.total - heal.done if heal.running else 0)))
        yield CounterMetricFamily("stowage_heal_rebuilt_shards", "Shards rebuilt by the healer",
                                  value=float(heal.rebuilt_shards))
        yield CounterMetricFamily("stowage_heal_moved_shards", "Shards moved by the healer",
                                  value=float(heal.moved_shards))
        yield CounterMetricFamily("stowage_heal_passes", "Heal passes completed", value=float(heal.passes))
        yield GaugeMetricFamily("stowage_unrecoverable_objects", "Objects the healer found unrecoverable",
                                value=float(len(heal.unrecoverable)))
        scrub = self.healing.scrubber.progress.to_json()
        yield GaugeMetricFamily("stowage_scrub_running", "1 while a scrub pass runs",
                                value=float(bool(scrub["running"])))
        yield GaugeMetricFamily("stowage_scrub_pass_segments", "Segments verified in the current or last pass",
                                value=float(scrub.get("segments", 0)))
        yield GaugeMetricFamily("stowage_scrub_pass_bytes", "Bytes read in the current or last pass",
                                value=float(scrub.get("bytes_read", 0)))
        yield GaugeMetricFamily("stowage_scrub_pass_damaged_segments", "Damaged segments found in the current or "
                                "last pass", value=float(scrub.get("found", 0)))
        yield GaugeMetricFamily("stowage_scrub_last_complete_timestamp_seconds", "When the last pass finished",
                                value=float(scrub.get("last_complete_ns", 0)) / 1e9)
        drain = self.healing.drainer.progress
        remaining = float(drain.total - drain.done) if drain is not None and drain.running else 0.0
        yield GaugeMetricFamily("stowage_drain_backlog_segments", "Segments a drain or replace still has to move",
                                value=remaining)
        yield CounterMetricFamily("stowage_drain_moved_shards", "Shards moved by the last drain or replace",
                                  value=float(drain.moved_shards if drain is not None else 0))

    def _backlogs(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily("stowage_service_backlog", "Items waiting in a service's queue (replication, "
                                "notifications, lifecycle)", labels=["service"])
        for name, backlog in sorted(self.backlogs.items()):
            fam.add_metric([name], float(backlog()))
        yield fam

    def _objects(self) -> Iterator[Metric]:
        usage = self._buckets.get()
        assert isinstance(usage, dict)
        objects = GaugeMetricFamily("stowage_bucket_objects", "Current objects (counted at most once a minute)",
                                    labels=["bucket", "storage_class"])
        size = GaugeMetricFamily("stowage_bucket_bytes", "Bytes of current objects (counted at most once a minute)",
                                 labels=["bucket", "storage_class"])
        for (bucket, cls), (n, b) in sorted(usage.items()):
            objects.add_metric([bucket, cls], float(n))
            size.add_metric([bucket, cls], float(b))
        yield from (objects, size)

    def _fuse(self) -> Iterator[Metric]:
        stats = FUSE_STATS
        ops = sorted(stats.latency.items())
        yield _hist("stowage_fuse_operation_duration_seconds", "FUSE operations served by the mount, by operation",
                    ["operation"], (([op], h) for op, h in ops))
        errors = CounterMetricFamily("stowage_fuse_errors", "FUSE operations answered with an error",
                                     labels=["operation"])
        for op, n in sorted(stats.errors.items()):
            errors.add_metric([op], float(n))
        yield errors

    def _journal(self) -> Iterator[Metric]:
        j = self.store.db.journal
        if j is None:
            return
        counts, records = list(j.batches.counts), j.batches.total
        fam = HistogramMetricFamily("stowage_journal_write_batch_records", "Commit records per journal write "
                                    "(one fdatasync on one disk): the group commit's batching")
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, c in zip(BATCH_BOUNDS, counts, strict=False):
            running += c
            buckets.append((str(bound), float(running)))
        buckets.append(("+Inf", float(sum(counts))))
        fam.add_metric([], buckets, float(records))
        yield fam
        yield GaugeMetricFamily("stowage_journal_last_lsn", "The last metadata commit's sequence number",
                                value=float(j.last_lsn))

    def _buffers(self) -> Iterator[Metric]:
        seg = self.store.seg
        budgets = (("write", seg.write_budget), ("read", seg.read_budget))
        for name, what, help_ in (
                ("stowage_stream_buffer_bytes", "used", "Bytes large uploads (write) and downloads (read) hold "
                 "in flight now, all of them together"),
                ("stowage_stream_buffer_limit_bytes", "total", "The budget of those bytes ([memory] "
                 "write_buffer_bytes, read_buffer_bytes)"),
                ("stowage_stream_buffer_peak_bytes", "peak", "The most bytes held in flight at once since the start")):
            fam = GaugeMetricFamily(name, help_, labels=["budget"])
            for label, budget in budgets:
                fam.add_metric([label], float(getattr(budget, what)))
            yield fam


class ProcessCollector(Collector):
    """RSS, open descriptors, CPU time and threads of the daemon (psutil)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()

    def collect(self) -> Iterator[Metric]:
        with self.proc.oneshot():
            mem = self.proc.memory_info()
            cpu = self.proc.cpu_times()
            fds = self.proc.num_fds()
            threads = self.proc.num_threads()
            started = self.proc.create_time()
        yield GaugeMetricFamily("stowage_process_resident_memory_bytes", "Resident set size", value=float(mem.rss))
        yield GaugeMetricFamily("stowage_process_open_fds", "Open file descriptors", value=float(fds))
        yield CounterMetricFamily("stowage_process_cpu_seconds", "User and system CPU time",
                                  value=float(cpu.user + cpu.system))
        yield GaugeMetricFamily("stowage_process_threads", "Threads", value=float(threads))
        yield GaugeMetricFamily("stowage_process_start_time_seconds", "When the daemon started", value=started)


@dataclass
class LoopLag:
    """How late the trio event loop wakes a task that asked to sleep LAG_INTERVAL: a loop blocked
    by synchronous work shows here before it shows as slow requests."""

    registry: CollectorRegistry
    hist: Histogram = field(init=False)

    def __post_init__(self) -> None:
        self.hist = Histogram("stowage_event_loop_lag_seconds", "Event-loop wake-up delay", buckets=LAG_BUCKETS,
                              registry=self.registry)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            t0 = trio.current_time()
            await trio.sleep(LAG_INTERVAL)
            self.hist.observe(max(0.0, trio.current_time() - t0 - LAG_INTERVAL))


def appliance_registry(store: ObjectStore, healing: Healing | None) -> tuple[CollectorRegistry, ApplianceCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = ApplianceCollector(store, healing)
    registry.register(collector)
    registry.register(ProcessCollector())
    return registry, collector

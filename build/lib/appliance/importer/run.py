"""One import run: every selected bucket of the source, its configuration, then its keys copied
by a bounded pool of workers (the versions of one key stay in order on one worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .copier import BucketCopier, Clients, _describe
from .cursor import Cursor
from .ratelimit import RateLimit
from .report import ImportReport
from .source import SourceVersion, bucket_config, versions_by_key


@dataclass
class ImportOptions:
    buckets: list[str] = field(default_factory=list)  # empty: every bucket of the source
    prefix: str = ""
    parallel: int = 4
    rate_limit: int = 0  # bytes per second read from the source; 0: unlimited
    dry_run: bool = False


@dataclass
class Plan:
    """What a bucket holds that is not copied yet (listed before copying, for the progress)."""

    bucket: str
    keys: list[tuple[str, list[SourceVersion]]]
    gone: list[str]  # keys copied before that the source no longer has
    total_bytes: int
    total_versions: int
    unchanged: int


Progress = Callable[[str, int, int], None]  # (bucket, bytes, versions)


def plan_bucket(src: Any, bucket: str, prefix: str, cursor: Cursor) -> Plan:
    keys: list[tuple[str, list[SourceVersion]]] = []
    seen: set[str] = set()
    total_bytes = total_versions = unchanged = 0
    for key, versions in versions_by_key(src, bucket, prefix):
        seen.add(key)
        todo = [v for v in versions if not cursor.done(bucket, key, v.identity)]
        unchanged += len(versions) - len(todo)
        if todo:
            keys.append((key, todo))
            total_bytes += sum(v.size for v in todo if not v.delete_marker)
            total_versions += len(todo)
    gone = sorted(k for k in cursor.keys(bucket) if k.startswith(prefix) and k not in seen)
    return Plan(bucket, keys, gone, total_bytes, total_versions, unchanged)


def source_buckets(src: Any, wanted: list[str]) -> list[str]:
    names = [b["Name"] for b in src.list_buckets().get("Buckets", [])]
    if not wanted:
        return names
    missing = [b for b in wanted if b not in names]
    if missing:
        raise LookupError(f"not on the source: {', '.join(missing)}")
    return [b for b in names if b in wanted]


def run_import(clients: Clients, cursor: Cursor, opts: ImportOptions, report: ImportReport,
               on_plan: Callable[[list[Plan]], None] = lambda _p: None,
               progress: Progress = lambda _b, _n, _v: None) -> ImportReport:
    limit = RateLimit(opts.rate_limit)
    report.dry_run = opts.dry_run
    buckets = source_buckets(clients.source, opts.buckets)
    plans = [plan_bucket(clients.source, b, opts.prefix, cursor) for b in buckets]
    on_plan(plans)
    for plan in plans:
        report.buckets.append(plan.bucket)
        report.add(unchanged=plan.unchanged)
        try:
            config = bucket_config(clients.source, plan.bucket)
        except (ClientError, BotoCoreError) as exc:
            report.fail(f"{plan.bucket}: configuration", _describe(exc))
            continue
        copier = BucketCopier(clients, plan.bucket, config, cursor, report, limit, dry_run=opts.dry_run,
                              progress=_bucket_progress(progress, plan.bucket))
        try:
            copier.configure()
        except (ClientError, BotoCoreError) as exc:
            report.fail(f"{plan.bucket}: create bucket", _describe(exc))
            continue
        _copy_keys(copier, plan, max(1, opts.parallel))
        for key in plan.gone:
            try:
                copier.delete_gone(key)
            except (ClientError, BotoCoreError) as exc:
                report.fail(f"{plan.bucket}/{key} (gone from the source)", _describe(exc))
        copier.finish()
    return report


def _bucket_progress(progress: Progress, bucket: str) -> Callable[[int, int], None]:
    def one(nbytes: int, versions: int) -> None:
        progress(bucket, nbytes, versions)

    return one


def _copy_keys(copier: BucketCopier, plan: Plan, parallel: int) -> None:
    """At most `parallel` keys in flight, at most 2x that queued: memory stays bounded."""
    slots = threading.Semaphore(parallel * 2)
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="import") as pool:
        futures: list[Future[None]] = []
        for key, versions in plan.keys:
            slots.acquire()
            f = pool.submit(copier.copy_key, key, versions)
            f.add_done_callback(lambda _f: slots.release())
            futures.append(f)
        for f in futures:
            f.result()

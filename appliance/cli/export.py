"""`stowage export --offline DATA_DIR DEST [--versions]`: every object as a plain file, so data in
Stowage is never locked in. Runs with the daemon stopped and never writes to the appliance.

Where the metadata comes from: a copy of the metadata DB taken into a scratch directory; when
the DB is lost or unreadable (or with --from-disks), a DB rebuilt in the scratch directory from
the data disks alone, exactly as `stowage recover-metadata` does (the newest metadata snapshot on
the disks, the journal replayed after it, the self-describing shard headers reconciled). Object
data is read from the shard files through the erasure decoder (up to m lost disks), checked
against its CRCs; SSE-S3 and SSE-KMS objects are decrypted with the master key
(<DATA>/keys/master.key, or --master-key FILE), SSE-C objects cannot be (the customer key was
never stored) and are reported as skipped.

Layout under DEST (`%` never appears unescaped in a written name, so it marks what the export
adds; bucket names cannot contain it):

    DEST/BUCKET/KEY                      the current version's data, one file per object
    DEST/BUCKET/KEY%meta.json            its metadata sidecar (below)
    DEST/BUCKET/KEY%versions/N-VID       with --versions: every version, oldest first (N = 1, 2, ...),
    DEST/BUCKET/KEY%versions/N-VID%meta.json   delete markers as a sidecar alone
    DEST/BUCKET%bucket.json              the bucket's configuration (versioning, policy, tags, lock...)
    DEST/%export.json                    the report: counts, skipped and failed objects with reasons

Key components are percent-encoded where a file name could not hold them ("/" separates
directories; "", "." and ".." and "%" are escaped; over-long names are shortened with a hash).
A key that is also a "folder" of other keys is written as NAME% beside the folder NAME/. The
sidecar always holds the exact key, so nothing depends on reversing the encoding.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import trio

from appliance.config import Config
from appliance.engine.crypto import KeyResolver
from appliance.engine.disks import DiskSet
from appliance.engine.errors import StowageError
from appliance.engine.metadb import MetaDB
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import BucketRecord, ObjectVersion
from appliance.iam.masterkey import MasterKey

from .common import fail, resolve_config, run_guarded

MAX_NAME = 200  # bytes of an encoded component before it is shortened (file systems allow 255)
SAFE = "!$&'()*+,;=@[]~ "  # kept as they are besides letters, digits and _.-


class ExportError(StowageError):
    code = "ExportError"


@dataclass
class ExportReport:
    source: str = ""  # "metadata DB" | "rebuilt from the data disks"
    buckets: int = 0
    objects: int = 0  # files of current versions written
    versions: int = 0  # version files written (--versions)
    delete_markers: int = 0
    bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {bucket, key, version_id, reason}
    failed: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def encode_component(comp: str) -> str:
    if comp in ("", ".", ".."):
        return {"": "%", ".": "%2E", "..": "%2E%2E"}[comp]
    out = quote(comp, safe=SAFE)
    if len(out.encode()) > MAX_NAME:
        digest = hashlib.sha256(comp.encode()).hexdigest()[:16]
        out = out[: MAX_NAME - 20].rstrip("%0123456789ABCDEF") + "%~" + digest
    return out


def key_path(key: str) -> list[str]:
    return [encode_component(c) for c in key.split("/")]


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z")


def sidecar(v: ObjectVersion, is_latest: bool, sha256: str | None) -> dict[str, Any]:
    return {
        "bucket": v.bucket, "key": v.key, "version_id": v.version_id, "is_latest": is_latest,
        "delete_marker": v.delete_marker, "size": v.size, "etag": v.etag,
        "last_modified": _iso(v.last_modified_ns), "content_type": v.content_type, "headers": v.headers,
        "user_metadata": v.user_meta, "tags": v.tags, "checksums": v.checksums, "checksum_type": v.checksum_type,
        "storage_class": v.storage_class, "parts": v.parts, "owner": v.owner, "acl": v.acl,
        "encryption": (v.sse or {}).get("mode", ""),
        "object_lock": {"mode": v.lock_mode, "retain_until": _iso(v.retain_until_ns) if v.retain_until_ns else "",
                        "legal_hold": v.legal_hold},
        "sha256": sha256,
    }


def bucket_doc(b: BucketRecord) -> dict[str, Any]:
    return {"name": b.name, "created": _iso(b.created_ns), "versioning": b.versioning, "owner": b.owner,
            "tags": b.tags, "policy": json.loads(b.policy) if b.policy else None, "acl": b.acl,
            "ownership": b.ownership, "public_access_block": b.public_access_block, "encryption": b.encryption,
            "object_lock": b.object_lock}


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def metadata_copy(cfg: Config, scratch: Path, from_disks: bool, master: MasterKey | None,
                  report: ExportReport) -> Iterator[MetaDB]:
    """A private metadata DB: a copy of the appliance's, or one rebuilt from the disks."""
    meta = scratch / "meta"
    if not from_disks and (cfg.meta_path / "CURRENT").exists():
        shutil.copytree(cfg.meta_path, meta, ignore=shutil.ignore_patterns("LOCK", "staging"))
        try:
            db = MetaDB(meta)
            report.source = "metadata DB"
        except StowageError as exc:
            report.notes.append(f"metadata DB unreadable ({exc.message}): rebuilt from the data disks")
            shutil.rmtree(meta)
            db = _rebuilt(cfg, meta, master, report)
    else:
        if not from_disks:
            report.notes.append(f"no metadata DB at {cfg.meta_path}: rebuilt from the data disks")
        db = _rebuilt(cfg, meta, master, report)
    try:
        yield db
    finally:
        db.close()


def _rebuilt(cfg: Config, meta: Path, master: MasterKey | None, report: ExportReport) -> MetaDB:
    from appliance.engine.recover import recover_metadata
    from appliance.iam.kms import envelope_check

    rec = recover_metadata(replace(cfg, meta_dir=str(meta)), check_envelope=envelope_check(master) if master else None)
    report.source = "rebuilt from the data disks"
    report.notes += [f"rebuild: {n}" for n in rec.not_restored]
    return MetaDB(meta)


class Exporter:
    def __init__(self, store: ObjectStore, dest: Path, resolver: KeyResolver | None, versions: bool,
                 report: ExportReport, progress: Callable[[str, int], None]) -> None:
        self.store, self.dest, self.resolver, self.versions = store, dest, resolver, versions
        self.report, self.progress = report, progress

    def all_versions(self, bucket: str) -> list[tuple[ObjectVersion, bool]]:
        out: list[tuple[ObjectVersion, bool]] = []
        key_marker = vid_marker = ""
        while True:
            page = self.store.list_versions(bucket, key_marker=key_marker, version_id_marker=vid_marker)
            out += page.entries
            if not page.is_truncated:
                return out
            key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker

    async def bucket(self, b: BucketRecord) -> None:
        _write_json(self.dest / f"{b.name}%bucket.json", bucket_doc(b))
        self.report.buckets += 1
        entries = await trio.to_thread.run_sync(self.all_versions, b.name)
        folders = {"/".join(key_path(v.key)[:i]) for v, _ in entries for i in range(1, len(key_path(v.key)))}
        by_key: dict[str, list[tuple[ObjectVersion, bool]]] = {}
        for v, is_latest in entries:
            by_key.setdefault(v.key, []).append((v, is_latest))
        for key, vs in by_key.items():
            rel = "/".join(key_path(key))
            base = self.dest / b.name / (rel + "%" if rel in folders else rel)
            vs.sort(key=lambda e: e[0].seq)  # oldest first
            current = [v for v, is_latest in vs if is_latest and not v.delete_marker]
            if current:
                await self.one(current[0], True, base, count_as="objects")
            if self.versions:
                for n, (v, is_latest) in enumerate(vs, 1):
                    await self.one(v, is_latest, base.with_name(base.name + "%versions") /
                                   f"{n}-{encode_component(v.version_id)}", count_as="versions")

    async def one(self, v: ObjectVersion, is_latest: bool, path: Path, count_as: str) -> None:
        from appliance.iam.objectkeys import protection_of

        where = {"bucket": v.bucket, "key": v.key, "version_id": v.version_id}
        meta_path = path.with_name(path.name + "%meta.json")
        if v.delete_marker:
            _write_json(meta_path, sidecar(v, is_latest, None))
            self.report.delete_markers += 1
            return
        try:
            mode = protection_of(self.store, v).mode
        except StowageError as exc:
            self.report.failed.append(where | {"reason": exc.message})
            return
        if mode == "SSE-C":
            self.report.skipped.append(where | {"reason": "SSE-C: encrypted with a customer key Stowage never stored"})
            return
        if mode and self.resolver is None:
            self.report.skipped.append(where | {"reason": f"{mode}: no master key to decrypt it"})
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + "%partial")
        digest = hashlib.sha256()
        try:
            async with await trio.open_file(tmp, "wb") as f:
                async for piece in self.store.read_object(v, decrypt_with=self.resolver):
                    digest.update(piece)
                    await f.write(piece)
                    self.report.bytes += len(piece)
                    self.progress(v.bucket, len(piece))
        except (StowageError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            reason = exc.message if isinstance(exc, StowageError) else str(exc)
            self.report.failed.append(where | {"reason": reason})
            return
        tmp.replace(path)
        _write_json(meta_path, sidecar(v, is_latest, digest.hexdigest()))
        setattr(self.report, count_as, getattr(self.report, count_as) + 1)


def export_offline(cfg: Config, dest: Path, *, versions: bool = False, from_disks: bool = False,
                   master_key: Path | None = None, buckets: list[str] | None = None,
                   progress: Callable[[str, int], None] = lambda _b, _n: None) -> ExportReport:
    from appliance.diskregistry import daemon_running
    from appliance.engine.recover import find_disks
    from appliance.iam import masterkey
    from appliance.iam.kms import Kms

    if daemon_running(cfg):
        raise ExportError("the daemon is running; stop it first (or copy out through S3)")
    if master_key is not None:
        master: MasterKey | None = masterkey.parse(master_key.read_bytes(), master_key)
    elif cfg.master_key_path.exists() or masterkey.credential_path() is not None:
        master = masterkey.load_or_create(cfg.master_key_path, create=False)
    else:
        master = None
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ExportError(f"{dest} is not empty")
    report = ExportReport()
    if master is None:
        report.notes.append(f"no master key ({cfg.master_key_path}): encrypted objects are skipped")
    with tempfile.TemporaryDirectory(prefix="stowage-export-") as scratch, \
            metadata_copy(cfg, Path(scratch), from_disks, master, report) as db:
        _, found = find_disks(cfg)  # read-only: labels are read, nothing is written to the disks
        store = ObjectStore(replace(cfg, meta_dir=str(Path(scratch) / "meta")), db,
                            DiskSet([d for d, _ in found]), journal=False)
        resolver = Kms(db, master).resolver() if master is not None else None
        exporter = Exporter(store, dest, resolver, versions, report, progress)

        chosen = [b for b in store.list_buckets() if buckets is None or b.name in buckets]
        missing = sorted(set(buckets or ()) - {b.name for b in chosen})
        if missing:  # a mistyped name exported nothing and said "0 buckets", exit 0
            raise StowageError(f"no such bucket: {', '.join(missing)}")

        async def run() -> None:
            for b in chosen:
                await exporter.bucket(b)

        trio.run(run)
    _write_json(dest / "%export.json", asdict(report))
    return report


@click.command("export")
@click.option("--offline", is_flag=True, help="read the data disks directly, the daemon stopped (required)")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=False)
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the installed appliance's config file, instead of DATA_DIR")
@click.option("--versions", is_flag=True, help="every version and delete marker, not only the current ones")
@click.option("--from-disks", is_flag=True, help="ignore the metadata DB and rebuild it from the data disks")
@click.option("--bucket", "buckets", multiple=True, help="only this bucket (repeatable)")
@click.option("--master-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="a master key backup (kms export-master), when the key file is lost")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def export_cmd(offline: bool, data_dir: Path | None, dest: Path, config_path: Path | None, versions: bool,
               from_disks: bool, buckets: tuple[str, ...], master_key: Path | None, as_json: bool) -> None:
    """Write every object of the appliance at DATA_DIR (or --config) to DEST as plain files.

    Each file gets a KEY%meta.json sidecar (metadata, tags, checksums, lock); see the module
    docs for the layout. Works without the metadata DB: it is then rebuilt from the data disks.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    if not offline:
        raise click.UsageError("only --offline is implemented: with the daemon running, copy out through S3")
    if data_dir is None and config_path is None:
        raise click.UsageError("give DATA_DIR (the embedded appliance's directory) or --config FILE")
    cfg = run_guarded(lambda: resolve_config(config_path, data_dir))
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  disable=as_json, transient=True) as bar:
        task = bar.add_task("exporting", total=None)

        def progress(bucket: str, n: int) -> None:
            bar.update(task, advance=n, description=f"exporting {bucket}")

        report: ExportReport = run_guarded(lambda: export_offline(
            cfg, dest, versions=versions, from_disks=from_disks, master_key=master_key,
            buckets=list(buckets) or None, progress=progress))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2, sort_keys=True))
    else:
        click.echo(f"exported {report.objects} objects ({report.bytes} bytes) from {report.buckets} buckets "
                   f"to {dest} (metadata: {report.source})")
        if versions:
            click.echo(f"  {report.versions} versions, {report.delete_markers} delete markers")
        for note in report.notes:
            click.echo(f"  note: {note}")
        for s in report.skipped:
            click.echo(f"  skipped {s['bucket']}/{s['key']} ({s['version_id']}): {s['reason']}")
        for s in report.failed:
            click.echo(f"  FAILED {s['bucket']}/{s['key']} ({s['version_id']}): {s['reason']}")
    if report.failed:
        fail(f"{len(report.failed)} objects could not be read (see {dest}/%export.json)")


commands = [export_cmd]

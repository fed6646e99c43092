"""What docs/metadata-recovery.md says comes back, checked claim by claim on a real daemon (TLS,
the mount): objects packed in volumes (under `volumes.pack_bytes`) and large erasure-coded ones,
SSE-S3 (the shipped default), SSE-C and unencrypted, 0-byte objects, keys with unicode, spaces,
`%` and 1024 bytes, tags, user metadata and content type, several versions and a delete
marker, completed and in-progress multipart uploads, and through the mount files (packed and
large), directories, symlinks, hard links, a FIFO and a rename. The daemon is stopped cleanly,
its DB removed and `recover-metadata` run; after a start everything reads back as before. The
appliance is then used (new versions, deletions, overwrites), killed, its DB moved aside, a new
(ext4: lost+found) SSD "mounted" there and recovered a second time: a recovery's result is as
recoverable as anything else. Without the journal, the doc's table of what the shard headers
alone bring back is checked too."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from diskmgr.durable import fsync_dir
from tests.conftest import DaemonProc
from tests.fuse.conftest import fuse_available

from .recovery_world import SSEC, SSEC_RAW, _pages, _try, _walk, client, db_dump, describe_diff
from .test_recover_everything import _differences

needs_fuse = pytest.mark.skipif(not fuse_available(), reason="/dev/fuse is not usable here")

MIB = 1 << 20
ODD_KEYS = ("ключ/日本語 ✓.txt", "with space/and  two  spaces .txt", "100%/a%20b%2Fc%", "plus+and&amp=?.txt",
            "long/" + "é" * 200 + "x" * 619)  # 1024 bytes of UTF-8: the longest key S3 allows


def _daemon(base: Path, encryption: str) -> DaemonProc:
    from tests.tlscert import self_signed_cert

    cert, key = self_signed_cert(base)
    config = base / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\ndefault_bucket_encryption = "{encryption}"\n')
    d = DaemonProc(base / "data", ["--config", str(config)])
    d.cert = cert  # type: ignore[attr-defined]
    return d


def _body(n: int, seed: int) -> bytes:
    return (seed.to_bytes(4, "big") * (n // 4 + 1))[:n]


def _write(d: DaemonProc) -> None:
    s3 = client(d)
    s3.create_bucket(Bucket="raw")  # the daemon runs with default_bucket_encryption = "none"
    assert _try(s3.get_bucket_encryption, Bucket="raw") == {"error": "ServerSideEncryptionConfigurationNotFoundError"}
    for b in ("enc", "raw"):
        for i, key in enumerate(ODD_KEYS):
            s3.put_object(Bucket=b, Key=key, Body=_body(100 + i, i), ContentType="text/plain; charset=utf-8",
                          Metadata={"idx": str(i)}, Tagging=f"k{i}=v%20{i}")
        s3.put_object(Bucket=b, Key="small", Body=_body(50_000, 1), ContentType="application/x-small",
                      Metadata={"colour": "green"}, Tagging="size=small")
        s3.put_object(Bucket=b, Key="large", Body=_body(3 * MIB + 17, 2), ContentType="application/x-large",
                      Metadata={"colour": "red"}, Tagging="size=large")
        s3.put_object(Bucket=b, Key="empty", Body=b"", ContentType="application/x-empty", Metadata={"e": "1"})
        s3.put_object(Bucket=b, Key="ssec/small", Body=_body(4000, 3), **SSEC)
        s3.put_object(Bucket=b, Key="ssec/large", Body=_body(2 * MIB + 5, 4), **SSEC)
        s3.put_object(Bucket=b, Key="ssec/empty", Body=b"", **SSEC)
        uid = s3.create_multipart_upload(Bucket=b, Key="mp/done", ContentType="video/x-mp",
                                         Metadata={"mp": "done"}, Tagging="mp=1")["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=b, Key="mp/done", UploadId=uid, PartNumber=n,
                                                          Body=body)["ETag"]}
                 for n, body in ((1, _body(5 * MIB, 5)), (2, _body(300, 6)))]
        s3.complete_multipart_upload(Bucket=b, Key="mp/done", UploadId=uid, MultipartUpload={"Parts": parts})
        uid = s3.create_multipart_upload(Bucket=b, Key="mp/open é %", Metadata={"mp": "open"})["UploadId"]
        s3.upload_part(Bucket=b, Key="mp/open é %", UploadId=uid, PartNumber=1, Body=_body(5 * MIB, 7))
        s3.upload_part(Bucket=b, Key="mp/open é %", UploadId=uid, PartNumber=3, Body=_body(10, 8))
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        for i in range(4):
            body = _body(10 + 2 * MIB * (i == 1), 10 + i)  # one of them erasure-coded, not packed
            s3.put_object(Bucket=b, Key="ver/doc ✓", Body=body, Metadata={"v": str(i)})
        s3.delete_object(Bucket=b, Key="ver/doc ✓")  # a delete marker on top
        s3.put_object(Bucket=b, Key="ver/doc ✓", Body=b"after the marker")
        s3.put_object(Bucket=b, Key="ver/gone", Body=b"x")
        s3.delete_object(Bucket=b, Key="ver/gone")
        vids = [v["VersionId"] for v in s3.list_object_versions(Bucket=b, Prefix="ver/doc")["Versions"]]
        s3.delete_object(Bucket=b, Key="ver/doc ✓", VersionId=vids[-1])  # the oldest version removed
        s3.put_object_tagging(Bucket=b, Key="small", Tagging={"TagSet": [{"Key": "retagged", "Value": "yes"}]})

        m = Path(d.mount or "") / b / "fs"
        m.mkdir()
        (m / "dir é").mkdir(mode=0o750)
        (m / "dir é" / "file 100%").write_bytes(_body(30_000, 20))
        (m / "big").write_bytes(_body(2 * MIB + 3, 21))
        (m / "empty").write_bytes(b"")
        os.chmod(m / "big", 0o640)
        os.symlink("dir é/file 100%", m / "link")
        os.link(m / "dir é" / "file 100%", m / "hard")
        os.mkfifo(m / "fifo", 0o600)
        (m / "before").write_bytes(b"renamed")
        os.rename(m / "before", m / "dir é" / "after")
        _fsync_dirs(m / "dir é", m, m.parent)


def _fsync_dirs(*dirs: Path) -> None:
    """The mount's acknowledgement of what was written in them (fusefs/SEMANTICS.md)."""
    for p in dirs:
        fsync_dir(p)


def _dump(d: DaemonProc) -> dict[str, Any]:
    """What a client sees: every version's body, headers, tags and attributes, listings (url
    encoded, with a delimiter), uploads and their parts, and the mount's namespace."""
    s3 = client(d)
    out: dict[str, Any] = {"buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"])}
    for b in out["buckets"]:
        bd: dict[str, Any] = {name: _try(getattr(s3, name), Bucket=b)
                              for name in ("get_bucket_versioning", "get_bucket_encryption")}
        bd["list"] = _pages(s3.list_objects_v2, "Contents", Bucket=b, EncodingType="url")
        bd["prefixes"] = _pages(s3.list_objects_v2, "CommonPrefixes", Bucket=b, Delimiter="/")
        listing = [(v, False) for v in _pages(s3.list_object_versions, "Versions", Bucket=b)]
        listing += [(v, True) for v in _pages(s3.list_object_versions, "DeleteMarkers", Bucket=b)]
        versions = []
        for v, marker in sorted(listing, key=lambda t: (t[0]["Key"], t[0]["VersionId"])):
            entry: dict[str, Any] = {"listed": v, "marker": marker}
            if not marker:
                ident = {"Bucket": b, "Key": v["Key"], "VersionId": v["VersionId"]}
                ssec = v["Key"].startswith("ssec/")
                entry["get"] = _try(s3.get_object, **ident, **(SSEC if ssec else {}))
                entry["head"] = _try(s3.head_object, **ident, **(SSEC if ssec else {}))
                entry["tags"] = _try(s3.get_object_tagging, **ident)
                entry["attributes"] = _try(s3.get_object_attributes, ObjectAttributes=[
                    "ETag", "ObjectParts", "StorageClass", "ObjectSize"], **ident, **(SSEC_RAW if ssec else {}))
            versions.append(entry)
        bd["versions"] = versions
        bd["uploads"] = [{"upload": u, "parts": _try(s3.list_parts, Bucket=b, Key=u["Key"], UploadId=u["UploadId"])}
                         for u in _pages(s3.list_multipart_uploads, "Uploads", Bucket=b)]
        if d.mount:
            bd["mount"] = _walk(Path(d.mount) / b / "fs")
        out[f"bucket {b}"] = bd
    return out


def _check(state: dict[str, Any]) -> None:
    """The dump holds what _write wrote (so that comparing two dumps means something)."""
    assert state["buckets"] == ["enc", "raw"]
    for b, sse in (("enc", "AES256"), ("raw", None)):
        bd = state[f"bucket {b}"]
        gets = {(v["listed"]["Key"], v["listed"]["VersionId"]): v["get"] for v in bd["versions"] if not v["marker"]}
        assert all("error" not in g for g in gets.values()), gets
        s3_keys = sorted(k for k, _ in gets if not k.startswith("fs/"))  # fs/: the mount's
        assert len(s3_keys) == len(ODD_KEYS) + 12, s3_keys  # 7 keys, 4 versions of ver/doc, ver/gone
        assert {k for k, _ in gets} >= set(ODD_KEYS)
        plain = [g for (k, _), g in gets.items() if not k.startswith(("ssec/", "fs/"))]
        assert {g.get("ServerSideEncryption") for g in plain} == {sse}
        assert all(g["SSECustomerAlgorithm"] == "AES256" for (k, _), g in gets.items() if k.startswith("ssec/"))
        markers = sorted(v["listed"]["Key"] for v in bd["versions"] if v["marker"])
        assert markers == ["fs/before", "ver/doc ✓", "ver/gone"]  # fs/before: renamed (versioned bucket)
        assert [(u["upload"]["Key"], [p["PartNumber"] for p in u["parts"]["Parts"]]) for u in bd["uploads"]] == [
            ("mp/open é %", [1, 3])]
        fs = bd["mount"]
        assert fs["dir é/file 100%"]["same_file_as"] == "hard" and fs["hard"]["nlink"] == 2  # walked first
        assert fs["link"]["target"] == "dir é/file 100%" and stat.S_ISFIFO(int(fs["fifo"]["mode"], 8))
        assert fs["big"]["size"] == 2 * MIB + 3 and "before" not in fs and fs["dir é/after"]["size"] == 7


def _use(d: DaemonProc) -> None:
    """Ordinary use after a recovery: it must behave as before one."""
    s3 = client(d)
    for b in ("enc", "raw"):
        s3.put_object(Bucket=b, Key="ver/doc ✓", Body=b"newest", Metadata={"after": "recovery"})
        s3.delete_object(Bucket=b, Key=ODD_KEYS[0])  # a delete marker (versioned now)
        for k in ("small", "large"):
            vid = s3.head_object(Bucket=b, Key=k)["VersionId"]
            s3.delete_object(Bucket=b, Key=k, VersionId=vid)  # a version removed: its data goes
        s3.put_object(Bucket=b, Key="small", Body=_body(60_000, 30), ContentType="text/x-new")
        s3.put_object(Bucket=b, Key="new large", Body=_body(MIB * 3 // 2, 31), **SSEC)
        m = Path(d.mount or "") / b / "fs"
        (m / "dir é" / "file 100%").write_bytes(_body(1000, 32))  # through the hard link too
        os.unlink(m / "fifo")
        (m / "new").write_bytes(b"new file")
        _fsync_dirs(m / "dir é", m)


def _recover_as_before(d: DaemonProc, lost: Any, before: dict[str, Any]) -> None:
    """Recover, check the DB record for record against the lost one, start, and check what a
    client sees against what it saw before."""
    _recover(d)
    diff = describe_diff(lost, db_dump(d.data_dir / "meta"))
    assert not diff, "\n".join(diff[:40])
    d.start()
    after = _dump(d)
    assert after == before, "\n".join(_differences(before, after)[:40])


def _recover(d: DaemonProc) -> dict[str, Any]:
    report = json.loads(d.cli("recover-metadata", "--json").stdout)
    assert report["journal"]["complete"], report
    assert report["not_restored"] == [] and report["versions_added"] == [] and report["versions_dropped"] == []
    return report


def _versions(s3: Any, bucket: str) -> list[tuple[str, str, str, int]]:
    return sorted((v["Key"], v["VersionId"], v["ETag"], v["Size"])
                  for v in s3.list_object_versions(Bucket=bucket).get("Versions", []))


def _recovered_from_headers(d: DaemonProc) -> Any:
    """Stop the daemon, lose the metadata DB and every journal, rebuild from the shard headers
    (recover-metadata, journal incomplete), start again: a new client."""
    d.stop(timeout=30)
    shutil.rmtree(d.data_dir / "meta")
    for journal in d.data_dir.glob("disks/*/journal"):
        shutil.rmtree(journal)
    report = json.loads(d.cli("recover-metadata", "--json").stdout)
    assert not report["journal"]["complete"]
    d.start()
    return client(d)


@needs_fuse
def test_every_promised_kind_of_object_and_file_comes_back(tmp_path: Path) -> None:
    d = _daemon(tmp_path, "AES256")  # the shipped default: new buckets encrypt with SSE-S3
    d.start()
    try:
        client(d).create_bucket(Bucket="enc")
        d.stop(timeout=30)
        d = _daemon(tmp_path, "none")  # same data dir and certificate name, unencrypted buckets now
        d.start()
        _write(d)
        before = _dump(d)
        _check(before)

        d.stop(timeout=30)  # a clean stop
        lost = db_dump(d.data_dir / "meta")
        shutil.rmtree(d.data_dir / "meta")
        _recover_as_before(d, lost, before)

        _use(d)  # then used, killed, and its DB lost again
        before = _dump(d)
        d.kill()
        lost = db_dump(d.data_dir / "meta")
        (d.data_dir / "meta").rename(d.data_dir / "meta.broken")
        (d.data_dir / "meta" / "lost+found").mkdir(parents=True)  # a new SSD mounted there: a fresh ext4
        _recover_as_before(d, lost, before)
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()


@needs_fuse
def test_without_the_journal_what_the_shard_headers_hold_comes_back(tmp_path: Path) -> None:
    """The table of docs/metadata-recovery.md for a journal lost with the DB (no snapshot): single
    PUTs come back from their shard headers (data, size, ETag, version id, encryption; content
    type and tags do not), a bucket that received them comes back versioned as they say, a
    deletion is undone, 0-byte objects and multipart uploads are lost, a file written through the
    mount comes back as a PUT does, and a symlink made there is an object holding its target."""
    d = _daemon(tmp_path, "AES256")
    d.start()
    try:
        s3 = client(d)
        s3.create_bucket(Bucket="hdr")
        s3.put_object(Bucket="hdr", Key="first é %", Body=b"before versioning", ContentType="text/x-first")
        s3.put_bucket_versioning(Bucket="hdr", VersioningConfiguration={"Status": "Enabled"})
        vids = [s3.put_object(Bucket="hdr", Key="doc", Body=_body(n, n), Tagging="t=1")["VersionId"]
                for n in (10, 2 * MIB)]
        vids.append(s3.put_object(Bucket="hdr", Key="ssec", Body=_body(300, 3), **SSEC)["VersionId"])
        s3.delete_object(Bucket="hdr", Key="doc")  # a marker
        s3.put_object(Bucket="hdr", Key="empty", Body=b"")
        uid = s3.create_multipart_upload(Bucket="hdr", Key="mp")["UploadId"]
        s3.upload_part(Bucket="hdr", Key="mp", UploadId=uid, PartNumber=1, Body=b"part")
        m = Path(d.mount or "") / "hdr"
        (m / "file").write_bytes(b"through the mount")
        os.symlink("file", m / "link")
        fd = os.open(m, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        before = {v["VersionId"]: v for v in s3.list_object_versions(Bucket="hdr")["Versions"]}

        d.stop(timeout=30)
        shutil.rmtree(d.data_dir / "meta")
        for journal in d.data_dir.glob("disks/*/journal"):
            shutil.rmtree(journal)
        report = json.loads(d.cli("recover-metadata", "--json").stdout)
        assert report["snapshot"] is None and not report["journal"]["complete"]
        d.start()

        s3 = client(d)
        assert s3.get_bucket_versioning(Bucket="hdr").get("Status") == "Enabled"
        after = {v["VersionId"]: v for v in s3.list_object_versions(Bucket="hdr").get("Versions", [])}
        assert sorted((v["Key"], vid) for vid, v in after.items()) == sorted(
            [("first é %", "null"), ("doc", vids[0]), ("doc", vids[1]), ("ssec", vids[2]),
             ("link", before[next(k for k, v in before.items() if v["Key"] == "link")]["VersionId"]),
             ("file", next(k for k, v in before.items() if v["Key"] == "file" and v["Size"]))])
        assert s3.list_object_versions(Bucket="hdr").get("DeleteMarkers") is None  # the marker is undone
        for vid, v in after.items():
            assert (v["Size"], v["ETag"]) == (before[vid]["Size"], before[vid]["ETag"]), v["Key"]
        got = s3.get_object(Bucket="hdr", Key="doc", VersionId=vids[1])
        assert got["Body"].read() == _body(2 * MIB, 2 * MIB) and got["ServerSideEncryption"] == "AES256"
        assert s3.get_object(Bucket="hdr", Key="ssec", **SSEC)["Body"].read() == _body(300, 3)
        first = s3.get_object(Bucket="hdr", Key="first é %")
        assert first["Body"].read() == b"before versioning" and first["ContentType"] == "binary/octet-stream"
        assert s3.get_object_tagging(Bucket="hdr", Key="doc", VersionId=vids[0])["TagSet"] == []
        assert s3.list_multipart_uploads(Bucket="hdr").get("Uploads") is None
        m = Path(d.mount or "") / "hdr"
        assert (m / "file").read_bytes() == b"through the mount" and not (m / "empty").exists()
        assert not (m / "link").is_symlink() and (m / "link").read_bytes() == b"file"
        new = s3.put_object(Bucket="hdr", Key="first é %", Body=b"a new version")
        assert new["VersionId"] != "null"
        assert len(s3.list_object_versions(Bucket="hdr", Prefix="first")["Versions"]) == 2
        # the bucket starts with the configured default encryption, as a new one does: it came
        # back with none, and new writes there were stored in the clear on an SSE-S3 appliance
        assert new["ServerSideEncryption"] == "AES256"
        rule = s3.get_bucket_encryption(Bucket="hdr")["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()


@needs_fuse
@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_without_the_journal_files_changed_in_place_through_the_mount_come_back(tmp_path: Path,
                                                                                versioned: bool) -> None:
    """The table's row for files changed in place through the mount (patch.py): a small file
    (rewritten whole) and a large one (stored as its changed ranges, spliced into the version
    before) come back from their shard headers with their bytes, size and ETag, the versions
    before them too when the bucket keeps them."""
    d = _daemon(tmp_path, "AES256")
    d.start()
    try:
        s3 = client(d)
        s3.create_bucket(Bucket="inplace")
        if versioned:
            s3.put_bucket_versioning(Bucket="inplace", VersioningConfiguration={"Status": "Enabled"})
        want = {"small": bytearray(_body(300_000, 1)), "large": bytearray(_body(9 * MIB + 5, 2))}
        for key, body in want.items():
            s3.put_object(Bucket="inplace", Key=key, Body=bytes(body))
        m = Path(d.mount or "") / "inplace"
        for key, body in want.items():
            changes = [(100, b"changed"), (len(body) // 2, os.urandom(4096)), (len(body), b"appended")]
            fd = os.open(m / key, os.O_RDWR)
            try:
                for at, data in changes:
                    os.pwrite(fd, data, at)
                    body[at:at + len(data)] = data
                os.fsync(fd)
            finally:
                os.close(fd)
        before = _versions(s3, "inplace")
        assert len(before) == (4 if versioned else 2)
        assert "-" in s3.head_object(Bucket="inplace", Key="large")["ETag"]  # spliced (a composite ETag)

        s3 = _recovered_from_headers(d)
        assert _versions(s3, "inplace") == before
        m = Path(d.mount or "") / "inplace"
        for key, body in want.items():
            assert s3.get_object(Bucket="inplace", Key=key)["Body"].read() == bytes(body), key
            assert (m / key).read_bytes() == bytes(body), key
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()


@needs_fuse
@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_without_the_journal_files_written_in_order_through_the_mount_come_back(tmp_path: Path,
                                                                                versioned: bool) -> None:
    """The table's row for files written in order through the mount: a small file (held in
    memory), a larger one (staged, committed whole at its close) and a large one (streamed to
    the store while written), both as new files and as rewrites from the start of a file a PUT
    made, come back from their shard headers with their version ids, bytes, size and ETag.
    Before the headers named their versions they were lost (a rewrite came back as the PUT)."""
    d = _daemon(tmp_path, "AES256")
    d.start()
    try:
        s3 = client(d)
        s3.create_bucket(Bucket="inorder")
        if versioned:
            s3.put_bucket_versioning(Bucket="inorder", VersioningConfiguration={"Status": "Enabled"})
        sizes = {"small": 40_000, "staged": 3 * MIB + 7, "streamed": 9 * MIB + 5}
        want: dict[str, bytes] = {}
        for i, (name, size) in enumerate(sizes.items()):
            s3.put_object(Bucket="inorder", Key=f"rewritten-{name}", Body=_body(size // 2 + 1, 10 + i))
            want[f"rewritten-{name}"] = _body(size, 20 + i)
            want[f"new-{name}"] = _body(size + 3, 30 + i)
        m = Path(d.mount or "") / "inorder"
        for key, body in want.items():
            fd = os.open(m / key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for at in range(0, len(body), 128 << 10):  # in order, as cp writes
                    os.write(fd, body[at:at + (128 << 10)])
                os.fsync(fd)
            finally:
                os.close(fd)
        # (a versioned bucket also keeps the empty version each new file's creat committed: 0-byte
        # objects are not in the headers, as the table says)
        before = [v for v in _versions(s3, "inorder") if v[3]]
        assert len(before) == (9 if versioned else 6)

        s3 = _recovered_from_headers(d)
        assert _versions(s3, "inorder") == before
        m = Path(d.mount or "") / "inorder"
        for key, body in want.items():
            assert s3.get_object(Bucket="inorder", Key=key)["Body"].read() == body, key
            assert (m / key).read_bytes() == body, key
    finally:
        d.stop(timeout=30) if d.proc and d.proc.poll() is None else d.kill()

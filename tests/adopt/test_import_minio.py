"""`stowage import minio-iam`: MinIO's users, groups, policies and service accounts.

The export zips are built here in MinIO's exact format: the members and JSON shapes its
`ExportIAM` handler writes (cmd/admin-handlers-users.go in minio/minio: `iam-assets/policies.json`
from ListPolicies, `users.json` as madmin.AddOrUpdateUserReq by access key, `groups.json` as
GroupInfo, `svcaccts.json` as madmin.SRSvcAccCreate, `*_mappings.json` as MappedPolicy), with
MinIO's built-in policies (readwrite, readonly, writeonly, diagnostics, consoleAdmin) as
ListPolicies returns them. Hostile zips (a bomb, traversal names, malformed and huge JSON) are
refused or ignored without writing anything."""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.importer.minio_iam import MinioExportError, fetch_export, plan_import, read_export
from tests.conftest import REPO, DaemonProc


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


BUILTIN = {  # MinIO's built-in policies, as its ListPolicies returns them
    "readwrite": _doc({"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}),
    "readonly": _doc({"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetObject"],
                      "Resource": ["arn:aws:s3:::*"]}),
    "writeonly": _doc({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::*"]}),
    "diagnostics": _doc({"Effect": "Allow", "Action": ["admin:ServerTrace", "admin:Profiling", "admin:ServerInfo"],
                         "Resource": ["arn:minio:admin:::*"]}),
    "consoleAdmin": _doc({"Effect": "Allow", "Action": ["admin:*"]}, {"Effect": "Allow", "Action": ["kms:*"]},
                         {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}),
}
TEAM_POLICY = _doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    "Resource": ["arn:aws:s3:::team", "arn:aws:s3:::team/*"]})
SVC_KEY = "U4CCRSWJ62HV3IFWIMA7"
SVC_SECRET = "ZoEoZdLlzVbOlT9rbhD7ZN7TLyiYXSAlB79uGEge"
NO_EXPIRY = "1970-01-01T00:00:00Z"  # MinIO's timeSentinel


def _mapping(policies: str) -> dict[str, Any]:
    return {"version": 1, "policy": policies, "updatedAt": "2026-11-30T10:00:00Z"}


def _svc(parent: str, key: str, secret: str, *, session: Any = None, expiration: str = NO_EXPIRY) -> dict[str, Any]:
    return {"parent": parent, "accessKey": key, "secretKey": secret, "groups": None,
            "claims": {"accessKey": key, "parent": parent}, "sessionPolicy": session, "status": "on",
            "name": "", "description": "", "expiration": expiration}


def minio_files() -> dict[str, Any]:
    return {
        "policies.json": {**BUILTIN, "team-rw": TEAM_POLICY,
                          "bad-resource": _doc({"Effect": "Allow", "Action": ["s3:GetObject"],
                                                "Resource": ["not-an-arn"]})},
        "users.json": {
            "alice": {"secretKey": "alice-secret-123", "status": "enabled"},
            "bob": {"secretKey": "bob-secret-12345", "status": "enabled"},
            "carol": {"secretKey": "carol-secret-123", "status": "disabled"},
            "root": {"secretKey": "whatever-secret", "status": "enabled"},
        },
        "groups.json": {"team": {"version": 1, "status": "enabled", "members": ["bob", "ghost"],
                                 "updatedAt": "2026-11-30T10:00:00Z"},
                        "off": {"version": 1, "status": "disabled", "members": ["alice"],
                                "updatedAt": "2026-11-30T10:00:00Z"}},
        "svcaccts.json": {
            SVC_KEY: _svc("alice", SVC_KEY, SVC_SECRET),
            "NARROWED00000000KEY1": _svc("alice", "NARROWED00000000KEY1", "s" * 40,
                                         session=BUILTIN["readonly"]),
            "EXPIRING0000000KEY02": _svc("bob", "EXPIRING0000000KEY02", "e" * 40,
                                         expiration="2030-01-01T00:00:00Z"),
            "EXPIRED00000000KEY04": _svc("bob", "EXPIRED00000000KEY04", "x" * 40,
                                         expiration="2020-01-01T00:00:00Z"),
            "ROOTSVC00000000KEY03": _svc("minioadmin", "ROOTSVC00000000KEY03", "r" * 40),
            "LDAPSVC00000000KEY05": {**_svc("uid=dave,ou=people,dc=example,dc=org", "LDAPSVC00000000KEY05", "l" * 40),
                                     "claims": {"ldapUser": "uid=dave,ou=people,dc=example,dc=org"}},
            "WIDENS000000000KEY06": _svc("alice", "WIDENS000000000KEY06", "w" * 40,
                                         session=BUILTIN["diagnostics"]),  # admin: actions Stowage refuses
        },
        "user_mappings.json": {"alice": _mapping("readwrite"), "bob": _mapping("readonly"),
                               "carol": _mapping("consoleAdmin,diagnostics")},
        "group_mappings.json": {"team": _mapping("team-rw"), "off": _mapping("consoleAdmin")},
        "stsuser_mappings.json": {"uid=dave,ou=people,dc=example,dc=org": _mapping("readonly")},
    }


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate name, on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name.split("#")[0], data)
    return path


def export_zip(path: Path, files: dict[str, Any]) -> Path:
    return write_zip(path, {f"iam-assets/{n}": json.dumps(v, separators=(",", ":")).encode()
                            for n, v in files.items()})


def reasons(plan_skipped: list[dict[str, str]]) -> dict[str, str]:
    return {s["item"]: s["reason"] for s in plan_skipped}


def test_plan_maps_minio_identities(tmp_path: Path) -> None:
    files, ignored = read_export(export_zip(tmp_path / "minio-iam-info.zip", minio_files()))
    plan = plan_import(files, ignored)
    items = {(it["kind"], it.get("name") or it.get("access_key")): it for it in plan.items}
    why = reasons(plan.skipped)
    # policies: identical built-ins are Stowage's canned ones; readonly grants less in MinIO
    assert ("policy", "readwrite") not in items and ("policy", "writeonly") not in items
    assert json.loads(items[("policy", "minio-readonly")]["document"]) == BUILTIN["readonly"]
    assert json.loads(items[("policy", "team-rw")]["document"]) == TEAM_POLICY
    assert "policy consoleAdmin: MinIO's built-in, Stowage's canned 'admin'" in plan.mapped
    assert "policy readwrite: MinIO's built-in, Stowage's canned 'readwrite'" in plan.mapped
    assert why["policy diagnostics"].startswith("refused by Stowage") and "arn:minio:admin" in why["policy diagnostics"]
    assert why["policy bad-resource"].startswith("refused by Stowage")
    # users, their secrets, status and policies
    assert items[("user", "alice")] == {"kind": "user", "name": "alice", "secret_key": "alice-secret-123",
                                        "enabled": True, "policies": ["readwrite"]}
    assert items[("user", "bob")]["policies"] == ["minio-readonly"]
    assert items[("user", "carol")]["enabled"] is False and items[("user", "carol")]["policies"] == ["admin"]
    assert "not imported" in why["user carol: policy diagnostics"]
    assert "reserved" in why["user root"]
    # groups: members that are users, a disabled group's policies left off
    assert items[("group", "team")]["members"] == ["bob"] and items[("group", "team")]["policies"] == ["team-rw"]
    assert "group team: member ghost" in why
    assert items[("group", "off")]["policies"] == [] and "disabled in MinIO" in why["group off: policies admin"]
    # service accounts: keys of their parent with its limits, or skipped with the reason
    assert items[("key", SVC_KEY)]["user"] == "alice" and items[("key", SVC_KEY)]["secret_key"] == SVC_SECRET
    assert (items[("key", SVC_KEY)]["session_policy"], items[("key", SVC_KEY)]["expires_ns"]) == ("", 0)
    narrowed = items[("key", "NARROWED00000000KEY1")]
    assert narrowed["user"] == "alice" and json.loads(narrowed["session_policy"]) == BUILTIN["readonly"]
    assert items[("key", "EXPIRING0000000KEY02")]["expires_ns"] == 1893456000 * 10**9  # 2030-01-01
    # MinIO's root user's service accounts: keys of a user standing in for it, with the admin policy
    assert items[("key", "ROOTSVC00000000KEY03")]["user"] == "minio-root"
    assert items[("user", "minio-root")] == {"kind": "user", "name": "minio-root", "keyless": True, "enabled": True,
                                             "policies": ["admin"]}
    assert "LDAP/OIDC" in why["service account LDAPSVC00000000KEY05"]
    assert "session policy is refused" in why["service account WIDENS000000000KEY06"]
    assert "choose another with --root-user" in reasons(plan_import(files, root_user="alice").skipped)[
        "service account ROOTSVC00000000KEY03"]
    assert "LDAP/OIDC" in why["STS identity uid=dave,ou=people,dc=example,dc=org"]
    assert [it["kind"] for it in plan.items] == sorted((it["kind"] for it in plan.items),
                                                       key=["policy", "user", "group", "key"].index)


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


@pytest.mark.parametrize("members, message", [
    ({"iam-assets/users.json": b"\0" * (33 << 20)}, "larger than 32 MiB"),  # a zip bomb: ~33 KiB compressed
    ({"iam-assets/users.json": b'{"alice": {"secretKey": '}, "not JSON"),
    ({"iam-assets/users.json": _deep(100_000)}, "not JSON"),
    ({"iam-assets/users.json": b"[1, 2, 3]"}, "expected a JSON object"),
    ({"iam-assets/users.json": json.dumps({f"u{i}": {} for i in range(100_001)}).encode()}, "more than 100000"),
    ({"iam-assets/users.json": b"{}", "iam-assets/users.json#2": b"{}"}, "appears twice"),
    ({"../../etc/passwd": b"{}", "/abs/users.json": b"{}"}, "not a MinIO IAM export"),
    ({f"junk{i}": b"" for i in range(65)}, "65 members"),
])
def test_hostile_exports_are_refused(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    path = write_zip(tmp_path / "hostile.zip", members)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(MinioExportError, match=message):
        read_export(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted


def test_hostile_members_and_entries_are_skipped(tmp_path: Path) -> None:
    with pytest.raises(MinioExportError, match="not a zip"):
        read_export(io.BytesIO(b"PK\3\4 but not really a zip"))
    files = {"users.json": {"ok-user": {"secretKey": "fine-secret-1", "status": "enabled"},
                            "no-secret": {"status": "enabled"}, "typed": ["not", "an", "object"],
                            "bad name!": {"secretKey": "x" * 12}, "ctl\x1b[31m": {"secretKey": "x" * 12},
                            "weird-status": {"secretKey": "x" * 12, "status": 7}},
             "svcaccts.json": {"SVCNOTDICT0000000000": "nope",
                               "MISMATCH000000000000": _svc("ok-user", "OTHER000000000000000", "m" * 40)},
             "groups.json": {"g": {"members": "ok-user"}}, "policies.json": {"p": "not a document"}}
    members = {f"iam-assets/{n}": json.dumps(v).encode() for n, v in files.items()}
    members |= {"iam-assets/../../../tmp/evil.json": b"{}", "iam-assets/extra.json": b"{}"}
    read, ignored = read_export(write_zip(tmp_path / "mixed.zip", members))
    plan = plan_import(read, ignored)
    assert [it["name"] for it in plan.items] == ["ok-user"]
    why = reasons(plan.skipped)
    assert why["user no-secret"] == "no usable secret key in the export"
    assert why["user typed"] == "not a user object" and why["group g"] == "not a group object"
    assert why["user bad name!"].startswith("refused by Stowage")
    assert "\x1b" not in "".join(why) and "user ctl\\x1b[31m" in why  # shown escaped
    assert why["user weird-status"].startswith("unknown status")
    assert why["service account SVCNOTDICT0000000000"] == "not a service account object"
    assert "differs" in why["service account MISMATCH000000000000"]
    assert why["policy p"] == "not a policy document"
    # built-ins left out of an export: those known to grant what a canned one grants are mapped
    plan = plan_import({"users.json": {"user1": {"secretKey": "u1-secret-123"}},
                        "user_mappings.json": {"user1": _mapping("readwrite,consoleAdmin,readonly")}})
    assert plan.items[0]["policies"] == ["admin", "readwrite"]
    assert "no such policy" in reasons(plan.skipped)["user user1: policy readonly"]
    assert "never extracted" in why["zip member iam-assets/../../../tmp/evil.json"]
    assert not Path("/tmp/evil.json").exists()


def _import(d: DaemonProc, *args: str) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "appliance", "import", "minio-iam", "--data", str(d.data_dir),
                        "--json", *args], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _client(d: DaemonProc, ak: str, sk: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def _code(fn: Any) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return str(exc.value.response["Error"]["Code"])


def test_import_into_the_daemon(daemon: DaemonProc, tmp_path: Path) -> None:
    files = minio_files()
    files["users.json"][daemon.access_key] = {"secretKey": "x" * 12, "status": "enabled"}  # Stowage's root key
    path = export_zip(tmp_path / "minio-iam-info.zip", files)
    dry = _import(daemon, str(path), "--dry-run")
    assert dry["dry_run"] and "user alice" in dry["identities"]
    assert json.loads(daemon.cli("user", "list", "--json").stdout) == []  # a dry run writes nothing

    report = _import(daemon, str(path))
    assert "user alice" in report["identities"] and f"access key {SVC_KEY} of user alice " \
        f"(service account {SVC_KEY})" in report["identities"]
    assert "policy team-rw" in report["identities"] and "group team" in report["identities"]
    assert SVC_SECRET not in json.dumps(report) and "alice-secret-123" not in json.dumps(report)
    assert SVC_SECRET not in daemon.log_tail(100_000)  # the audit log of the op redacts secret_key
    root = daemon.s3()
    root.create_bucket(Bucket="team")
    root.put_object(Bucket="team", Key="hello", Body=b"hi")

    alice = _client(daemon, "alice", "alice-secret-123")  # readwrite
    alice.put_object(Bucket="team", Key="by-alice", Body=b"a")
    svc = _client(daemon, SVC_KEY, SVC_SECRET)  # alice's service account: alice's rights
    svc.put_object(Bucket="team", Key="by-svc", Body=b"s")
    bob = _client(daemon, "bob", "bob-secret-12345")  # MinIO's readonly + the team group's team-rw
    assert bob.get_object(Bucket="team", Key="hello")["Body"].read() == b"hi"
    root.create_bucket(Bucket="other")
    assert _code(lambda: bob.put_object(Bucket="other", Key="x", Body=b"x")) == "AccessDenied"
    carol = _client(daemon, "carol", "carol-secret-123")  # disabled in MinIO
    assert _code(lambda: carol.list_buckets()) == "AccessDenied"
    assert _code(lambda: _client(daemon, "alice", "wrong-secret-00").list_buckets()) == "SignatureDoesNotMatch"

    # service accounts with their limits: alice's readwrite narrowed to MinIO's readonly
    narrowed = _client(daemon, "NARROWED00000000KEY1", "s" * 40)
    assert narrowed.get_object(Bucket="team", Key="hello")["Body"].read() == b"hi"
    assert _code(lambda: narrowed.put_object(Bucket="team", Key="n", Body=b"n")) == "AccessDenied"
    expiring = _client(daemon, "EXPIRING0000000KEY02", "e" * 40)  # bob's rights until 2030
    assert expiring.get_object(Bucket="team", Key="hello")["Body"].read() == b"hi"
    assert _code(lambda: _client(daemon, "EXPIRED00000000KEY04", "x" * 40).list_buckets()) == "ExpiredToken"
    rootsvc = _client(daemon, "ROOTSVC00000000KEY03", "r" * 40)  # MinIO root's: the admin policy
    rootsvc.create_bucket(Bucket="by-root-svc")
    shown = json.loads(daemon.cli("key", "show", "EXPIRING0000000KEY02", "--json").stdout)
    assert shown["user"] == "bob" and shown["expires_ns"] == 1893456000 * 10**9
    assert "session policy" in daemon.cli("key", "list", "alice").stdout

    users = {u["user"]: u for u in json.loads(daemon.cli("user", "list", "--json").stdout)}
    assert sorted(users) == ["alice", "bob", "carol", "minio-root"]
    assert users["minio-root"]["policies"] == ["admin"]
    assert [k["access_key"] for k in users["minio-root"]["keys"]] == ["ROOTSVC00000000KEY03"]
    assert "root key" in reasons(report["skipped"])[f"user {daemon.access_key}"]
    assert sorted(k["access_key"] for k in users["alice"]["keys"]) == sorted(["alice", "NARROWED00000000KEY1", SVC_KEY])
    assert users["bob"]["groups"] == ["team"] and users["carol"]["disabled"]
    daemon.cli("key", "revoke", "alice")  # a short MinIO key is managed as any other
    assert _code(lambda: alice.list_buckets()) == "InvalidAccessKeyId"
    daemon.cli("key", "enable", "alice")

    # a re-run converges: nothing new, a changed secret and document taken over
    files["users.json"]["bob"]["secretKey"] = "bob-new-secret-1"
    files["policies.json"]["team-rw"] = _doc({"Effect": "Allow", "Action": ["s3:GetObject"],
                                              "Resource": ["arn:aws:s3:::team/*"]})
    again = _import(daemon, str(export_zip(tmp_path / "again.zip", files)))
    assert "user alice (existed: updated)" in again["identities"]
    assert "policy team-rw (updated: a new default version)" in again["identities"]
    _notification_rules_where_targets_exist(daemon, tmp_path)
    bob2 = _client(daemon, "bob", "bob-new-secret-1")
    assert bob2.get_object(Bucket="team", Key="hello")["Body"].read() == b"hi"
    assert _code(lambda: bob2.put_object(Bucket="team", Key="y", Body=b"y")) == "AccessDenied"


class _AdminAPI(http.server.BaseHTTPRequestHandler):
    body = b""
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        auth = self.headers.get("Authorization", "")
        ok = self.path == "/minio/admin/v3/export-iam" and auth.startswith("AWS4-HMAC-SHA256 Credential=minioadmin/")
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(self.body) if ok else 0))
        self.end_headers()
        if ok:
            self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def admin_api(tmp_path: Path) -> Iterator[str]:
    _AdminAPI.body = export_zip(tmp_path / "served.zip", minio_files()).read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AdminAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def test_export_fetched_from_the_admin_api(admin_api: str) -> None:
    buf = io.BytesIO()
    assert fetch_export(admin_api, "minioadmin", "minioadmin", "us-east-1", True, buf) == len(_AdminAPI.body)
    seen = _AdminAPI.seen[-1]
    assert "/us-east-1/s3/aws4_request" in seen["authorization"] and "x-amz-date" in seen
    buf.seek(0)
    files, _ = read_export(buf)
    assert "alice" in files["users.json"]
    with pytest.raises(MinioExportError, match="HTTP 403"):
        fetch_export(admin_api, "someone", "else", "us-east-1", True, io.BytesIO())


def _notification_rules_where_targets_exist(daemon: DaemonProc, tmp_path: Path) -> None:
    """`import s3` of a MinIO bucket's notification rules: the one whose target exists here is
    kept, the one whose target does not is reported with the gateway's refusal. (Shares this
    module's daemon: a daemon start costs more than the check.)"""
    from appliance.importer.copier import BucketCopier, Clients
    from appliance.importer.cursor import Cursor
    from appliance.importer.ratelimit import RateLimit
    from appliance.importer.report import ImportReport
    from appliance.importer.source import BucketConfig

    daemon.cli("notify", "target", "add", "events", "--type", "file", "--path", str(tmp_path / "events.jsonl"))
    dst = daemon.s3()
    dst.create_bucket(Bucket="notified")
    config = BucketConfig(notification={"QueueConfigurations": [
        {"Id": "here", "QueueArn": "arn:minio:sqs::events:file", "Events": ["s3:ObjectCreated:*"]},
        {"Id": "missing", "QueueArn": "arn:minio:sqs::primary:webhook", "Events": ["s3:ObjectCreated:*"]}]})
    report = ImportReport()
    copier = BucketCopier(Clients(None, dst), "notified", config, Cursor(tmp_path / "cursor.jsonl"), report,
                          RateLimit(0))
    copier.configure()
    got = dst.get_bucket_notification_configuration(Bucket="notified")["QueueConfigurations"]
    assert [(r["Id"], r["QueueArn"]) for r in got] == [("here", "arn:stowage:sqs::events:file")]
    assert report.configuration[-1] == "notified: notification rules (1)"
    assert "notified: notification rule missing" in reasons(report.skipped)


def test_import_items_take_malformed_and_conflicting_items(tmp_path: Path) -> None:
    """The `iam.import` op's items (from the CLI, or anyone on the control socket): each is
    applied on its own or skipped with its reason, and a skipped one writes nothing."""
    from appliance.engine.offline import identity_session
    from appliance.iam import users
    from appliance.iam.imports import import_items
    from appliance.iam.masterkey import load_or_create
    from appliance.iam.sealing import prepare, unseal

    master = load_or_create(tmp_path / "master.key")

    def run(items: list[Any], reserved: tuple[str, ...] = ()) -> dict[str, Any]:
        def fn(view: Any) -> dict[str, Any]:
            prepare(view, master)
            return import_items(view, master, items, set(reserved))

        return identity_session(tmp_path / "meta", fn)

    identity_session(tmp_path / "meta", lambda v: (prepare(v, master), users.create_user(v, "Existing")))
    out = run(["not an item", {"kind": "bucket", "name": "x"}, {"kind": "user", "name": 7},
               {"kind": "user", "name": "existing", "secret_key": "s" * 12},  # another case of Existing
               {"kind": "user", "name": "mallory", "secret_key": "s" * 12, "policies": "readwrite"},
               {"kind": "user", "name": "ROOTKEY0000", "secret_key": "s" * 12},
               {"kind": "key", "access_key": "ORPHAN00000000000000", "user": "nobody", "secret_key": "s" * 12},
               {"kind": "policy", "name": "bad", "document": "{not json"},
               {"kind": "group", "name": "g", "members": ["nobody"], "policies": ["no-such-policy"]},
               {"kind": "user", "name": "dave", "secret_key": "dave-secret-1", "policies": ["readwrite"]},
               {"kind": "key", "access_key": "dave", "user": "Existing", "secret_key": "x" * 12},
               {"kind": "user", "name": "eve", "secret_key": ""},
               {"kind": "key", "access_key": "HOSTILE0000000000001", "user": "dave", "secret_key": "h" * 12,
                "session_policy": '{"Statement": [{"Effect": "Allow", "Action": "*", "Principal": "*"}]}'},
               {"kind": "key", "access_key": "HOSTILE0000000000002", "user": "dave", "secret_key": "h" * 12,
                "expires_ns": "tomorrow"}],
              reserved=("ROOTKEY0000",))
    why = reasons(out["skipped"])
    assert why["not an item"] == "not an identity item" and why["bucket x"] == "not an identity item"
    assert why["user 7"] == "name: expected text"
    assert "another case" in why["user existing"]
    assert why["user mallory"] == "policies: expected a list of names"
    assert "root key" in why["user ROOTKEY0000"]
    assert "not here" in why["access key ORPHAN00000000000000"]
    assert why["policy bad"].startswith("Policies must be valid JSON")
    assert "nobody" in why["group g: member nobody"] and "group g: policy no-such-policy" in why
    assert why["access key dave"] == "access key dave belongs to user dave here"
    assert why["user eve"] == "secret_key: expected 1 to 1024 characters"
    assert why["access key HOSTILE0000000000001"].startswith("session policy:")
    assert why["access key HOSTILE0000000000002"].startswith("expires_ns:")
    assert out["imported"] == ["group g", "user dave"]

    def state(view: Any) -> tuple[list[str], list[str], str]:
        cred = view.credential("dave")
        return sorted(u.name for u in view.users()), sorted(c.access_key for c in view.credentials()), \
            unseal(master, cred)

    names, keys, secret = identity_session(tmp_path / "meta", state)
    assert names == ["Existing", "dave"] and keys == ["dave"] and secret == "dave-secret-1"

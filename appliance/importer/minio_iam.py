"""MinIO's identities, from the zip of `mc admin cluster iam export` (or the same zip fetched from
MinIO's admin API), turned into a plan of identity items for appliance/iam/imports.py.

The format is MinIO's `ExportIAM` handler (cmd/admin-handlers-users.go in minio/minio): a zip
whose members are `iam-assets/<file>`, each one JSON object keyed by name:

    policies.json          {name: policy document}  (MinIO's built-in policies included)
    users.json             {access key: {"secretKey", "status": "enabled"|"disabled"}}
    groups.json            {name: {"version", "status", "members": [...], "updatedAt"}}
    svcaccts.json          {access key: {"parent", "accessKey", "secretKey", "groups", "claims",
                            "sessionPolicy": document|null, "status": "on"|"off", "name",
                            "description", "expiration"}}
    user_mappings.json     {user: {"version", "policy": "p1,p2", "updatedAt"}}
    group_mappings.json    {group: {...the same}}
    stsuser_mappings.json  {LDAP/OIDC identity: {...the same}}

A MinIO user is its access key: it becomes a Stowage user of that name with that access key and
secret (so its clients keep working). A service account becomes an access key of its parent
user with the same limits (appliance/iam/keylimits.py): its session policy (the key may do only
what both its parent's policies and the session policy allow, as in MinIO) and its expiry. A
service account of MinIO's root user becomes a key of the Stowage user `minio-root` (or the one
`--root-user` names), which the import creates with the canned `admin` policy: not of Stowage's
root key, whose principal skips policy evaluation in places (bucket ownership, the admin API,
ROOT_POLICY_ACTIONS) and so could not be narrowed by a session policy, and which is one key from
the config that an imported key must not share the fate of. A service account whose parent is an
LDAP/OIDC identity is skipped with the reason, as is one whose session policy Stowage refuses
(importing it without would widen its rights). Policies are validated as Stowage validates any
policy; MinIO's built-ins whose names Stowage's canned policies take are mapped onto them when
they grant the same, else imported as `minio-NAME`.

The zip is hostile input: only the members above are read, each with a bounded read (a zip bomb
stops at the limit, whatever its header claims), nothing is ever extracted to disk, and every
field is type-checked; an entry that does not fit is skipped with its reason.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from appliance.engine.errors import StowageError
from appliance.iam.canned import CANNED
from appliance.iam.keylimits import MAX_EXPIRES_NS, check_session_policy
from appliance.iam.managed import validate_document
from appliance.iam.naming import check_name, check_user_name

ASSETS = "iam-assets"
FILES = ("policies.json", "users.json", "groups.json", "svcaccts.json", "user_mappings.json",
         "group_mappings.json", "stsuser_mappings.json")
MAX_ZIP_BYTES = 256 << 20
MAX_MEMBER_BYTES = 32 << 20  # one JSON file, uncompressed
MAX_TOTAL_BYTES = 64 << 20
MAX_MEMBERS = 64
MAX_ENTRIES = 100_000  # per file
MAX_SECRET = 1024

CONSOLE_ADMIN = "consoleAdmin"  # MinIO's built-in administrator policy: Stowage's canned `admin`
# MinIO's built-ins that grant what a canned policy grants (MinIO's readonly cannot list: not here)
BUILTIN_AS_CANNED = {"readwrite": "readwrite", "writeonly": "writeonly", CONSOLE_ADMIN: "admin"}
RENAMED_PREFIX = "minio-"
ROOT_USER = "minio-root"  # the default user MinIO's root user's service accounts are imported to
ROOT_POLICY = "admin"  # what MinIO's root may do, as Stowage's canned policy says it
# claims MinIO keeps on a service account of an LDAP or OIDC identity (its root's have none of them)
EXTERNAL_CLAIMS = frozenset({"ldapUser", "ldapUsername", "sub", "iss", "aud"})

Item = dict[str, Any]  # one identity item for appliance/iam/imports.py (JSON over the control socket)


class MinioExportError(ValueError):
    """The export cannot be read at all (not a zip, too large, a file that is not JSON)."""


@dataclass
class Plan:
    """What to import, in order (policies, users, groups, keys), and what is skipped already."""

    items: list[Item] = field(default_factory=list)
    mapped: list[str] = field(default_factory=list)  # MinIO built-ins that are Stowage's canned policies
    skipped: list[dict[str, str]] = field(default_factory=list)
    ignored_members: list[str] = field(default_factory=list)

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append({"item": item, "reason": reason})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for it in self.items:
            out[it["kind"]] = out.get(it["kind"], 0) + 1
        return out


# --- reading the zip ---------------------------------------------------------------------------


def _shown(name: str) -> str:
    """A name from the input, safe to print (hostile names may be long or hold control bytes)."""
    text = name if len(name) <= 80 else name[:77] + "..."
    return text.encode("unicode_escape").decode("ascii")


def read_export(source: Path | BinaryIO) -> tuple[dict[str, Any], list[str]]:
    """The parsed JSON files of the export by file name, and the members that were ignored."""
    if isinstance(source, Path) and source.stat().st_size > MAX_ZIP_BYTES:
        raise MinioExportError(f"{source}: larger than {MAX_ZIP_BYTES >> 20} MiB; not a MinIO IAM export")
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MinioExportError(f"not a zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise MinioExportError(f"{len(infos)} members; a MinIO IAM export has {len(FILES)}")
        wanted = {f"{ASSETS}/{f}": f for f in FILES}
        found: dict[str, Any] = {}
        ignored: list[str] = []
        total = 0
        for info in infos:
            name = wanted.get(info.filename)
            if name is None:
                ignored.append(_shown(info.filename))
                continue
            if name in found:
                raise MinioExportError(f"{info.filename} appears twice")
            data = _bounded_read(zf, info, min(MAX_MEMBER_BYTES, MAX_TOTAL_BYTES - total))
            total += len(data)
            found[name] = _json(info.filename, data)
        if not found:
            raise MinioExportError(f"no {ASSETS}/*.json member: not a MinIO IAM export")
        return found, ignored


def _bounded_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # the header's sizes are the writer's claim: read at most limit+1 bytes whatever it says
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as exc:
        raise MinioExportError(f"{_shown(info.filename)}: unreadable ({exc})") from None
    if len(data) > limit:
        raise MinioExportError(f"{_shown(info.filename)}: larger than {limit >> 20} MiB uncompressed")
    return data


def _json(name: str, data: bytes) -> Any:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MinioExportError(f"{name}: not JSON ({str(exc)[:200]})") from None
    if value is None:  # Go marshals an empty map as {} but a nil one as null
        return {}
    if not isinstance(value, dict):
        raise MinioExportError(f"{name}: expected a JSON object keyed by name")
    if len(value) > MAX_ENTRIES:
        raise MinioExportError(f"{name}: more than {MAX_ENTRIES} entries")
    return value


# --- the plan ----------------------------------------------------------------------------------


def _statements(doc: Mapping[str, Any]) -> list[str]:
    """A policy's statements in a comparable form (order of lists and statements ignored)."""
    stmts = doc.get("Statement", [])
    out = []
    for s in stmts if isinstance(stmts, list) else [stmts]:
        if not isinstance(s, dict):
            return [repr(stmts)]
        norm = {k: (sorted(v) if isinstance(v, list) else [v] if k in ("Action", "Resource") else v)
                for k, v in s.items() if k != "Sid" and v not in ({}, None)}
        out.append(json.dumps(norm, sort_keys=True))
    return sorted(out)


def _map_policy(name: str, doc: Mapping[str, Any]) -> str:
    """The Stowage name a MinIO policy is imported as."""
    if name == CONSOLE_ADMIN:
        return "admin"
    canned = next((c for c in CANNED if c.lower() == name.lower()), None)
    if canned is None:
        return name
    if _statements(doc) == _statements(json.loads(CANNED[canned])):
        return canned
    return RENAMED_PREFIX + name


def _policy_names(text: object) -> list[str]:
    if not isinstance(text, str):
        return []
    return [p.strip() for p in text.split(",") if p.strip()]


def _mappings(files: Mapping[str, Any], name: str, plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for who, mp in files.get(name, {}).items():
        if not isinstance(mp, dict):
            plan.skip(f"{name} {_shown(who)}", "not a policy mapping object")
            continue
        out[who] = _policy_names(mp.get("policy"))
    return out


def _expires_ns(value: object) -> int | None:
    """A service account's expiration in Unix ns (0: never); None if it cannot be read."""
    if _no_expiry(value):
        return 0
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
    return ns if 0 < ns <= MAX_EXPIRES_NS else None


def _no_expiry(value: object) -> bool:
    """MinIO writes the zero time or the Unix epoch (its timeSentinel) for "never expires"."""
    if value in (None, ""):
        return True
    if not isinstance(value, str):
        return False
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.year == 1 or when == datetime(1970, 1, 1, tzinfo=UTC)


def _secret(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_SECRET and value.isprintable():
        return value
    return None


class _Planner:
    def __init__(self, files: Mapping[str, Any], plan: Plan, root_user: str) -> None:
        self.files = files
        self.plan = plan
        self.root_user = root_user
        self.policy_map: dict[str, str] = {}  # MinIO name -> Stowage name, for the ones imported
        self.refused: dict[str, str] = {}  # MinIO name -> why it is not imported
        self.users: set[str] = set()

    def plan_policies(self) -> None:
        for name, doc in sorted(self.files.get("policies.json", {}).items()):
            label = f"policy {_shown(name)}"
            if not isinstance(doc, dict):
                self._refuse(name, label, "not a policy document")
                continue
            target = _map_policy(name, doc)
            if target in CANNED:
                self.policy_map[name] = target
                self.plan.mapped.append(f"{label}: MinIO's built-in, Stowage's canned {target!r}")
                continue
            try:
                check_name(target, "policyName")
                text = validate_document(json.dumps(doc, indent=2))
            except StowageError as exc:
                self._refuse(name, label, f"refused by Stowage: {exc.message}")
                continue
            self.policy_map[name] = target
            self.plan.items.append({"kind": "policy", "name": target, "document": text, "source": name})

    def _refuse(self, name: str, label: str, reason: str) -> None:
        self.refused[name] = reason
        self.plan.skip(label, reason)

    def attachable(self, label: str, names: list[str]) -> list[str]:
        out = []
        for p in names:
            if p in self.policy_map:
                out.append(self.policy_map[p])
            elif p in self.refused:
                self.plan.skip(f"{label}: policy {_shown(p)}", "not attached: the policy was not imported")
            elif p in BUILTIN_AS_CANNED:  # a built-in the export left out, known to grant the same
                out.append(BUILTIN_AS_CANNED[p])
            else:
                self.plan.skip(f"{label}: policy {_shown(p)}", "not attached: no such policy in the export")
        return sorted(set(out))

    def plan_users(self) -> None:
        mapped = _mappings(self.files, "user_mappings.json", self.plan)
        for ak, u in sorted(self.files.get("users.json", {}).items()):
            label = f"user {_shown(ak)}"
            if not isinstance(u, dict):
                self.plan.skip(label, "not a user object")
                continue
            reason = _user_name_problem(ak)
            secret = _secret(u.get("secretKey"))
            status = u.get("status", "enabled")
            if reason is None and secret is None:
                reason = "no usable secret key in the export"
            if reason is None and status not in ("enabled", "disabled"):
                reason = f"unknown status {_shown(str(status))}"
            if reason is not None:
                self.plan.skip(label, reason)
                continue
            self.users.add(ak)
            names = mapped.get(ak, []) + _policy_names(u.get("policy"))
            self.plan.items.append({"kind": "user", "name": ak, "secret_key": secret,
                                    "enabled": status == "enabled", "policies": self.attachable(label, names)})

    def plan_groups(self) -> None:
        mapped = _mappings(self.files, "group_mappings.json", self.plan)
        for name, g in sorted(self.files.get("groups.json", {}).items()):
            label = f"group {_shown(name)}"
            if not isinstance(g, dict) or not isinstance(g.get("members") or [], list):
                self.plan.skip(label, "not a group object")
                continue
            members = g.get("members") or []
            try:
                check_name(name, "groupName")
            except StowageError as exc:
                self.plan.skip(label, f"refused by Stowage: {exc.message}")
                continue
            kept = []
            for m in members:
                if isinstance(m, str) and m in self.users:
                    kept.append(m)
                else:
                    self.plan.skip(f"{label}: member {_shown(str(m))}", "not a user imported from the export")
            policies = self.attachable(label, mapped.get(name, []))
            if g.get("status", "enabled") == "disabled" and policies:
                self.plan.skip(f"{label}: policies {', '.join(policies)}",
                               "the group is disabled in MinIO (its policies granted nothing); Stowage groups "
                               "cannot be disabled, so they are not attached")
                policies = []
            self.plan.items.append({"kind": "group", "name": name, "members": sorted(set(kept)),
                                    "policies": policies})

    def plan_service_accounts(self) -> None:
        keys: list[Item] = []
        for ak, sa in sorted(self.files.get("svcaccts.json", {}).items()):
            label = f"service account {_shown(ak)}"
            try:
                keys.append(self._service_account(ak, sa))
            except _Skip as why:
                self.plan.skip(label, str(why))
        if any(k["user"] == self.root_user for k in keys):  # its user goes before the keys and groups
            at = next((i for i, it in enumerate(self.plan.items) if it["kind"] in ("group", "key")),
                      len(self.plan.items))
            self.plan.items.insert(at, {"kind": "user", "name": self.root_user, "keyless": True, "enabled": True,
                                        "policies": [ROOT_POLICY]})
        self.plan.items += keys

    def _service_account(self, ak: str, sa: object) -> Item:
        if not isinstance(sa, dict):
            raise _Skip("not a service account object")
        problem = _access_key_problem(ak)
        if problem is not None:
            raise _Skip(problem)
        if sa.get("accessKey", ak) != ak:
            raise _Skip("its accessKey differs from its name in the export")
        secret = _secret(sa.get("secretKey"))
        if secret is None:
            raise _Skip("no usable secret key in the export")
        user = self._owner(sa.get("parent"), sa.get("claims"))
        expires_ns = _expires_ns(sa.get("expiration"))
        if expires_ns is None:
            raise _Skip(f"its expiration {_shown(str(sa.get('expiration')))} is not a time Stowage can keep")
        return {"kind": "key", "access_key": ak, "user": user, "secret_key": secret,
                "active": sa.get("status", "on") not in ("off", "disabled"),
                "session_policy": self._session_policy(sa.get("sessionPolicy")), "expires_ns": expires_ns,
                "source": f"service account {_shown(str(sa.get('name') or ak))}"}

    def _owner(self, parent: object, claims: object) -> str:
        """The Stowage user a service account's key belongs to: its parent, or for MinIO's root
        user's service accounts the root user's stand-in."""
        if isinstance(parent, str) and parent in self.users:
            return parent
        external = (isinstance(claims, dict) and not EXTERNAL_CLAIMS.isdisjoint(claims)) or \
            parent in self.files.get("stsuser_mappings.json", {}) or parent in self.files.get("users.json", {})
        if not isinstance(parent, str) or external:
            raise _Skip(f"its parent {_shown(str(parent))} is not a user imported from the export (an LDAP/OIDC "
                        "identity, or a user that was skipped): create a user for it and a key with "
                        "`stowage key create`")
        if self.root_user in self.users:
            raise _Skip(f"its parent {_shown(parent)} is MinIO's root user, whose keys go to the user "
                        f"{self.root_user}, a MinIO user of the export too: choose another with --root-user")
        return self.root_user

    @staticmethod
    def _session_policy(value: object) -> str:
        """The session policy as a document Stowage enforces; "" for none."""
        if value in (None, "", {}):
            return ""
        text = value if isinstance(value, str) else json.dumps(value, indent=2)
        try:
            return check_session_policy(text)
        except StowageError as exc:
            raise _Skip(f"its session policy is refused by Stowage ({exc.message}); imported without it "
                        "the key would get all its parent's rights") from None

    def plan_sts(self) -> None:
        for who in sorted(self.files.get("stsuser_mappings.json", {})):
            self.plan.skip(f"STS identity {_shown(who)}", "an LDAP/OIDC identity's policy mapping: Stowage has no "
                           "external identity provider")


def _access_key_problem(ak: str) -> str | None:
    if not 3 <= len(ak) <= 128 or not ak.isascii() or not ak.isprintable() or any(c in ak for c in " /,="):
        return "its access key cannot be used in a SigV4 credential"
    return None


def _user_name_problem(ak: str) -> str | None:
    try:
        check_user_name(ak)
    except StowageError as exc:
        return f"refused by Stowage: {exc.message}"
    if ak.lower() == "root":
        return "'root' is reserved for the appliance's root key"
    return _access_key_problem(ak)


class _Skip(Exception):
    """A service account that is not imported, with the reason."""


def plan_import(files: Mapping[str, Any], ignored: list[str] | None = None, root_user: str = ROOT_USER) -> Plan:
    """The plan; `root_user`: the Stowage user that gets the keys of MinIO's root user's service
    accounts (created, with the canned `admin` policy, unless a MinIO user takes its name)."""
    check_user_name(root_user)
    plan = Plan(ignored_members=list(ignored or []))
    for name in plan.ignored_members:
        plan.skip(f"zip member {name}", "not a file of a MinIO IAM export: ignored (never extracted)")
    p = _Planner(files, plan, root_user)
    p.plan_policies()
    p.plan_users()
    p.plan_groups()
    p.plan_service_accounts()
    p.plan_sts()
    return plan


def batches(items: list[Item], limit: int = 512 << 10) -> Iterator[list[Item]]:
    """Items in order, in batches whose JSON stays under `limit` bytes (the control socket's
    requests are bounded)."""
    batch: list[Item] = []
    size = 0
    for it in items:
        n = len(json.dumps(it)) + 2
        if batch and size + n > limit:
            yield batch
            batch, size = [], 0
        batch.append(it)
        size += n
    if batch:
        yield batch


# --- MinIO's admin API -------------------------------------------------------------------------

EXPORT_PATH = "/minio/admin/v3/export-iam"


def fetch_export(endpoint: str, access_key: str, secret_key: str, region: str, verify: bool | str,
                 dest: BinaryIO) -> int:
    """GET the export zip from MinIO's admin API (what `mc admin cluster iam export` does: the zip
    comes unencrypted, the request signed with SigV4 by an admin's key) into `dest`; returns its
    size. Raises MinioExportError on an HTTP error or a body over MAX_ZIP_BYTES."""
    import urllib3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = endpoint.rstrip("/") + EXPORT_PATH
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": _EMPTY_SHA256})
    SigV4Auth(Credentials(access_key, secret_key), "s3", region).add_auth(req)
    headers = dict(req.headers.items())
    if verify is False:
        pool = urllib3.PoolManager(cert_reqs="CERT_NONE")
    elif isinstance(verify, str):
        pool = urllib3.PoolManager(ca_certs=verify)
    else:
        pool = urllib3.PoolManager()
    resp = pool.request("GET", url, headers=headers, preload_content=False, timeout=60.0)
    try:
        if resp.status != 200:
            body = resp.read(2000).decode("utf-8", "replace")
            raise MinioExportError(f"{url}: HTTP {resp.status}: {body.strip()[:300]}")
        total = 0
        for chunk in resp.stream(1 << 16):
            total += len(chunk)
            if total > MAX_ZIP_BYTES:
                raise MinioExportError(f"{url}: the export is larger than {MAX_ZIP_BYTES >> 20} MiB")
            dest.write(chunk)
        return total
    finally:
        resp.release_conn()
        pool.clear()


_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

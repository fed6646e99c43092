"""Where administrative changes are seen and handed to the audit log (appliance/audit.py): the
control socket (the CLI), the IAM API, and S3 requests that change a bucket's settings (the
console's S3 and IAM calls come through the same two, marked "console").

"Before" is read before the change runs and "after" once it has: for identities, the user,
group, policy or key the change names, as `stowage user|group|policy show` describes it (None
when it does not exist); for disks their state; for bucket settings the bucket record's fields
that changed; for the other CLI changes the listing of what they change (kms keys, replication
and notification targets, sites, access-log settings). The CLI's changes with the daemon stopped
are recorded by the CLI itself (record_offline, source "cli-offline").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from appliance.control import ControlServer
from appliance.engine import ObjectStore, keys
from appliance.engine.disks import Disk
from appliance.engine.errors import StowageError
from appliance.engine.identity import IdentityView
from appliance.engine.metadb import MetaDB
from appliance.engine.records import BucketRecord, QuotaRecord
from appliance.iam.admin import IdentityAdmin
from appliance.iam.commands import COMMANDS, Env, run_offline
from appliance.iam.masterkey import MasterKey
from appliance.iam.policy import Principal
from appliance.iam.sealing import prepare
from s3gw.exchange import Exchange

from .audit import AuditLog, changed_fields, describe_uid, is_change

log = logging.getLogger("stowage.audit")

Json = Any
Ref = tuple[str, str]  # ("user" | "group" | "policy" | "key", name)
# CLI changes whose state is what a read-only op lists: op prefix -> the read op
_READ_OF = {"kms.key.": "kms.key.list", "replication.target.": "replication.target.list",
            "notify.target.": "notify.target.list", "access-log.set": "access-log.list", "site.": "site.list"}

# S3 operations that change configuration (the object-level ones change data, not settings)
S3_ADMIN_OPS = frozenset({"CreateBucket", "DeleteBucket", "PutBucketLogging"}) | frozenset(
    op for op in ("PutBucketVersioning", "PutBucketAcl", "PutBucketTagging", "DeleteBucketTagging",
                  "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketOwnershipControls",
                  "DeleteBucketOwnershipControls", "PutPublicAccessBlock", "DeletePublicAccessBlock",
                  "PutBucketEncryption", "DeleteBucketEncryption", "PutObjectLockConfiguration",
                  "PutBucketCors", "DeleteBucketCors", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle",
                  "PutBucketReplication", "DeleteBucketReplication", "PutBucketNotificationConfiguration"))
_TARGETS = ("name", "user", "user_name", "group", "policy", "access_key", "disk_id", "path", "bucket", "key_id")


def _target(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={args[k]}" for k in _TARGETS if isinstance(args.get(k), str | int) and args.get(k))


def disk_states(disks: Iterable[Disk]) -> dict[str, Json]:
    """Disks as the audit log shows them."""
    return {d.disk_id: {"state": str(d.state), "pool": d.pool, "path": str(d.path), "reasons": list(d.reasons)}
            for d in disks}


def _cli_refs(op: str, args: Mapping[str, Any]) -> list[Ref]:
    """The identities a `stowage user|key|group|policy` change names."""
    kind = op.partition(".")[0]
    refs: list[Ref] = []

    def add(k: str, v: Any) -> None:
        if isinstance(v, str) and v and (k, v) not in refs:
            refs.append((k, v))

    if kind in ("user", "group", "policy"):
        add(kind, args.get("name"))
    add("user", args.get("user"))
    add("group", args.get("group"))
    add("key", args.get("access_key"))
    for member in [*(args.get("add") or []), *(args.get("remove") or [])]:
        add("user", member)
    return refs


def _iam_refs(action: str, params: Mapping[str, str]) -> list[Ref]:
    """The identities an IAM API call names."""
    refs: list[Ref] = []
    for param, kind in (("UserName", "user"), ("NewUserName", "user"), ("GroupName", "group"),
                        ("NewGroupName", "group"), ("AccessKeyId", "key")):
        if params.get(param):
            refs.append((kind, params[param]))
    if params.get("PolicyArn"):
        refs.append(("policy", params["PolicyArn"].rpartition("/")[2]))
    elif action == "CreatePolicy" and params.get("PolicyName"):
        refs.append(("policy", params["PolicyName"]))
    return refs


def identity_state(view: IdentityView, env: Env, refs: Iterable[Ref]) -> dict[str, Json]:
    """"kind/name" -> its description (the CLI's `show` output), or None when it does not exist."""
    out: dict[str, Json] = {}
    for kind, name in refs:
        try:
            if kind == "key":
                found = [k for k in COMMANDS["key.list"].run(view, env, {}) if k["access_key"] == name]
                desc = found[0] if found else None
            elif kind == "group":
                found = [g for g in COMMANDS["group.list"].run(view, env, {}) if g["group"] == name]
                desc = found[0] if found else None
            else:
                desc = COMMANDS[f"{kind}.show"].run(view, env, {"name": name})
        except StowageError:
            desc = None
        out[f"{kind}/{name}"] = desc
    return out


@dataclass(frozen=True)
class Audited:
    """A change made with the daemon stopped (the CLI's offline path), with the state it acted on."""

    result: Json
    before: Json
    after: Json


def offline_identity_change(view: IdentityView, master: MasterKey, op: str, args: Mapping[str, Any]) -> Audited:
    """`stowage user|key|group|policy` with the daemon stopped: the command (run_offline) with the
    identities it names read before and after, in the same session."""
    env = Env(master, prepare(view, master).account_id)
    refs = _cli_refs(op, args) if is_change(op) else []
    before = identity_state(view, env, refs)
    result = run_offline(view, master, op, dict(args))
    return Audited(result, before, identity_state(view, env, refs))


def record_offline(state_dir: str, op: str, args: dict[str, Any], outcome: str, change: Audited | None) -> None:
    """The audit entry of a CLI change made with the daemon stopped (none for a data directory
    that does not exist: the change failed, and no directory is made for its entry)."""
    if not is_change(op) or not os.path.isdir(state_dir):
        return
    before, after = (change.before, change.after) if change is not None else (None, None)
    if outcome == "ok" and isinstance(before, dict) and isinstance(after, dict):
        before, after = changed_fields(before, after)
    audit = AuditLog.for_state_dir(state_dir)
    try:
        audit.record(source="cli-offline", who=describe_uid(os.getuid()), where=f"pid {os.getpid()}", action=op,
                     target=_target(args), outcome=outcome, before=before,
                     after={"args": args, "result": change.result if change else None, "state": after})
    finally:
        audit.close()


class IamAudit:
    """The IAM API's changes (s3gw.iamapi.ChangeHook), made through the API or the console."""

    def __init__(self, auditor: Auditor) -> None:
        self.auditor = auditor

    def before(self, action: str, params: Mapping[str, str]) -> object:
        return self.auditor.identities_of(_iam_refs(action, params))

    def changed(self, principal: Principal, action: str, params: dict[str, str], remote: str, *, console: bool,
                before: object, outcome: str) -> None:
        args = {k: v for k, v in params.items() if k not in ("Action", "Version")}
        target = params.get("UserName") or params.get("GroupName") or params.get("PolicyArn") or \
            params.get("PolicyName") or ""
        state = self.auditor.identities_of(_iam_refs(action, params))
        before_state = before if isinstance(before, dict) else None
        old, new = changed_fields(before_state, state) if outcome == "ok" and before_state is not None and \
            state is not None else (before_state, state)
        self.auditor.log.record(source="console" if console else "iam", who=principal.arn or "anonymous",
                                where=remote, action=f"iam:{action}", target=target, outcome=outcome,
                                before=old, after={"args": args, "state": new})


class Auditor:
    def __init__(self, log: AuditLog, db: MetaDB) -> None:
        self.log = log
        self.db = db
        self.iam = IamAudit(self)
        # what "before" and "after" are read from, set by the daemon (attach) once it has them
        self.identities: IdentityAdmin | None = None
        self.store: ObjectStore | None = None
        self.control: ControlServer | None = None

    def attach(self, identities: IdentityAdmin, store: ObjectStore, control: ControlServer) -> None:
        self.identities, self.store, self.control = identities, store, control
        control.before_call = self.before_control_call
        control.on_call = self.control_call

    def identities_of(self, refs: list[Ref]) -> dict[str, Json] | None:
        if self.identities is None or not refs:
            return None
        env = Env(self.identities.master, self.identities.account_id)
        return identity_state(self.identities.peek(), env, refs)

    def _disk_ids(self, args: Mapping[str, Any]) -> list[str] | None:
        ids = [v for k in ("disk", "old", "new", "disk_id") if isinstance(v := args.get(k), str) and v]
        return ids or None

    async def _listing(self, op: str) -> Json:
        if self.control is None:
            return None
        for prefix, read in _READ_OF.items():
            if op.startswith(prefix) and read in self.control.handlers:
                async def ignore(progress: dict[str, Any]) -> None:
                    pass

                try:
                    return await self.control.handlers[read]({}, ignore)
                except StowageError:
                    return None
        return None

    def _state(self, op: str, args: Mapping[str, Any]) -> Json:
        """The state a CLI change acts on, read synchronously (identities, quotas, disks)."""
        kind = op.partition(".")[0]
        if kind in ("user", "key", "group", "policy"):
            return self.identities_of(_cli_refs(op, args))
        if op == "quota.set":
            qkind, name = str(args.get("kind", "")), str(args.get("name", ""))
            key = keys.bucket_quota(name) if qkind == "bucket" else keys.user_quota(name)
            rec = self.db.get_record(QuotaRecord, key) if qkind in ("bucket", "user") else None
            return {f"quota/{qkind}/{name}": None if rec is None else {"bytes": rec.max_bytes,
                                                                       "objects": rec.max_objects}}
        if kind == "disks" and self.store is not None:
            ids = self._disk_ids(args)
            return {"disks": disk_states(d for d in self.store.disks if ids is None or d.disk_id in ids)}
        return None

    async def before_control_call(self, op: str, args: dict[str, Any]) -> Json:
        if not is_change(op):
            return None
        try:
            state = self._state(op, args)
            return state if state is not None else await self._listing(op)
        except Exception:  # the audit's reading must never stop the change itself
            log.exception("audit: reading the state before %s failed", op)
            return None

    def control_call(self, op: str, args: dict[str, Any], uid: int, pid: int, result: Any, error: str,
                     before: Json = None) -> None:
        if not is_change(op):
            return
        try:
            state = self._state(op, args)
        except Exception:
            log.exception("audit: reading the state after %s failed", op)
            state = None
        if not error and isinstance(before, dict) and isinstance(state, dict) and not op.startswith("disks."):
            before, state = changed_fields(before, state)
        after: dict[str, Any] = {"args": args, "result": result}
        if state is not None:
            after["state"] = state
        self.log.record(source="cli", who=describe_uid(uid), where=f"pid {pid}", action=op, target=_target(args),
                        outcome=error or "ok", before=before, after=after)

    def observe(self, ex: Exchange) -> None:
        """S3 requests: only successful bucket-setting changes."""
        if ex.op not in S3_ADMIN_OPS or not 200 <= ex.status < 300:
            return
        name = ex.bucket or ex.named_bucket
        rec = self.db.get_record(BucketRecord, keys.bucket(name))
        after = asdict(rec) if rec is not None else None
        before, after = changed_fields(ex.bucket_before, after)
        self.log.record(source=ex.via or "s3", who=ex.principal or "anonymous", where=ex.remote, action=ex.op,
                        target=name, before=before, after=after)

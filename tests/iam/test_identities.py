"""The identity records and their rules (users, keys, groups, managed and inline policies), the
in-memory index the gateway authenticates with, and round 1's plain-text secrets being wrapped
and compacted away. On a real metadata DB through the engine's offline session, no daemon."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from appliance.engine import keys
from appliance.engine.identity import IdentityView, load_state
from appliance.engine.metadb import MetaDB
from appliance.engine.offline import identity_session
from appliance.iam import identities as identities_mod
from appliance.iam import managed, users
from appliance.iam.admin import load_master_key
from appliance.iam.credentials import RootKey
from appliance.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from appliance.iam.identities import Identities, build_index
from appliance.iam.masterkey import MasterKey, MasterKeyError, load_or_create
from appliance.iam.naming import parse_policy_arn
from appliance.iam.policy import AuthzRequest, Principal, authorize, s3_arn
from appliance.iam.sealing import prepare, unseal

T = TypeVar("T")
ROOT = RootKey("ROOTACCESSKEY0000000", "root-secret")


def doc(effect: str, action: str, resource: str = "*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action,
                                                               "Resource": resource}]})


class Appliance:
    def __init__(self, tmp_path: Path) -> None:
        self.meta = tmp_path / "meta"
        self.master: MasterKey = load_or_create(tmp_path / "keys" / "master.key")

    def __call__(self, fn: Callable[[IdentityView], T]) -> T:
        def run(view: IdentityView) -> T:
            prepare(view, self.master)
            return fn(view)

        return identity_session(self.meta, run)

    def identities(self, previous: Identities | None = None) -> Identities:
        db = MetaDB(self.meta)
        try:
            state = load_state(db)
        finally:
            db.close()
        assert state.account is not None
        ids = previous or Identities(state.account, ROOT)
        ids.install(build_index(state, ids.account_id, self.master, ids.index))
        return ids


@pytest.fixture
def app(tmp_path: Path) -> Appliance:
    return Appliance(tmp_path)


def test_user_key_and_group_rules(app: Appliance) -> None:
    app(lambda v: users.create_user(v, "alice"))
    with pytest.raises(EntityAlreadyExists):
        app(lambda v: users.create_user(v, "ALICE"))  # IAM names are unique without regard to case
    for bad in ["", "no spaces", "x" * 65, "é", "a/b", "a\x00b"]:
        with pytest.raises(ValidationError):
            app(lambda v, bad=bad: users.create_user(v, bad))
    with pytest.raises(InvalidInput, match="reserved"):
        app(lambda v: users.create_user(v, "root"))
    with pytest.raises(ValidationError):
        app(lambda v: users.create_user(v, "bob", path="no-slashes"))

    app(lambda v: users.create_key(v, app.master, "alice"))
    app(lambda v: users.create_key(v, app.master, "alice"))
    with pytest.raises(LimitExceeded, match="AccessKeysPerUser: 2"):
        app(lambda v: users.create_key(v, app.master, "alice"))
    with pytest.raises(NoSuchEntity):
        app(lambda v: users.create_key(v, app.master, "nobody"))

    app(lambda v: users.create_group(v, "devs"))
    app(lambda v: users.add_member(v, "devs", "alice"))
    with pytest.raises(NoSuchEntity):
        app(lambda v: users.add_member(v, "devs", "nobody"))
    with pytest.raises(DeleteConflict, match="access keys"):
        app(lambda v: users.delete_user(v, "alice"))
    with pytest.raises(DeleteConflict, match="remove users"):
        app(lambda v: users.delete_group(v, "devs"))
    removed = app(lambda v: users.delete_user(v, "alice", force=True))
    assert len(removed.keys) == 2 and removed.groups == ["devs"]
    assert app(lambda v: (v.credentials(), users.get_group(v, "devs").members)) == ([], [])
    app(lambda v: users.delete_group(v, "devs"))


def test_managed_and_inline_policy_rules(app: Appliance) -> None:
    app(lambda v: users.create_user(v, "alice"))
    app(lambda v: managed.create_policy(v, "p", doc("Allow", "s3:GetObject")))
    with pytest.raises(EntityAlreadyExists):
        app(lambda v: managed.create_policy(v, "readonly", doc("Allow", "s3:*")))  # a canned policy's name
    with pytest.raises(MalformedPolicyDocument, match="Effect"):
        app(lambda v: managed.create_policy(v, "q", '{"Version":"2012-10-17","Statement":[{"Action":"s3:*"}]}'))
    with pytest.raises(MalformedPolicyDocument):
        app(lambda v: managed.create_policy(v, "q", '{"Statement": {"Effect": "Allow"'))
    huge = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b{i}/*"}
        for i in range(400)]})
    with pytest.raises(LimitExceeded, match="PolicySize"):
        app(lambda v: managed.create_policy(v, "q", huge))

    for i in range(4):
        app(lambda v, i=i: managed.create_version(v, "p", doc("Allow", f"s3:Get{i}*"), set_default=False))
    with pytest.raises(LimitExceeded, match="5 versions"):
        app(lambda v: managed.create_version(v, "p", doc("Allow", "s3:*"), set_default=True))
    with pytest.raises(DeleteConflict, match="default version"):
        app(lambda v: managed.delete_version(v, "p", "v1"))
    app(lambda v: managed.delete_version(v, "p", "v3"))
    v6 = app(lambda v: managed.create_version(v, "p", doc("Allow", "s3:*"), set_default=True))
    assert v6.version_id == "v6"  # version ids are never reused
    assert app(lambda v: managed.get_policy(v, "p")).default_version == "v6"

    with pytest.raises(UnmodifiableEntity):
        app(lambda v: managed.create_version(v, "admin", doc("Allow", "*"), set_default=True))
    app(lambda v: managed.attach(v, "user", "alice", "p"))
    with pytest.raises(DeleteConflict, match="attached"):
        app(lambda v: managed.delete_policy(v, "p"))
    with pytest.raises(NoSuchEntity):
        app(lambda v: managed.detach(v, "user", "alice", "readonly"))
    for i in range(9):
        app(lambda v, i=i: managed.create_policy(v, f"extra{i}", doc("Allow", "s3:GetObject")))
        app(lambda v, i=i: managed.attach(v, "user", "alice", f"extra{i}"))
    with pytest.raises(LimitExceeded, match="PoliciesPerUser: 10"):
        app(lambda v: managed.attach(v, "user", "alice", "readonly"))

    app(lambda v: managed.put_inline(v, "user", "alice", "own", doc("Deny", "s3:DeleteBucket")))
    assert app(lambda v: managed.list_inline(v, "user", "alice")) == ["own"]
    with pytest.raises(NoSuchEntity):
        app(lambda v: managed.get_inline(v, "user", "alice", "other"))
    removed = app(lambda v: managed.delete_policy(v, "p", force=True))
    assert removed.detached_from == ["user/alice"]

    account = app(lambda v: v.account()).account_id
    assert parse_policy_arn("arn:aws:iam::aws:policy/readonly", account).canned
    assert parse_policy_arn(f"arn:aws:iam::{account}:policy/team/x", account).path == "/team/"
    for bad in ["arn:aws:iam::999999999999:policy/x", "arn:aws:iam::aws:policy/nonesuch"]:
        with pytest.raises(NoSuchEntity):
            parse_policy_arn(bad, account)
    with pytest.raises(ValidationError):
        parse_policy_arn("arn:aws:s3:::bucket/whatever", account)


def _setup(view: IdentityView, master: MasterKey) -> dict[str, Any]:
    users.create_user(view, "alice")
    users.create_user(view, "bob")
    users.create_group(view, "readers")
    users.add_member(view, "readers", "alice")
    managed.attach(view, "group", "readers", "readonly")
    managed.put_inline(view, "user", "alice", "nodelete", doc("Deny", "s3:DeleteObject"))
    a_cred, a_secret = users.create_key(view, master, "alice")
    b_cred, b_secret = users.create_key(view, master, "bob")
    return {"alice": (a_cred.access_key, a_secret), "bob": (b_cred.access_key, b_secret)}


def _allowed(ids: Identities, principal: Principal, action: str, resource: str) -> bool:
    return authorize(AuthzRequest(principal, action, resource), ids.identity_policies(principal), None).allowed


def test_index_authenticates_and_gathers_policies(app: Appliance) -> None:
    made = app(lambda v: _setup(v, app.master))
    ids = app.identities()
    ak, secret = made["alice"]
    found = ids.authenticate(ak)
    assert found is not None and found[0] == secret
    alice = found[1]
    assert alice.kind == "user" and alice.name == "alice" and alice.account == ids.account_id
    assert alice.user_id.startswith("AIDA") and len(alice.canonical_id) == 64
    assert ids.authenticate(ROOT.access_key) == (ROOT.secret_key, ids.root)
    assert ids.authenticate("STWNOSUCHKEY00000000") is None
    assert ids.refusal("STWNOSUCHKEY00000000") == "InvalidAccessKeyId"

    # readonly through the group, the inline Deny, nothing for bob
    assert _allowed(ids, alice, "s3:GetObject", s3_arn("b", "k"))
    assert not _allowed(ids, alice, "s3:PutObject", s3_arn("b", "k"))
    assert not _allowed(ids, alice, "s3:DeleteObject", s3_arn("b", "k"))
    bob = ids.principal_for_user("bob")
    assert bob is not None and ids.identity_policies(bob) == ()
    assert not _allowed(ids, bob, "s3:GetObject", s3_arn("b", "k"))
    assert ids.identity_policies(ids.root) == () and ids.identity_policies(Principal.anonymous(ids.account_id)) == ()
    assert _allowed(ids, ids.root, "s3:DeleteBucket", s3_arn("b"))

    assert ids.principal_by_canonical_id(alice.canonical_id) == alice
    assert ids.principal_by_canonical_id(ids.root.canonical_id) == ids.root
    assert ids.display_name(alice.canonical_id) == "alice" and ids.display_name(ids.root.canonical_id) == "root"
    assert ids.principal_by_canonical_id("0" * 64) is None and ids.display_name("0" * 64) == ""

    # a deleted and re-created user is a new identity: the old principal gets nothing
    app(lambda v: users.delete_user(v, "alice", force=True))
    app(lambda v: users.create_user(v, "alice"))
    app(lambda v: managed.attach(v, "user", "alice", "readwrite"))
    ids = app.identities(ids)
    assert ids.authenticate(ak) is None
    assert ids.identity_policies(alice) == ()
    assert ids.principal_for_user("alice") != alice


def test_disabled_users_and_inactive_keys(app: Appliance) -> None:
    made = app(lambda v: _setup(v, app.master))
    (a_key, _), (b_key, _) = made["alice"], made["bob"]
    app(lambda v: users.set_user_disabled(v, "alice", True))
    app(lambda v: users.set_key_active(v, b_key, False))
    ids = app.identities()
    assert ids.authenticate(a_key) is None and ids.refusal(a_key) == "AccessDenied"
    assert ids.authenticate(b_key) is None and ids.refusal(b_key) == "InvalidAccessKeyId"
    app(lambda v: users.set_user_disabled(v, "alice", False))
    app(lambda v: users.set_key_active(v, b_key, True))
    ids = app.identities(ids)
    assert ids.authenticate(a_key) is not None and ids.authenticate(b_key) is not None


def test_authentication_is_in_memory(app: Appliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """No DB read and no unwrap per request; a rebuild unwraps only what changed."""
    made = app(lambda v: _setup(v, app.master))
    ids = app.identities()
    unwrapped: list[str] = []
    real = identities_mod.unseal

    def counting(master: MasterKey, rec: Any) -> str:
        unwrapped.append(rec.access_key)
        return real(master, rec)

    monkeypatch.setattr(identities_mod, "unseal", counting)
    for _ in range(1000):
        assert ids.authenticate(made["alice"][0]) is not None  # the DB is closed: memory only
    assert unwrapped == []
    app(lambda v: users.create_user(v, "carol"))
    carol = app(lambda v: users.create_key(v, app.master, "carol"))[0].access_key
    ids = app.identities(ids)
    assert unwrapped == [carol]


def test_a_stored_policy_that_no_longer_parses_denies_everything(app: Appliance) -> None:
    made = app(lambda v: _setup(v, app.master))

    def corrupt(view: IdentityView) -> None:
        group = users.get_group(view, "readers")
        group.inline["broken"] = '{"Version": "2012-10-17", "Statement": "not a statement"}'
        view.put_group(group)  # as another tool might have stored it, bypassing validation

    app(corrupt)
    ids = app.identities()
    found = ids.authenticate(made["alice"][0])
    assert found is not None
    assert not _allowed(ids, found[1], "s3:GetObject", s3_arn("b", "k"))


def test_round1_plaintext_secret_is_wrapped_and_compacted_away(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    secret = "Round1PlainTextSecretValue0123456789abcd"
    db = MetaDB(meta)
    db.db.put(keys.credential("STWROUNDONE000000000"), b'\x01{"access_key":"STWROUNDONE000000000","secret_key":"'
              + secret.encode() + b'","user":"old","created_ns":1,"active":true}', sync=True)
    db.db.put(keys.user("old"), b'\x01{"name":"old","created_ns":1,"admin":true}', sync=True)
    db.close()
    assert any(secret.encode() in p.read_bytes() for p in meta.iterdir() if p.is_file())

    app = Appliance(tmp_path)
    app(lambda v: None)
    files = [p for p in meta.iterdir() if p.is_file()]
    assert not any(secret.encode() in p.read_bytes() for p in files)
    db = MetaDB(meta)
    try:
        raw = db.get(keys.credential("STWROUNDONE000000000"))
        assert raw is not None and raw[0] == 3  # re-wrapped into the current format
        assert db.get(keys.SNAPSHOTS_HOLD_PLAINTEXT) == b"1"
    finally:
        db.close()
    cred = app(lambda v: v.credential("STWROUNDONE000000000"))
    assert cred is not None and unseal(app.master, cred) == secret
    ids = app.identities()
    found = ids.authenticate("STWROUNDONE000000000")
    assert found is not None and found[0] == secret
    assert _allowed(ids, found[1], "iam:CreateUser", "arn:aws:iam::1:user/x")  # round 1's admin flag: canned admin


def test_master_key_is_not_regenerated_over_wrapped_secrets(app: Appliance, tmp_path: Path) -> None:
    app(lambda v: _setup(v, app.master))
    missing = tmp_path / "elsewhere" / "master.key"
    with pytest.raises(MasterKeyError, match="no master key"):
        identity_session(app.meta, lambda v: load_master_key(missing, v))
    assert not missing.exists()

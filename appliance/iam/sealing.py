"""Secrets at rest: an access key's secret is stored wrapped by the appliance master key, bound to
its access key (a wrapped secret moved to another record does not unwrap), and only ever
unwrapped in memory, when the identity index is built.

`prepare` runs before anything else touches the identity records, at daemon start and in every
offline `stowage user|key|group|policy` command: it creates the account on first use and
re-wraps the plain-text secrets round 1 stored (CredentialRecord format 1); the engine then
compacts them out of the LevelDB files and replaces the snapshots that hold them
(appliance/engine/identity.py).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import replace

from appliance.engine.errors import FormatError
from appliance.engine.identity import IdentityView
from appliance.engine.records import AccountRecord, CredentialRecord

from .masterkey import MasterKey
from .naming import new_account_id, new_canonical_id

CONTEXT = b"iam-secret:"


def seal(master: MasterKey, access_key: str, secret: str) -> str:
    return base64.b64encode(master.wrap(secret.encode(), CONTEXT + access_key.encode())).decode()


def unseal(master: MasterKey, rec: CredentialRecord) -> str:
    try:
        blob = base64.b64decode(rec.wrapped_secret, validate=True)
    except binascii.Error:
        raise FormatError(f"access key {rec.access_key}: damaged wrapped secret") from None
    return master.unwrap(blob, CONTEXT + rec.access_key.encode()).decode()


def ensure_account(view: IdentityView) -> AccountRecord:
    """The appliance's account (its id and the root's canonical id), created on first use."""
    found = view.account()
    if found is not None:
        return found
    rec = AccountRecord(new_account_id(), new_canonical_id(), time.time_ns())
    view.put_account(rec)
    return rec


def rewrap_plaintext(view: IdentityView, master: MasterKey) -> int:
    """Wrap every secret still stored in plain text; returns how many were."""
    n = 0
    for rec in view.credentials():
        if rec.legacy_secret:
            view.put_credential(replace(rec, wrapped_secret=seal(master, rec.access_key, rec.legacy_secret),
                                        legacy_secret=""))
            n += 1
    return n


def prepare(view: IdentityView, master: MasterKey) -> AccountRecord:
    account = ensure_account(view)
    rewrap_plaintext(view, master)
    return account


def rewrap_all(view: IdentityView, master: MasterKey) -> int:
    """Re-wrap every secret not wrapped by the master key's current key (`rotate-master`);
    returns how many were."""
    n = 0
    for rec in view.credentials():
        if rec.wrapped_secret and not master.wrapped_by_current(base64.b64decode(rec.wrapped_secret)):
            view.put_credential(replace(rec, wrapped_secret=seal(master, rec.access_key, unseal(master, rec))))
            n += 1
    return n

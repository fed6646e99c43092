"""The daemon's identity service: every change to the identity records (the IAM API, the control
socket) goes through `IdentityAdmin.write`, one at a time, and the gateway's in-memory index
(`Identities`) is rebuilt before the change is answered, so a key created by one request
authenticates the next.

Start-up (`IdentityAdmin.open`): the master key is loaded (created on first use only while no
secret is wrapped yet: a missing key file must not silently orphan every stored secret), the
account is created on first use and round-1 plain-text secrets are re-wrapped (sealing.prepare),
then the index is built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from appliance.engine.identity import IdentityStore, IdentityView
from appliance.engine.storecore import StoreCore

from .credentials import RootKey
from .identities import Identities, Index, build_index
from .masterkey import MasterKey, load_or_create
from .sealing import prepare

T = TypeVar("T")


def load_master_key(path: Path, view: IdentityView) -> MasterKey:
    """The master key; generated when absent only if nothing stored was wrapped by one (no
    wrapped secret, and no mark of a master key: encrypted objects, KMS keys)."""
    fresh = not view.master_mark() and not any(c.wrapped_secret for c in view.credentials())
    return load_or_create(path, create=fresh)


class IdentityAdmin:
    def __init__(self, store: IdentityStore, master: MasterKey, identities: Identities) -> None:
        self.store = store
        self.master = master
        self.identities = identities
        self._lock = trio.Lock()  # one change and its index rebuild at a time

    @classmethod
    async def open(cls, core: StoreCore, root_key: RootKey, master_key_path: Path) -> IdentityAdmin:
        store = IdentityStore(core)
        master = await trio.to_thread.run_sync(load_master_key, master_key_path, store.peek())
        account, _ = await store.write(lambda view: prepare(view, master))
        admin = cls(store, master, Identities(account, root_key))
        await admin.refresh()
        return admin

    @property
    def account_id(self) -> str:
        return self.identities.account_id

    def peek(self) -> IdentityView:
        """What is committed, for a quick lookup on the loop."""
        return self.store.peek()

    async def read(self, fn: Callable[[IdentityView], T]) -> T:
        return await self.store.read(fn)

    async def write(self, fn: Callable[[IdentityView], T]) -> T:
        """Run fn(view) (in a worker thread), commit what it wrote, and rebuild the index if
        anything changed; fn raising changes nothing."""
        async with self._lock:
            result, changed = await self.store.write(fn)
            if changed:
                await self.refresh()
            return result

    async def refresh(self) -> None:
        previous = self.identities.index

        def build() -> Index:
            return build_index(self.store.load(), self.account_id, self.master, previous)

        index = await trio.to_thread.run_sync(build)
        self.identities.install(index)

"""`stowage kms rotate-master`: a new master key, and every secret it wraps re-wrapped with it,
without rewriting object data. Runs in the daemon (control op "kms.rotate-master").

1. A new key is added to the ring and made current (saved first: every later state is readable
   with the ring on disk), and the rotation is recorded (`X rotate-master`, MasterRotation).
2. secrets: the KMS keys' material and the other kinds of secret wrapped by the master key
   (the `rewrappers`, e.g. IAM secret keys) are re-wrapped.
3. segments: every SSE-S3 envelope, in segment-id order from a persisted cursor, in its shard
   headers (a packed shard: appended again with it) and then its record
   (engine/keystore.replace_envelopes). SSE-KMS and SSE-C data keys
   are wrapped by other keys and stay as they are.
4. finish: wait until no write holds a data key wrapped by an old master key (such a write
   commits its envelope after the scan may have passed it), sweep the segments once more, take
   a fresh metadata snapshot (older ones hold secrets wrapped by the old keys), and retire the
   old keys from the ring.

Interrupted anywhere (crash, restart, ^C of the CLI), the next `rotate-master` resumes the
recorded rotation with the same new key; until it finishes, the ring keeps the old keys and
everything stays readable.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from appliance.engine import keystore
from appliance.engine.progress import MASTER_ROTATION, MasterRotation
from appliance.engine.upkeep import UpkeepStore

from .kms import Kms
from .masterkey import MasterKey, MasterKeyError

BATCH = 512  # segment records scanned per step (one header rewrite round and one commit)
WAIT_POLL = 0.2

# A kind of secret wrapped by the master key (besides the KMS keys' material): re-wraps every one
# not wrapped by master.current and returns how many it re-wrapped (idempotent).
MasterRewrap = Callable[[MasterKey], Awaitable[int]]
Emit = Callable[[dict[str, Any]], Awaitable[None]]


async def _nothing(_progress: dict[str, Any]) -> None:
    return None


def _progress(state: MasterRotation, total: int, waiting: int = 0) -> dict[str, Any]:
    return {"phase": state.phase, "new_key": state.new_key, "done": state.scanned, "total": total,
            "rewrapped": state.rewrapped, "waiting_writes": waiting}


async def rotate_master(kms: Kms, store: UpkeepStore, *, rewrappers: Sequence[MasterRewrap] = (),
                        snapshot: Callable[[], Awaitable[object]] | None = None,
                        emit: Emit = _nothing) -> dict[str, Any]:
    """Rotate (or resume rotating) the master key; returns the final progress, with the retired keys."""
    master = kms.master
    if master.path is None:
        raise MasterKeyError("the master key comes from a systemd credential: rotate it by replacing the credential")
    state = store.load_progress(MasterRotation, MASTER_ROTATION)
    if state is None:
        retiring = list(master.entries)
        state = MasterRotation(master.add_key(), retiring, started_ns=time.time_ns())
        master.save()
        store.save_progress(MASTER_ROTATION, state, sync=True)
    elif master.current != state.new_key:
        if state.new_key not in master.entries:
            raise MasterKeyError(f"a rotation to master key {state.new_key} was started, and the key ring at "
                                 f"{master.path} no longer has that key")
        master.current = state.new_key
        master.save()
    total = await trio.to_thread.run_sync(keystore.count_segments, store.db)

    if state.phase == "secrets":
        state.rewrapped += await _secrets(kms, master, rewrappers)
        state.phase, state.cursor, state.scanned = "segments", "", 0
        store.save_progress(MASTER_ROTATION, state, sync=True)
    if state.phase == "segments":
        await _sweep(kms, store, state, total, emit)
        state.phase, state.cursor, state.scanned = "finish", "", 0
        store.save_progress(MASTER_ROTATION, state, sync=True)

    while (waiting := kms.writes_in_flight(set(state.old_keys))) > 0:
        await emit(_progress(state, total, waiting))
        await trio.sleep(WAIT_POLL)
    await _sweep(kms, store, state, total, emit)  # what those writes (and any missed) committed
    state.rewrapped += await _secrets(kms, master, rewrappers)
    if snapshot is not None:
        await snapshot()
    for key_id in state.old_keys:
        master.retire(key_id)
    master.save()
    keystore.set_master_mark(store.db, master.current)
    await trio.to_thread.run_sync(store.drop_progress, MASTER_ROTATION)
    return dict(_progress(state, total), phase="done", retired=state.old_keys)


async def _secrets(kms: Kms, master: MasterKey, rewrappers: Sequence[MasterRewrap]) -> int:
    n = kms.rewrap_material(master)
    for rewrap in rewrappers:
        n += await rewrap(master)
    return n


async def _sweep(kms: Kms, store: UpkeepStore, state: MasterRotation, total: int, emit: Emit) -> None:
    """Re-wrap the SSE-S3 envelopes of every segment after state.cursor, saving the cursor."""
    while True:
        recs, last, scanned = await trio.to_thread.run_sync(keystore.encrypted_segments_after, store.db,
                                                            state.cursor, BATCH)
        if recs:
            state.rewrapped += await keystore.replace_envelopes(store, recs, kms.rewrap_envelope)
        state.cursor = last
        state.scanned += scanned
        await trio.to_thread.run_sync(store.save_progress, MASTER_ROTATION, state)
        await emit(_progress(state, total))
        if scanned < BATCH:
            return

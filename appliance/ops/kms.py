"""Control ops of the built-in KMS (registered by the daemon):

    kms.key.create {"name", "description"}   -> key info      (and kms.key.list / describe /
    kms.key.disable / enable / rotate {"name"}  -> key info       disable / enable / rotate)
    kms.rotate-master {}                     re-wrap everything with a new master key; streams
                                             progress -> {"phase": "done", "retired": [...], ...}

A KMS key's material exists only in the metadata DB (wrapped by the master key); like every
commit, a change to the keys is in the metadata journal on the data disks before it is
acknowledged, so `recover-metadata` brings the key back with the objects it protects.

The same key operations run offline (daemon stopped) from the CLI on an engine session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from appliance.control import ControlServer, Emit
from appliance.engine.errors import StowageError
from appliance.engine.objectstore import ObjectStore
from appliance.iam.kms import OPS, Kms, KmsOp
from appliance.iam.rotation import MasterRewrap, rotate_master


class RotationRunning(StowageError):
    """A master-key rotation is already running."""

    code = "RotationRunning"


def register(control: ControlServer, kms: Kms, store: ObjectStore, snapshot: Callable[[], Awaitable[object]],
             rewrappers: Sequence[MasterRewrap] = ()) -> None:
    for op, fn in OPS.items():

        async def handler(args: dict[str, Any], emit: Emit, fn: KmsOp = fn) -> Any:
            return fn(kms, args)

        control.register(op, handler)

    running = trio.Lock()

    async def rotate(args: dict[str, Any], emit: Emit) -> Any:
        if running.locked():
            raise RotationRunning("a master-key rotation is already running; wait for it")
        async with running:
            return await rotate_master(kms, store, rewrappers=rewrappers, snapshot=snapshot, emit=emit)

    control.register("kms.rotate-master", rotate)

"""What a commit changed, told to the services that turn it into events (notifications,
replication) inside the same commit.

A transaction (storecore.Txn) records each version it adds, removes or changes in place as a
`Change`. Before the batch is written, the store calls every registered `TxnHook` with the
transaction, still under the commit lock: a hook adds its own writes (queue entries) to the same
batch, so an event exists exactly when the write that caused it does, and can register a callback
for when that commit is durable (`Txn.on_durable`) — nothing is delivered before.

Why a change happened is not the engine's to know: the frontend says it with `caused_by` (a
context variable set around the call into the store, inherited by the tasks it starts): the S3
event name (Copy, CompleteMultipartUpload, ObjectTagging:Put, LifecycleExpiration:Delete...), who
asked, and — for a replication target — that the write is a replica, with the version id it keeps.
Writes with no cause (the mount's) are plain Put / Delete events.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .records import ObjectVersion

if TYPE_CHECKING:
    from .storecore import Txn

PUT = "put"  # a new version (or delete marker) was added
REMOVE = "remove"  # a version was removed for good
IN_PLACE = "in-place"  # a version's tags or ACL changed (no new version)


@dataclass(frozen=True)
class Change:
    kind: str
    version: ObjectVersion


@dataclass(frozen=True)
class Cause:
    """Why the store is being called. `created`: the ObjectCreated event name of a new version
    ("Put", "Post", "Copy", "CompleteMultipartUpload"); `event`: an explicit event name for the
    changes (e.g. "ObjectTagging:Put", "LifecycleExpiration:Delete"), used for in-place changes
    and removals; `replica_version_id`: this write is a replica arriving from a replicating
    source (authorized with s3:ReplicateObject/ReplicateDelete) and keeps that version id."""

    created: str = "Put"
    event: str = ""
    principal: str = ""
    source_ip: str = ""
    request_id: str = ""
    replica: bool = False
    replica_version_id: str = ""


TxnHook = Callable[["Txn"], None]
_cause: contextvars.ContextVar[Cause | None] = contextvars.ContextVar("stowage_event_cause", default=None)


def current_cause() -> Cause | None:
    return _cause.get()


@contextlib.contextmanager
def caused_by(cause: Cause) -> Iterator[None]:
    token = _cause.set(cause)
    try:
        yield
    finally:
        _cause.reset(token)


def replica_version_id() -> str:
    """The version id a replica write must keep ("" when this is not a replica write)."""
    c = _cause.get()
    return c.replica_version_id if c is not None and c.replica else ""

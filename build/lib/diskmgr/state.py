"""A disk's state: the one definition of the states, what each allows, and how they may change.

Health states, best to worst, are what the health policy (diskmgr.health) concludes:

    ok       use normally
    warning  use normally, tell the operator
    failing  place no new shards here; its data is still read (and should move off)
    failed   do not use; heal everything it held elsewhere
    offline  the disk is not there; heal as failed

Administrative states are set by the operator's commands (`stowage disks remove/replace`); the
health monitor never overrides them:

    draining  still read, never written; its shards are being moved elsewhere
    removed   drained and released; final (a removed disk is never loaded again)

Persisted records keep the state's string value, so records written before this enum existed
decode unchanged; a StrEnum compares and hashes equal to that string.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import DiskStateError


class DiskState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"
    FAILED = "failed"
    OFFLINE = "offline"
    DRAINING = "draining"
    REMOVED = "removed"

    @property
    def writable(self) -> bool:
        """New shards may be placed on the disk."""
        return self in WRITABLE

    @property
    def readable(self) -> bool:
        """The disk's shards are read."""
        return self in READABLE

    @property
    def lost(self) -> bool:
        """The disk's shards must be rebuilt elsewhere from the other shards."""
        return self in LOST

    @property
    def administrative(self) -> bool:
        """Set by an operator's command; the health monitor leaves it alone."""
        return self in ADMINISTRATIVE

    def can_become(self, new: DiskState) -> bool:
        return new == self or new in _NEXT[self]

    def become(self, new: DiskState) -> DiskState:
        """`new`, if this state may change into it; DiskStateError otherwise."""
        if not self.can_become(new):
            raise DiskStateError(f"a disk in state {self.value} cannot become {new.value}")
        return new


HEALTH_STATES = (DiskState.OK, DiskState.WARNING, DiskState.FAILING, DiskState.FAILED, DiskState.OFFLINE)
WRITABLE = frozenset({DiskState.OK, DiskState.WARNING})
READABLE = frozenset({DiskState.OK, DiskState.WARNING, DiskState.FAILING, DiskState.DRAINING})
LOST = frozenset({DiskState.FAILED, DiskState.OFFLINE, DiskState.REMOVED})
MOVING = frozenset({DiskState.DRAINING})  # readable, but every shard on it must move elsewhere
ADMINISTRATIVE = frozenset({DiskState.DRAINING, DiskState.REMOVED})

# The health policy may move a disk between any two health states (a disk comes back, a counter
# is reset). Only a disk that is still read can be drained (a lost disk's shards are rebuilt, not
# moved). Any disk can be removed: a release is guarded by the drain's check that no shard is
# left on it, not by the state it is in. A drain ends in `removed`, or is abandoned when a
# configured directory restarts as `ok`, or the disk fails (its label is lost). Removed is final.
_NEXT: dict[DiskState, frozenset[DiskState]] = {
    DiskState.OK: frozenset({*HEALTH_STATES, DiskState.DRAINING, DiskState.REMOVED}),
    DiskState.WARNING: frozenset({*HEALTH_STATES, DiskState.DRAINING, DiskState.REMOVED}),
    DiskState.FAILING: frozenset({*HEALTH_STATES, DiskState.DRAINING, DiskState.REMOVED}),
    DiskState.FAILED: frozenset({*HEALTH_STATES, DiskState.REMOVED}),
    DiskState.OFFLINE: frozenset({*HEALTH_STATES, DiskState.REMOVED}),
    DiskState.DRAINING: frozenset({DiskState.OK, DiskState.FAILED, DiskState.REMOVED}),
    DiskState.REMOVED: frozenset(),
}

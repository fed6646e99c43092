"""The disk state machine: what each state allows and which changes are legal."""

from __future__ import annotations

import json

import pytest

from diskmgr.errors import DiskStateError
from diskmgr.state import HEALTH_STATES, DiskState


def test_states_are_their_persisted_strings():
    assert [s.value for s in DiskState] == ["ok", "warning", "failing", "failed", "offline", "draining", "removed"]
    assert DiskState("draining") is DiskState.DRAINING
    assert DiskState.FAILED == "failed" and {DiskState.OK} == {"ok"}
    assert json.dumps({"state": DiskState.OFFLINE}) == '{"state": "offline"}'


def test_what_each_state_allows():
    assert {s for s in DiskState if s.writable} == {DiskState.OK, DiskState.WARNING}
    assert {s for s in DiskState if s.readable} == {DiskState.OK, DiskState.WARNING, DiskState.FAILING,
                                                     DiskState.DRAINING}
    assert {s for s in DiskState if s.lost} == {DiskState.FAILED, DiskState.OFFLINE, DiskState.REMOVED}
    assert {s for s in DiskState if s.administrative} == {DiskState.DRAINING, DiskState.REMOVED}


@pytest.mark.parametrize("old", HEALTH_STATES)
@pytest.mark.parametrize("new", HEALTH_STATES)
def test_health_states_change_freely(old, new):
    assert old.become(new) is new


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (DiskState.OK, DiskState.DRAINING, True),
        (DiskState.FAILING, DiskState.DRAINING, True),
        (DiskState.FAILED, DiskState.DRAINING, False),  # a lost disk's shards are rebuilt, not moved
        (DiskState.OFFLINE, DiskState.DRAINING, False),
        (DiskState.DRAINING, DiskState.DRAINING, True),  # a drain retried
        (DiskState.DRAINING, DiskState.REMOVED, True),
        (DiskState.OFFLINE, DiskState.REMOVED, True),
        (DiskState.DRAINING, DiskState.OK, True),  # a configured directory restarts ok
        (DiskState.DRAINING, DiskState.FAILED, True),  # it lost its label
        (DiskState.DRAINING, DiskState.WARNING, False),  # the monitor does not override the operator
        (DiskState.REMOVED, DiskState.OK, False),
        (DiskState.REMOVED, DiskState.DRAINING, False),
        (DiskState.REMOVED, DiskState.REMOVED, True),
    ],
)
def test_transitions(old, new, allowed):
    assert old.can_become(new) is allowed
    if allowed:
        assert old.become(new) is new
    else:
        with pytest.raises(DiskStateError, match=f"state {old.value} cannot become {new.value}"):
            old.become(new)

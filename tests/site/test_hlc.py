"""The hybrid logical clock of site replication (appliance/services/sitehlc.py)."""

from __future__ import annotations

import pytest

from appliance.services.sitehlc import ClockSkew, Hlc, describe, logical, pack, physical


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_now_is_monotonic_even_when_the_wall_clock_stands_or_goes_back() -> None:
    wall = FakeClock(1000)
    c = Hlc(wall)
    a, b = c.now(), c.now()
    assert b > a and physical(a) == physical(b) == 1000 and logical(b) == logical(a) + 1
    wall.ms = 900  # the wall clock steps back
    d = c.now()
    assert d > b and physical(d) == 1000
    wall.ms = 2000
    e = c.now()
    assert e == pack(2000) and logical(e) == 0  # the logical counter restarts with the wall clock


def test_observe_orders_a_later_local_write_after_a_seen_remote_one() -> None:
    slow, fast = Hlc(FakeClock(1000)), Hlc(FakeClock(1500))
    remote = fast.now()
    assert slow.now() < remote  # unrelated writes: the wall clocks order them
    slow.observe(remote)
    assert slow.now() > remote  # a write made after seeing the remote one wins over it
    assert physical(slow.now()) == 1500  # and stays near real time, not a counter run away


def test_a_remote_clock_far_ahead_is_refused() -> None:
    c = Hlc(FakeClock(1000), max_drift_ms=100)
    c.observe(pack(1100))
    with pytest.raises(ClockSkew):
        c.observe(pack(1101 + 100))
    assert physical(c.now()) == 1100  # the refused timestamp left the clock alone


def test_describe() -> None:
    assert describe(pack(0, 3)) == "1970-01-01T00:00:00.000Z+3"


def test_after_orders_past_a_stamp_from_before_a_clock_step_back() -> None:
    c = Hlc(FakeClock(1000))  # a restart with the wall clock set back: the last stamp was at 5000
    assert c.after(pack(5000, 7)) == pack(5000, 8)
    assert c.after(pack(10)) == pack(5000, 9)  # and stays monotonic

"""The per-disk latency histogram: log-scale buckets, a sliding window, real percentiles."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from diskmgr.latency import BOUNDS_MS, MIN_SAMPLES, LatencyHistogram, bucket_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_buckets_are_log_scale_and_cover_the_range():
    assert BOUNDS_MS[0] == pytest.approx(0.01) and BOUNDS_MS[-1] > 100_000
    ratios = {round(b / a, 6) for a, b in pairwise(BOUNDS_MS)}
    assert ratios == {round(2 ** 0.25, 6)}
    assert bucket_of(0.0) == 0 and bucket_of(BOUNDS_MS[10]) == 10 and bucket_of(BOUNDS_MS[10] * 1.01) == 11
    assert bucket_of(10 ** 9) == len(BOUNDS_MS)  # the overflow bucket


def test_p99_is_the_tail_not_the_mean():
    h = LatencyHistogram(clock=Clock())
    for _ in range(980):
        h.observe(0.001)  # 1 ms
    for _ in range(20):
        h.observe(0.8)  # 2% of the operations take 800 ms
    p99 = h.p99_ms()
    assert p99 is not None and 800 / 1.19 <= p99 <= 800 * 1.19
    p50 = h.percentile_ms(0.5)
    assert p50 is not None and 1 / 1.19 <= p50 <= 1.19


def test_percentiles_are_within_a_bucket_of_the_truth():
    rnd = random.Random(7)
    samples = sorted(rnd.lognormvariate(1.0, 1.2) for _ in range(5000))  # milliseconds
    h = LatencyHistogram(clock=Clock())
    for ms in samples:
        h.observe(ms / 1000)
    for q in (0.5, 0.9, 0.99, 0.999):
        true = samples[int(q * len(samples)) - 1]
        got = h.percentile_ms(q)
        assert got is not None and true / 1.19 <= got <= true * 1.19, (q, true, got)


def test_too_few_samples_give_no_percentile():
    h = LatencyHistogram(clock=Clock())
    for _ in range(MIN_SAMPLES - 1):
        h.observe(2.0)
    assert h.p99_ms() is None
    h.observe(2.0)
    assert h.p99_ms() is not None


def test_old_observations_leave_the_window():
    clock = Clock()
    h = LatencyHistogram(window_seconds=60, slices=6, clock=clock)
    for _ in range(200):
        h.observe(3.0)  # a stall
    clock.now += 30
    for _ in range(200):
        h.observe(0.002)
    assert sum(h.counts()) == 400
    p99 = h.p99_ms()
    assert p99 is not None and p99 > 2000  # the stall is still in the last minute
    clock.now += 35
    assert sum(h.counts()) == 200  # the stall's slice is out of the window
    p99 = h.p99_ms()
    assert p99 is not None and p99 < 3
    clock.now += 600
    assert h.p99_ms() is None and sum(h.counts()) == 0
    h.observe(0.002)  # a reused slot starts from zero
    assert sum(h.counts()) == 1

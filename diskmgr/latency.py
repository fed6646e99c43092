"""A disk's operation latency: a histogram with fixed log-scale buckets over a sliding window.

The health policy wants the 99th percentile of how long the disk's operations take *lately*:
an average hides the slow tail that predicts a dying disk, and a lifetime figure never
forgets an old stall. So the window is split into slices; an observation lands in the slice of
its time, a slice older than the window is cleared before it is reused, and a percentile
merges the slices still inside the window.

Buckets are fixed (4 per doubling from 10 µs to about 2 minutes, then one overflow bucket), so
observing is an index lookup and a percentile is read from the counts with linear
interpolation inside its bucket: within one bucket width (about 19%) of the true value.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

BUCKETS_PER_DOUBLING = 4
SMALLEST_MS = 0.01
# upper bounds of the buckets in milliseconds: 0.01 ms .. ~119 s; a last bucket counts the rest
BOUNDS_MS: tuple[float, ...] = tuple(SMALLEST_MS * 2 ** (i / BUCKETS_PER_DOUBLING) for i in range(95))
WINDOW_SECONDS = 60.0
SLICES = 6
# Below this many operations in the window a "99th percentile" is just the slowest one; the
# policy gets no figure rather than a single outlier.
MIN_SAMPLES = 100


def bucket_of(ms: float) -> int:
    """Index of the bucket an observation of `ms` milliseconds counts in."""
    return bisect_left(BOUNDS_MS, ms)


@dataclass
class LatencyHistogram:
    window_seconds: float = WINDOW_SECONDS
    slices: int = SLICES
    clock: Callable[[], float] = time.monotonic
    _counts: list[list[int]] = field(init=False, repr=False)
    _slice_of: list[int] = field(init=False, repr=False)  # which slice number each ring slot holds
    # since start, never cleared: what a Prometheus histogram exports (its rate() is the window)
    lifetime: list[int] = field(init=False, repr=False)
    lifetime_sum: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._counts = [[0] * (len(BOUNDS_MS) + 1) for _ in range(self.slices)]
        self._slice_of = [-1] * self.slices
        self.lifetime = [0] * (len(BOUNDS_MS) + 1)

    def _now_slice(self) -> int:
        return int(self.clock() // (self.window_seconds / self.slices))

    def observe(self, seconds: float) -> None:
        n = self._now_slice()
        slot = n % self.slices
        if self._slice_of[slot] != n:
            self._counts[slot] = [0] * (len(BOUNDS_MS) + 1)
            self._slice_of[slot] = n
        b = bucket_of(seconds * 1000.0)
        self._counts[slot][b] += 1
        self.lifetime[b] += 1
        self.lifetime_sum += seconds

    def counts(self) -> list[int]:
        """Observations per bucket within the window."""
        n = self._now_slice()
        merged = [0] * (len(BOUNDS_MS) + 1)
        for slot in range(self.slices):
            if n - self.slices < self._slice_of[slot] <= n:
                for i, c in enumerate(self._counts[slot]):
                    merged[i] += c
        return merged

    def percentile_ms(self, q: float, min_samples: int = MIN_SAMPLES) -> float | None:
        """The q-quantile (0 < q <= 1) in milliseconds, or None with too few observations."""
        counts = self.counts()
        total = sum(counts)
        if total == 0 or total < min_samples:
            return None
        rank = q * total
        seen = 0
        for i, c in enumerate(counts):
            if c and seen + c >= rank:
                if i == len(BOUNDS_MS):
                    return BOUNDS_MS[-1]  # slower than the last bound: at least that
                low = BOUNDS_MS[i - 1] if i else 0.0
                return low + (BOUNDS_MS[i] - low) * (rank - seen) / c
            seen += c
        return BOUNDS_MS[-1]

    def p99_ms(self) -> float | None:
        return self.percentile_ms(0.99)

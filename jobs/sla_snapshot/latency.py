"""Request latency of the sla-snapshot job: what the Logs query yields per app
and period, and how periods add up to days and months.

Percentiles do not add up, so each period also carries a duration histogram
(counts per log-spaced bucket, 20 per decade: bucket ``b`` holds durations in
[10^(b/20), 10^((b+1)/20)) ms, durations under 1 ms in bucket 0) and the
number of requests within each latency target. A day's or a month's
percentiles come from the merged histogram (approximate: within about 6 %,
the geometric middle of the bucket); whether a month met a latency target
comes from the exact within-target counts (p95 < 500 ms is met when at least
95 % of requests took 500 ms or less).

Must never: import an Azure SDK, read the clock or do I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

BUCKETS_PER_DECADE = 20
PERCENTILES = (50, 95, 99)


def bucket_of(duration_ms: float) -> int:
    """The histogram bucket of a duration (the same rule as the Logs query)."""
    return int(math.floor(BUCKETS_PER_DECADE * math.log10(max(duration_ms, 1.0))))


def bucket_middle_ms(bucket: int) -> float:
    """The geometric middle of a bucket, in ms."""
    return 10 ** ((bucket + 0.5) / BUCKETS_PER_DECADE)


@dataclass(frozen=True)
class Latency:
    """Latency of one app over one span. ``count`` sums ``ItemCount`` (sampling)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    within_p95_target: int = 0  # requests that took no longer than the p95 target
    within_p99_target: int = 0
    histogram: Mapping[int, int] = field(default_factory=dict)  # bucket -> requests
    approximate: bool = False  # percentiles from the histogram, not from the query

    def __add__(self, other: "Latency") -> "Latency":
        merged = merge_histograms((self.histogram, other.histogram))
        return with_histogram_percentiles(Latency(
            count=self.count + other.count,
            within_p95_target=self.within_p95_target + other.within_p95_target,
            within_p99_target=self.within_p99_target + other.within_p99_target,
            histogram=merged))

    def within_ratio(self, target: str) -> float | None:
        """Share of requests within the "p95" or "p99" target; None without requests."""
        if not self.count:
            return None
        return (self.within_p95_target if target == "p95" else self.within_p99_target) / self.count


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + int(count)
    return {b: merged[b] for b in sorted(merged) if merged[b]}


def histogram_percentile(histogram: Mapping[int, int], percentile: float) -> float | None:
    """The ``percentile`` (0-100) of a histogram: the middle of the bucket where the
    cumulative count first reaches that share; None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = percentile / 100 * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_middle_ms(bucket), 3)
    return round(bucket_middle_ms(max(histogram)), 3)


def with_histogram_percentiles(latency: Latency) -> Latency:
    """The same counts with p50/p95/p99 taken from the histogram (marked approximate)."""
    p50, p95, p99 = (histogram_percentile(latency.histogram, p) for p in PERCENTILES)
    return Latency(latency.count, p50, p95, p99, latency.within_p95_target,
                   latency.within_p99_target, dict(latency.histogram), approximate=True)


def total_latency(parts: Iterable[Latency]) -> Latency:
    """Latency of several spans together (percentiles approximate)."""
    total = Latency()
    for part in parts:
        total = total + part
    return with_histogram_percentiles(total)

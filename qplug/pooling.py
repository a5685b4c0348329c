"""Pooling per-frame scores into one number per source.

Values are kept as a compact ``array('d')`` (8 bytes a frame: two hours of 60 fps video is under
4 MB per scorer), because percentiles need them all.
"""

from __future__ import annotations

import math
from array import array
from typing import Callable, Sequence

#: Pooling methods in report order. Low percentiles are the usual "worst moments" view for
#: higher-is-better scores (VMAF tools report the same set); high ones serve lower-is-better scores.
POOLING_METHODS: tuple[str, ...] = ("mean", "min", "max", "p5", "p10", "p90", "p95", "hmean", "std")

#: The pooled entry that holds a scorer's own verdict on a whole source (its ``score_source()``, e.g.
#: Q-Align's video score from all sampled frames in one prompt) rather than a pool of frame values.
SOURCE_POOL = "source"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def harmonic_mean(values: Sequence[float]) -> float | None:
    """Harmonic mean, defined only when every value is positive (None otherwise)."""
    if not values or any(v <= 0 for v in values):
        return None
    return len(values) / sum(1.0 / v for v in values)


_METHODS: dict[str, Callable[[Sequence[float]], float | None]] = {
    "mean": lambda s: math.fsum(s) / len(s),
    "min": lambda s: s[0],
    "max": lambda s: s[-1],
    "p5": lambda s: percentile(s, 5),
    "p10": lambda s: percentile(s, 10),
    "p90": lambda s: percentile(s, 90),
    "p95": lambda s: percentile(s, 95),
    "hmean": harmonic_mean,
    "std": lambda s: math.sqrt(max(math.fsum((v - math.fsum(s) / len(s)) ** 2 for v in s) / len(s), 0.0)),
}


class Pooler:
    """Collects one scorer's values for one source and pools them at the end."""

    def __init__(self) -> None:
        self.values = array("d")
        self.missing = 0

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            self.missing += 1
        else:
            self.values.append(value)

    def pooled(self, methods: Sequence[str] = POOLING_METHODS) -> dict[str, float | None]:
        result: dict[str, float | None] = {"count": float(len(self.values))}
        ordered = sorted(self.values)
        for name in methods:
            result[name] = _METHODS[name](ordered) if ordered else None
        return result


def check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in _METHODS]
    if unknown:
        raise ValueError(f"unknown pooling method(s) {unknown}; available: {', '.join(POOLING_METHODS)}")

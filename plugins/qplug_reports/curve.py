"""Streaming min/max decimation of a score curve into a bounded number of points."""

from __future__ import annotations

import math

_EMPTY_LOW, _EMPTY_HIGH = math.inf, -math.inf


class MinMaxCurve:
    """Keeps at most ``max_points`` points of an (x, y) series of unknown length, with its gaps.

    Consecutive samples are grouped into buckets of ``width`` samples, each remembering its lowest
    and its highest sample with their x. When there are more buckets than ``max_points // 2``,
    neighbours merge and ``width`` doubles. Memory is therefore O(max_points) however long the video,
    and a one-frame spike always survives, because it is the minimum or maximum of its bucket,
    which an average or every-Nth sample would not guarantee.

    A frame without a value (the scorer returned None or NaN) is recorded with :meth:`add_gap`. It
    counts towards the buckets like any sample, and a bucket that holds only gaps breaks the line:
    :meth:`segments` never joins the values on either side of it. A gap shorter than a bucket (less
    than one point of the drawn curve) is absorbed when buckets merge.
    """

    __slots__ = ("max_points", "samples", "gaps", "_max_buckets", "_width", "_buckets")

    def __init__(self, max_points: int = 2000) -> None:
        if max_points < 4:
            raise ValueError("max_points must be >= 4")
        self.max_points = max_points
        #: samples that had a value
        self.samples = 0
        #: samples recorded as missing
        self.gaps = 0
        self._max_buckets = max_points // 2
        self._width = 1
        # each bucket: [count, x_of_min, min, x_of_max, max]; lists, not objects, for speed.
        # A bucket of gaps only has min = +inf and max = -inf.
        self._buckets: list[list[float]] = []

    def add(self, x: float, y: float) -> None:
        """Append one sample; samples are expected in increasing x."""
        self.samples += 1
        buckets = self._buckets
        if buckets and buckets[-1][0] < self._width:
            bucket = buckets[-1]
            bucket[0] += 1
            if y < bucket[2]:
                bucket[1], bucket[2] = x, y
            if y > bucket[4]:
                bucket[3], bucket[4] = x, y
            return
        buckets.append([1, x, y, x, y])
        if len(buckets) > self._max_buckets:
            self._merge()

    def add_gap(self, x: float) -> None:
        """Record a sample at ``x`` that has no value: the line is not drawn across it."""
        self.gaps += 1
        buckets = self._buckets
        if buckets and buckets[-1][0] < self._width:
            buckets[-1][0] += 1
            return
        buckets.append([1, x, _EMPTY_LOW, x, _EMPTY_HIGH])
        if len(buckets) > self._max_buckets:
            self._merge()

    def _merge(self) -> None:
        old = self._buckets
        merged: list[list[float]] = []
        for i in range(0, len(old) - 1, 2):
            a, b = old[i], old[i + 1]
            low = a if a[2] <= b[2] else b
            high = a if a[4] >= b[4] else b
            merged.append([a[0] + b[0], low[1], low[2], high[3], high[4]])
        if len(old) % 2:
            merged.append(old[-1])
        self._buckets = merged
        self._width *= 2

    def segments(self) -> list[list[tuple[float, float]]]:
        """The kept points in x order, split into runs that a line may join (gaps between runs)."""
        out: list[list[tuple[float, float]]] = []
        run: list[tuple[float, float]] = []
        for _, x_low, y_low, x_high, y_high in self._buckets:
            if y_low > y_high:  # gaps only
                if run:
                    out.append(run)
                    run = []
            elif x_low == x_high and y_low == y_high:
                run.append((x_low, y_low))
            elif x_low <= x_high:
                run.append((x_low, y_low))
                run.append((x_high, y_high))
            else:
                run.append((x_high, y_high))
                run.append((x_low, y_low))
        if run:
            out.append(run)
        return out

    def points(self) -> list[tuple[float, float]]:
        """All kept points in x order: each bucket's min and max (one point when they coincide)."""
        return [p for run in self.segments() for p in run]

    def y_bounds(self) -> tuple[float, float] | None:
        """Lowest and highest value seen (exact, since every bucket keeps its extremes)."""
        valued = [b for b in self._buckets if b[2] <= b[4]]
        if not valued:
            return None
        return min(b[2] for b in valued), max(b[4] for b in valued)

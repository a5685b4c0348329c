"""The K worst frames of a source, each kept only as a small JPEG made while its pixels exist."""

from __future__ import annotations

import base64
import heapq
import io
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

    from qplug.types import FrameResult


@dataclass(frozen=True)
class Thumbnail:
    """One worst frame: where it is, its score, and its picture as a data URI (None: no pixels)."""

    index: int
    pts: float | None
    timecode: str | None
    value: float
    data_uri: str | None
    width: int
    height: int
    description: str | None = None


def jpeg_data_uri(rgb: "np.ndarray", max_width: int = 240, quality: int = 80) -> tuple[str, int, int]:
    """Downscale an HxWx3 uint8 array to at most ``max_width`` wide and encode it as a JPEG data URI."""
    from PIL import Image  # only the HTML report needs Pillow

    image = Image.fromarray(rgb, "RGB")
    width, height = image.size
    if width > max_width:
        height = max(1, round(height * max_width / width))
        width = max_width
        # reducing_gap: a fast integer box reduction first, so a 4K frame costs little more than a 1080p one
        image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


#: the shortest time between two worst-frame thumbnails of one video, in seconds
MIN_SPACING = 1.0
#: candidates kept per thumbnail shown: the worst 3K frames, the most spacing may choose among
CANDIDATES_PER_THUMBNAIL = 3
#: spacing may pick a frame only if it is nearly as bad as the K-th worst: no farther from it than this
#: share of the source's whole spread (worst to best). Rank alone is not enough: a bad stretch of 10
#: frames among 3K candidates leaves room for good frames, which spacing would gladly pick as far apart.
NEAR_SHARE = 0.1


def spacing_for(duration: float | None, k: int) -> float:
    """Least time between two chosen thumbnails of a video ``duration`` seconds long: max(1 s, D / 2K)."""
    if duration is None or not duration > 0 or k <= 0:
        return MIN_SPACING
    return max(MIN_SPACING, duration / (2 * k))


# a candidate: (badness, -arrival, thumbnail); on equal badness the earlier frame ranks worse
_Entry = tuple[float, int, Thumbnail]


def _rank(entry: _Entry) -> tuple[float, int]:
    return entry[0], entry[1]


class WorstFrames:
    """The ``k`` worst frames of a source, preferring frames that show different moments.

    "Worst" always wins over "different". The thumbnails are chosen among the genuinely worst frames
    only (:meth:`pool`): the ``3 * k`` worst, and of those only the ones nearly as bad as the k-th
    worst (within :data:`NEAR_SHARE` of the source's spread of values). Inside that pool,
    :meth:`worst` picks worst first but skips a frame closer in time than a spacing to one already
    picked, or inside the same event, so that one black stretch does not fill every thumbnail when
    other moments are as bad; when that leaves fewer than ``k``, the next worst frames of the pool
    are added wherever they are. A good frame is never shown for lying far from the bad ones: a clip
    whose bad frames all sit in one stretch shows that stretch ``k`` times.

    The ``3 * k`` worst frames seen so far are kept in a heap, so memory is bounded however long the
    video. Frames without a presentation time (stills, image folders) are never spaced: plain worst-K.

    The thumbnail is encoded when a frame becomes a candidate, because that is the last moment its
    pixels are guaranteed to exist; nothing larger than the JPEG is ever kept.
    """

    def __init__(self, k: int, max_width: int = 240, quality: int = 80,
                 candidates: int | None = None) -> None:
        self.k = k
        self.max_width = max_width
        self.quality = quality
        self.capacity = max(k, candidates if candidates is not None else CANDIDATES_PER_THUMBNAIL * k)
        #: min-heap on (badness, -arrival): the root is the least bad candidate, the first to go
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        #: the least badness of any frame offered (the best frame), for the source's spread of values
        self._best: float | None = None
        #: first and last presentation time of the frames offered
        self._first_pts: float | None = None
        self._last_pts: float | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def offer(self, result: "FrameResult", value: float, badness: float) -> None:
        """Consider one scored frame; make its thumbnail only if it is among the worst seen so far."""
        if self.k <= 0 or not math.isfinite(badness):
            return
        order = next(self._order)
        self._best = badness if self._best is None else min(self._best, badness)
        pts = result.pts
        if pts is not None:
            self._first_pts = pts if self._first_pts is None else min(self._first_pts, pts)
            self._last_pts = pts if self._last_pts is None else max(self._last_pts, pts)
        heap = self._heap
        full = len(heap) >= self.capacity
        if full and (badness, -order) <= _rank(heap[0]):
            return  # not worse than the least bad candidate: no thumbnail to make
        entry = (badness, -order, self._thumbnail(result, value))
        if full:
            heapq.heapreplace(heap, entry)
        else:
            heapq.heappush(heap, entry)

    def pool(self) -> list[_Entry]:
        """The frames spacing may choose among, worst first: the k worst and those nearly as bad."""
        ranked = sorted(self._heap, key=_rank, reverse=True)
        if not ranked or self._best is None:
            return ranked
        kth = ranked[min(self.k, len(ranked)) - 1][0]
        floor = kth - NEAR_SHARE * (ranked[0][0] - self._best)
        return [entry for entry in ranked if entry[0] >= floor]

    def pool_size(self) -> int:
        """How many frames spacing may choose among (at least k when k frames were offered)."""
        return len(self.pool())

    @staticmethod
    def _select(pool: Sequence[_Entry], spacing: float, segments: Sequence[tuple[float, float]],
                limit: int) -> list[_Entry]:
        """Greedy worst-first choice in ``pool``: skip a frame near a chosen one in time or in the same segment."""
        chosen: list[_Entry] = []
        for entry in pool:
            pts = entry[2].pts
            if pts is not None and any(
                    c[2].pts is not None and (abs(c[2].pts - pts) < spacing
                                              or any(s <= pts <= e and s <= c[2].pts <= e for s, e in segments))
                    for c in chosen):
                continue
            chosen.append(entry)
            if len(chosen) >= limit:
                break
        return chosen

    def _thumbnail(self, result: "FrameResult", value: float) -> Thumbnail:
        data_uri, width, height = None, result.width, result.height
        frame: Any = result.frame
        if frame is not None:
            try:
                data_uri, width, height = jpeg_data_uri(frame.rgb, self.max_width, self.quality)
            except Exception:  # no pixels, a failing loader, an odd array: the report shows a placeholder
                data_uri = None
        description = next(iter(result.descriptions.values()), None) if result.descriptions else None
        return Thumbnail(index=result.index, pts=result.pts, timecode=result.timecode, value=value,
                         data_uri=data_uri, width=width, height=height, description=description)

    def worst(self, spacing: float | None = None,
              segments: Sequence[tuple[float, float]] = ()) -> list[Thumbnail]:
        """Up to ``k`` of the worst frames, worst first, spread in time when the worst allow it.

        Spacing and segments only choose among the :meth:`pool`; if they leave fewer than ``k``, the
        next worst of it are added regardless, so every frame shown is among the worst.

        :param spacing: least time between two frames picked for being apart (use :func:`spacing_for`
            with the source's duration); None: what the span of the frames seen so far calls for.
        :param segments: (start, end) times of the source's events: one frame from each is preferred.
        """
        if spacing is None:
            span = None if self._first_pts is None or self._last_pts is None else self._last_pts - self._first_pts
            spacing = spacing_for(span, self.k)
        pool = self.pool()
        chosen = self._select(pool, spacing, segments, self.k)
        if len(chosen) < self.k:  # spacing left too few: the next worst, however close to a chosen one
            picked = {entry[1] for entry in chosen}
            chosen += [entry for entry in pool if entry[1] not in picked][:self.k - len(chosen)]
        chosen.sort(key=_rank, reverse=True)
        return [entry[2] for entry in chosen]

"""The K worst frames of a source, each kept only as a small JPEG made while its pixels exist."""

from __future__ import annotations

import base64
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
#: candidates kept per thumbnail shown: room to drop near neighbours and still show K frames
CANDIDATES_PER_THUMBNAIL = 3


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
    """The ``k`` worst frames of a source, chosen so that they show different moments.

    A video's worst frames tend to be neighbours (six frames of one black stretch), so :meth:`worst`
    picks worst first but skips a frame closer in time than a spacing to one already picked, or inside
    the same event. The spacing depends on the duration, which is only known at the end, so while
    frames arrive the video is cut into time slots of width ``w`` (at most half the final spacing) and
    only the worst frame of each slot is kept as a candidate; ``w`` doubles, and neighbouring slots
    merge, as the video gets longer. At most ``3 * k`` candidates are kept (the least bad slot winner
    is dropped), so memory is bounded however long the video, and a long bad stretch holds at most
    one candidate per slot rather than all of its frames.

    Frames without a presentation time (stills, image folders) are never grouped: plain worst-K.

    The thumbnail is encoded when a frame becomes a candidate, because that is the last moment its
    pixels are guaranteed to exist; nothing larger than the JPEG is ever kept.
    """

    def __init__(self, k: int, max_width: int = 240, quality: int = 80,
                 candidates: int | None = None) -> None:
        self.k = k
        self.max_width = max_width
        self.quality = quality
        self.capacity = max(k, candidates if candidates is not None else CANDIDATES_PER_THUMBNAIL * k)
        self._slots: dict[object, _Entry] = {}
        self._least: object | None = None  # key of the least bad candidate, when known
        self._order = itertools.count()
        self._origin: float | None = None
        #: slot width in seconds
        self.slot = MIN_SPACING / 2

    def __len__(self) -> int:
        return len(self._slots)

    def offer(self, result: "FrameResult", value: float, badness: float) -> None:
        """Consider one scored frame; make its thumbnail only if it becomes a candidate."""
        if self.k <= 0:
            return
        order = next(self._order)
        pts = result.pts
        if pts is None:
            key: object = ("frame", order)
        else:
            if self._origin is None:
                self._origin = pts
            self._widen(pts)
            key = math.floor((pts - self._origin) / self.slot)
        slots = self._slots
        current = slots.get(key)
        if current is not None:
            if badness <= current[0]:
                return  # the slot already holds a frame at least as bad
        elif len(slots) >= self.capacity:
            least = self._least_key()
            if badness <= slots[least][0]:
                return
            del slots[least]
        slots[key] = (badness, -order, self._thumbnail(result, value))
        self._least = None

    def _least_key(self) -> object:
        if self._least is None or self._least not in self._slots:
            self._least = min(self._slots, key=lambda k: _rank(self._slots[k]))
        return self._least

    def _widen(self, pts: float) -> None:
        """Double the slot width while it is under half the spacing the video so far would get."""
        assert self._origin is not None
        target = spacing_for(pts - self._origin, self.k) / 2
        if target < 2 * self.slot:
            return
        while target >= 2 * self.slot:
            self.slot *= 2
        merged: dict[object, _Entry] = {}
        for key, entry in self._slots.items():
            pts_ = entry[2].pts
            if pts_ is not None:
                key = math.floor((pts_ - self._origin) / self.slot)
            kept = merged.get(key)
            if kept is None or _rank(entry) > _rank(kept):
                merged[key] = entry
        self._slots = merged
        self._least = None

    def _select(self, spacing: float, segments: Sequence[tuple[float, float]], limit: int) -> list[_Entry]:
        """Greedy worst-first choice: skip a frame near a chosen one in time or inside the same segment."""
        chosen: list[_Entry] = []
        for entry in sorted(self._slots.values(), key=_rank, reverse=True):
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
        """Up to ``k`` frames, worst first, no two closer than ``spacing`` seconds nor in one segment.

        :param spacing: least time between two chosen frames (use :func:`spacing_for` with the source's
            duration); None: the least the frames seen so far call for, at least :data:`MIN_SPACING`.
        :param segments: (start, end) times of the source's events: at most one frame from each.
        """
        if spacing is None:
            spacing = max(MIN_SPACING, 2 * self.slot)
        return [entry[2] for entry in self._select(spacing, segments, self.k)]

"""The K worst frames of a source, each kept only as a small JPEG made while its pixels exist."""

from __future__ import annotations

import base64
import heapq
import io
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


class WorstFrames:
    """A bounded heap of the ``k`` frames with the highest badness.

    The thumbnail is encoded when a frame enters the heap, because that is the last moment its pixels
    are guaranteed to exist; nothing larger than the JPEG is ever kept.
    """

    def __init__(self, k: int, max_width: int = 240, quality: int = 80) -> None:
        self.k = k
        self.max_width = max_width
        self.quality = quality
        self._heap: list[tuple[float, int, Thumbnail]] = []
        # on equal badness the earlier frame wins: it sorts higher, so the later one is evicted first
        self._order = itertools.count()

    def offer(self, result: "FrameResult", value: float, badness: float) -> None:
        """Consider one scored frame; make its thumbnail only if it is among the worst so far."""
        if self.k <= 0:
            return
        if len(self._heap) >= self.k and badness <= self._heap[0][0]:
            return
        thumb = self._thumbnail(result, value)
        entry = (badness, -next(self._order), thumb)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heapreplace(self._heap, entry)

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

    def worst(self) -> list[Thumbnail]:
        """The kept frames, worst first."""
        return [entry[2] for entry in sorted(self._heap, key=lambda e: (e[0], e[1]), reverse=True)]

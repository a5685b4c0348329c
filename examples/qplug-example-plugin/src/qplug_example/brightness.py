"""The ``example.brightness_words`` describer: luma statistics put into words.

"dark, low contrast, crushed shadows" says less than a score but reads at a glance in a report.
The thresholds are on full-range 8-bit luma.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qplug.types import Frame

#: (upper bound of mean luma, word), checked in order.
_BRIGHTNESS = ((40.0, "very dark"), (85.0, "dark"), (170.0, "mid-tone"), (215.0, "bright"), (256.0, "very bright"))
#: share of pixels at the extremes that counts as clipping
_CLIPPED = 0.05


def words_for(luma: np.ndarray) -> str:
    """Describe an HxW uint8 luma array in a few comma-separated words."""
    if luma.size == 0:
        return "empty frame"
    mean = float(luma.mean())
    std = float(luma.std())
    words = [next(word for bound, word in _BRIGHTNESS if mean < bound)]
    if std < 12:
        words.append("flat" if std < 2 else "low contrast")
    elif std > 70:
        words.append("high contrast")
    else:
        words.append("normal contrast")
    if np.count_nonzero(luma <= 5) / luma.size > _CLIPPED and mean > 5:
        words.append("crushed shadows")
    if np.count_nonzero(luma >= 250) / luma.size > _CLIPPED and mean < 250:
        words.append("clipped highlights")
    return ", ".join(words)


class BrightnessWords:
    """Describes each frame's brightness, contrast and clipping."""

    def describe(self, frames: Sequence[Frame]) -> list[str]:
        return [words_for(frame.luma) for frame in frames]

"""The ``example.edge_density`` scorer: how much of the frame lies on a sharp luma edge.

A gradient-threshold edge detector in plain numpy: central differences on luma, then the share of
pixels whose gradient magnitude exceeds a threshold. Blur spreads edges over more pixels but
lowers their gradient, so fewer pixels pass the threshold and the score drops. Noise adds
gradients everywhere, so the score rises: this is a detail measure, not a noise measure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qplug.types import Frame

#: Key under which the gradient magnitude is kept in ``frame.cache`` for other scorers to reuse.
CACHE_KEY = "example.gradient_magnitude"


def gradient_magnitude(frame: Frame) -> np.ndarray:
    """Central-difference gradient magnitude of the frame's luma (float32, HxW), cached on the frame."""
    cached = frame.cache.get(CACHE_KEY)
    if cached is None:
        luma = frame.luma.astype(np.float32)  # luma: the source may deliver it without an RGB conversion
        gx = np.zeros_like(luma)
        gy = np.zeros_like(luma)
        # Central differences need three pixels along an axis; thinner frames have no gradient there.
        if luma.shape[1] >= 3:
            gx[:, 1:-1] = (luma[:, 2:] - luma[:, :-2]) * 0.5
        if luma.shape[0] >= 3:
            gy[1:-1, :] = (luma[2:, :] - luma[:-2, :]) * 0.5
        cached = np.hypot(gx, gy)
        frame.cache[CACHE_KEY] = cached  # freed with the frame's pixels (Frame.release)
    return cached


class EdgeDensity:
    """Scores each frame with the fraction of its pixels on an edge.

    :param threshold: gradient magnitude, in 8-bit luma levels per pixel, above which a pixel
        counts as an edge. The default catches clear edges and ignores film grain.
    """

    def __init__(self, threshold: float = 12.0) -> None:
        if not threshold > 0:
            raise ValueError("threshold must be > 0")
        self.threshold = float(threshold)

    def score(self, frames: Sequence[Frame]) -> list[float]:
        # Frame by frame: the result for one frame must not depend on the others in the batch.
        return [self._one(frame) for frame in frames]

    def _one(self, frame: Frame) -> float:
        magnitude = gradient_magnitude(frame)
        if magnitude.size == 0:
            return 0.0
        return float(np.count_nonzero(magnitude > self.threshold)) / magnitude.size

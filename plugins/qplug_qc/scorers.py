"""The ``qc`` scorers: thin per-frame wrappers around :mod:`qplug_qc.measures`.

Derived data that several scorers need (luma moments and level counts, sampled row bands,
quarter-size luma, a pixel sample of the RGB) is computed once per frame and kept in ``frame.cache``
under ``qc.*`` keys, so each piece of work is paid for by the first scorer that needs it. Scorers that
only need luma read ``frame.luma`` and never touch ``frame.rgb``: a video source can hand out its
Y plane without any RGB conversion.

Ranges and directions are declared once, in :data:`qplug_qc.SCORERS`; each class repeats them in
its docstring for readers, and values are clipped to the declared range before they are returned.
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import cv2
import numpy as np

from qplug.types import Frame

from . import SCORERS
from . import measures as m

T = TypeVar("T")

# The scorers run in one thread beside a decoder that keeps the other cores busy; OpenCV's own
# thread pool only adds hand-offs there (the per-frame cost doubled in measurements on 2 cores).
cv2.setNumThreads(1)


def _cached(frame: Frame, key: str, make: Callable[[], T]) -> T:
    value = frame.cache.get(key)
    if value is None:
        value = make()
        frame.cache[key] = value
    return value


def luma_moments(frame: Frame) -> tuple[float, float]:
    """Mean and standard deviation of the frame's luma in levels, computed once per frame."""
    return _cached(frame, "qc.luma_moments", lambda: m.luma_moments(frame.luma))


def luma_fraction_at_most(frame: Frame, level: int) -> float:
    """Fraction of the frame's pixels with luma <= ``level``, computed once per frame and level."""
    return _cached(frame, f"qc.luma_le.{level}", lambda: m.fraction_at_most(frame.luma, level))


def luma_bands(frame: Frame, factor: int = 1) -> tuple[np.ndarray, int]:
    """Sampled row bands of luma (see :func:`qplug_qc.measures.row_bands`), decimated by ``factor``
    (a power of two) with box averages; ``(stack, band_height)``."""
    def make() -> tuple[np.ndarray, int]:
        stack, band = m.row_bands(frame.luma, m.BAND_ROWS * factor, m.SAMPLE_PIXELS * factor * factor)
        if factor == 1:
            return stack, band
        bands = stack.shape[0] // band
        stack = m.halve(stack, factor.bit_length() - 1)
        return stack, stack.shape[0] // bands  # bands of 16*factor rows halve exactly

    return _cached(frame, f"qc.luma_bands.{factor}", make)


def luma_quarter(frame: Frame) -> np.ndarray:
    """Luma at a quarter of the size (4x4 box averages), computed once per frame."""
    return _cached(frame, "qc.luma_quarter", lambda: m.halve(frame.luma, 2))


def rgb_sample(frame: Frame, max_side: int) -> np.ndarray:
    """A regular pixel sample of the RGB, at most ``max_side`` on the longer side.

    Through :meth:`Frame.rgb_preview`, so a video frame converts only the sampled pixels to RGB.
    """
    return frame.rgb_preview(max_side)


class _FrameScorer:
    """Scores each frame on its own; subclasses implement :meth:`measure`."""

    name: ClassVar[str]

    def score(self, frames: Sequence[Frame]) -> list[float | None]:
        return [self._checked(self.measure(frame)) for frame in frames]

    def measure(self, frame: Frame) -> float | None:
        raise NotImplementedError

    def _checked(self, value: float | None) -> float | None:
        # Guard the declared range so reports and gates can trust it, whatever the input.
        if value is None or not math.isfinite(value):
            return None
        low, high = SCORERS[self.name].range
        return float(min(max(value, low), high))


def _check_level(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 255:
        raise ValueError(f"{option} must be a luma level in 0..255, got {value!r}")
    return int(value)


def _check_fraction(option: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        raise ValueError(f"{option} must be in ({low}, {high}], got {value!r}")
    return float(value)


class SharpnessScorer(_FrameScorer):
    """``sharpness``: log10(1 + variance of the 4-neighbour Laplacian of luma). Higher is better (sharper).

    Range [0, 6.02] (6.02 bounds the Laplacian's variance for 8-bit input). Typical values: sharp
    photos 2.5-3.7, below ~2 soft, defocused or upscaled, below ~1 heavily blurred. Best compared
    between pictures of similar content: the Laplacian also grows with contrast and texture.

    Resolution: frames whose short side is at least 2x ``reference_lines`` (UHD and above) are first
    box-decimated by a power of two to ~1080 lines, so a UHD master and its HD downscale read alike;
    smaller frames are measured as they are (an upscaled SD picture reads softer, as it looks).
    Log scaling keeps the number readable across the 4 decades the raw variance spans.

    Approximation: frames over ~0.5 MP (after decimation) are measured on evenly spaced full-width
    bands of 16 rows covering about 0.5 MP (a quarter of a 1080p frame), not on every row.
    """

    name = "sharpness"

    def __init__(self, reference_lines: int = m.REFERENCE_LINES) -> None:
        if isinstance(reference_lines, bool) or not isinstance(reference_lines, int) or reference_lines < 16:
            raise ValueError(f"reference_lines must be an integer >= 16, got {reference_lines!r}")
        self.reference_lines = reference_lines

    def measure(self, frame: Frame) -> float | None:
        factor = m.reference_factor(frame.height, frame.width, self.reference_lines)
        stack, band = luma_bands(frame, factor)
        return math.log10(1.0 + m.laplacian_variance(stack, band))


class NoiseScorer(_FrameScorer):
    """``noise``: estimated standard deviation of additive noise, in 8-bit luma levels. Lower is better.

    Range [0, 853] (the estimator's bound for 8-bit input; real pictures: under ~1.5 clean, 2-3
    visible grain, 5+ noisy). Immerkaer's 1996 estimator restricted to the flattest ``keep`` fraction of
    pixels (see :func:`qplug_qc.measures.immerkaer_sigma`), so edges and most texture are not
    counted; very fine texture everywhere (grass, gravel) still reads as some noise. Noise is a
    per-pixel property, so it is measured at native resolution, on the same ~0.5 MP row bands as
    sharpness. None when no pixel can be measured (frames under 3x3, a fully clipped frame).
    """

    name = "noise"

    def __init__(self, keep: float = 0.5) -> None:
        self.keep = _check_fraction("keep", keep)

    def measure(self, frame: Frame) -> float | None:
        stack, band = luma_bands(frame)
        return m.immerkaer_sigma(stack, band, self.keep)


class BlockingScorer(_FrameScorer):
    """``blocking``: strength of an 8x8 block grid (DCT codec blocking). Lower is better.

    Range [0, 1): ``(B - N) / (B + 1)`` clipped at 0, where B is the mean luma step across block
    edges and N the mean step everywhere else (see :func:`qplug_qc.measures.block_edge_excess`).
    ~0 for unblocked pictures; JPEG at quality 75 reads ~0.1-0.15, quality 30 ~0.3, quality 10
    ~0.5 (measured on photos). The grid is assumed to start at the frame origin. Full frame, both directions.
    None when the frame is too small to have a block edge.
    """

    name = "blocking"

    def __init__(self, grid: int = 8) -> None:
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
        self.grid = grid

    def measure(self, frame: Frame) -> float | None:
        return m.block_edge_excess(frame.luma, self.grid)


class ExposureScorer(_FrameScorer):
    """``exposure``: mean luma as a fraction of full range; 0.5 is ideal.

    Range [0, 1]. Two-sided, closer to 0.5 is better (too dark and too bright are both bad): ``ideal=0.5``,
    so an event threshold is a distance from mid-grey (``--event exposure=0.35:1`` flags stretches
    darker than 0.15 or brighter than 0.85). Use ``underexposure`` / ``overexposure`` for clipping.
    """

    name = "exposure"

    def measure(self, frame: Frame) -> float | None:
        return luma_moments(frame)[0] / 255.0


class UnderexposureScorer(_FrameScorer):
    """``underexposure``: fraction of pixels with luma <= ``level`` (default 5 of 255, ~2% of range:
    crushed shadows, allowing for codec ringing around true black). Range [0, 1]; lower is better."""

    name = "underexposure"

    def __init__(self, level: int = 5) -> None:
        self.level = _check_level("level", level)

    def measure(self, frame: Frame) -> float | None:
        return luma_fraction_at_most(frame, self.level)


class OverexposureScorer(_FrameScorer):
    """``overexposure``: fraction of pixels with luma >= ``level`` (default 250 of 255, ~2% from the top:
    blown highlights). Range [0, 1]; lower is better."""

    name = "overexposure"

    def __init__(self, level: int = 250) -> None:
        self.level = _check_level("level", level)

    def measure(self, frame: Frame) -> float | None:
        return 1.0 - luma_fraction_at_most(frame, self.level - 1)


class ContrastScorer(_FrameScorer):
    """``contrast``: RMS contrast, the standard deviation of luma / 255. Range [0, 0.5]; higher is better
    (within reason: ~0.2-0.3 is typical for well-exposed pictures, under ~0.1 looks flat or hazy)."""

    name = "contrast"

    def measure(self, frame: Frame) -> float | None:
        return luma_moments(frame)[1] / 255.0


class ColorfulnessScorer(_FrameScorer):
    """``colorfulness``: Hasler & Suesstrunk 2003 colourfulness M of the RGB. Higher is better (more colourful).

    Range [0, 377] (the bound for 8-bit input); 0 for grey, ~15 slightly, ~33 moderately, ~59 quite,
    ~82 highly, 109+ extremely colourful. A global statistic, so it is computed on a regular sample of
    whole pixels at most ``max_side`` on the longer side (160: ~14 k pixels of a 1080p frame; on
    test photos that moved M by at most 1% against using every pixel).
    """

    name = "colorfulness"

    def __init__(self, max_side: int = 160) -> None:
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 8:
            raise ValueError(f"max_side must be an integer >= 8, got {max_side!r}")
        self.max_side = max_side

    def measure(self, frame: Frame) -> float | None:
        return m.hasler_susstrunk(rgb_sample(frame, self.max_side))


class BlackScorer(_FrameScorer):
    """``black``: fraction of pixels darker than ``pix_th`` of full range. Range [0, 1]; lower is better.

    Follows ffmpeg's ``blackdetect``: a pixel is black when luma <= int(pix_th * 255) (pix_th 0.10:
    luma <= 25 on full-range luma), a picture is black when the fraction reaches pic_th 0.98, and a
    black segment is reported when it lasts d = 2 s; the registry's event defaults are those.
    """

    name = "black"

    def __init__(self, pix_th: float = 0.10) -> None:
        self.pix_th = _check_fraction("pix_th", pix_th)

    def measure(self, frame: Frame) -> float | None:
        return luma_fraction_at_most(frame, int(self.pix_th * 255))


class FrozenScorer:
    """``frozen`` (temporal): mean absolute luma change from the previous frame of the same source.

    Range [0, 1] as a fraction of full range; higher is better (0 = identical, frozen picture).
    Computed on quarter-size luma (4x4 box averages): 16x fewer pixels, and averaging damps grain so
    a frozen but noisy picture reads closer to 0. The comparison is with the previously *delivered*
    frame, so with frame sampling it spans the sampling interval. Event defaults follow ffmpeg's
    ``freezedetect``: frozen below n = -60 dB (0.001) for d = 2 s.

    None for the first frame of a source, and when the picture size changes mid-source.
    ``reset()`` (called before each new source) forgets the previous frame.
    """

    name: ClassVar[str] = "frozen"

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._source: str | None = None

    def reset(self) -> None:
        self._previous = None
        self._source = None

    def score(self, frames: Sequence[Frame]) -> list[float | None]:
        values: list[float | None] = []
        for frame in frames:
            small = luma_quarter(frame)
            previous = self._previous
            if previous is None or self._source != frame.source_id or previous.shape != small.shape:
                values.append(None)
            else:
                values.append(min(max(m.mean_abs_difference(small, previous), 0.0), 1.0))
            # Keep our own array: for frames too small to downscale the "quarter" is the source's
            # luma itself, which a decoder may reuse as a buffer for the next frame.
            self._previous = small.copy() if small is frame.luma else small
            self._source = frame.source_id
        return values

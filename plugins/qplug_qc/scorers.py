"""The ``qc`` scorers: thin per-frame wrappers around :mod:`qplug_qc.measures`.

Derived data that several scorers need (luma moments and level counts, sampled row bands,
quarter-size luma, a pixel sample of the RGB) is computed once per frame and kept in ``frame.cache``
under ``qc.*`` keys, so each piece of work is paid for by the first scorer that needs it. Scorers that
only need luma read ``frame.luma`` and never touch ``frame.rgb``: a video source can hand out its
Y plane without any RGB conversion.

Ranges and directions are declared once, in :data:`qplug_qc.SCORERS` (the broadcast checks in
:data:`qplug_qc.BROADCAST`); each class repeats them in its docstring for readers, and values are
clipped to the declared range before they are returned.
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import cv2
import numpy as np

from qplug.types import Frame, Score

from . import ALL_SCORERS
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
        low, high = ALL_SCORERS[self.name].range
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


# ---------------------------------------------------------------------------------------------
# Broadcast checks (qplug_qc.BROADCAST): not run by default, see there why

#: EBU R 103 v2.0 (2016) / v3.0 (2020), "Video signal tolerance in digital television systems":
#: signals may go 5 % of the nominal span below black and above white (8 bits: 5-246 for luma, the
#: recommendation's own table; 10 bits: 20-984), and excursions over up to 1 % of the picture are
#: tolerated (the registry's event threshold; EBU's note on v2.0: "small excursions both in terms of
#: level and affected image area (up to 1% of the image) can be allowed"). R 103 v1 (2000) gave luma
#: a tighter -1 %..103 % (8 bits: 14-241); v2.0 dropped that difference between Y and R, G, B.
#: R 103 states no Cb/Cr figures; the same 5 % of the nominal span (the way EBU QC item 0051B
#: computes R 103's limits from the expected range) is applied to chroma's 16-240 here.
R103_TOLERANCE = 0.05
#: nominal 8-bit limited ("narrow") range of ITU-R BT.601 / BT.709: luma 16-235, chroma 16-240
LUMA_NOMINAL = (16, 235)
CHROMA_NOMINAL = (16, 240)
_LIMITS = {"r103": R103_TOLERANCE, "nominal": 0.0}


def _check_limits(value: Any) -> float:
    if value not in _LIMITS:
        raise ValueError(f"limits must be one of {sorted(_LIMITS)}, got {value!r}")
    return _LIMITS[value]


def _range_score(planes: list[np.ndarray], bit_depth: int, nominal: tuple[int, int], tolerance: float) -> Score:
    """Fraction of samples outside the tolerated range, with the nominal sub-black/super-white split."""
    total = sum(p.size for p in planes)
    low, high = m.legal_limits(bit_depth, *nominal, tolerance)
    nominal_low, nominal_high = m.legal_limits(bit_depth, *nominal, 0.0)
    outside = below = above = 0.0
    for plane in planes:
        share = plane.size / total if total else 0.0
        under, over = m.fraction_outside(plane, nominal_low, nominal_high)
        below += under * share
        above += over * share
        if tolerance and (under or over):  # nothing outside nominal: nothing outside the tolerance either
            out_low, out_high = m.fraction_outside(plane, low, high)
            outside += (out_low + out_high) * share
        elif not tolerance:
            outside += (under + over) * share
    return Score(value=min(max(outside, 0.0), 1.0),
                 extra={"below": below, "above": above, "limits": [low, high], "bit_depth": bit_depth})


class _PlanesScorer(_FrameScorer):
    """Base of the legal-range checks: they read :attr:`Frame.planes`, the coded samples."""

    def __init__(self, limits: str = "r103") -> None:
        self.tolerance = _check_limits(limits)

    def score(self, frames: Sequence[Frame]) -> list[Score | None]:  # type: ignore[override]
        out: list[Score | None] = []
        for frame in frames:
            planes = frame.planes
            if planes is None or planes.full_range:
                out.append(None)  # no coded samples, or full range: there is no "illegal" level
                continue
            out.append(self.measure_planes(planes))
        return out

    def measure_planes(self, planes: Any) -> Score:
        raise NotImplementedError


class IllegalLumaScorer(_PlanesScorer):
    """``illegal_luma``: fraction of luma samples outside the legal range. Range [0, 1]; lower is better.

    Legal: EBU R 103's tolerance around the nominal 16-235 (-5 % to 105 % of the span: samples 5-246
    at 8 bits, 20-984 at 10 bits), or exactly 16-235 with ``limits="nominal"``. ``extra`` holds
    ``below`` and ``above``, the fractions under nominal black (sub-black) and over nominal white
    (super-white) whatever ``limits``, the ``limits`` applied and the planes' ``bit_depth``. Default
    event: more than 1 % of the picture (R 103's area tolerance) on any frame.

    Reads the coded samples (:attr:`qplug.types.Frame.planes`), never the RGB or the stretched luma.
    None when a frame has none (still images, RGB video) or when they are full range: full-range video
    has no illegal level. Video whose samples ffmpeg converts (10-bit, 4:2:2...) is checked on the
    8-bit conversion, whose 16-235 is 64-940 at 10 bits (see :mod:`qplug_video.colour`).
    """

    name = "illegal_luma"

    def measure_planes(self, planes: Any) -> Score:
        return _range_score([planes.y], planes.bit_depth, LUMA_NOMINAL, self.tolerance)


class IllegalChromaScorer(_PlanesScorer):
    """``illegal_chroma``: fraction of Cb and Cr samples outside the legal range. Range [0, 1]; lower is better.

    Legal: the tolerance of R 103 around the nominal 16-240 (5-251 at 8 bits, 19-1005 at 10 bits),
    or exactly 16-240 with ``limits="nominal"``. Both chroma planes count, as subsampled. ``extra``
    as for ``illegal_luma`` (``below``/``above``: under 16 / over 240). None without coded planes
    or for full-range video, as ``illegal_luma``.
    """

    name = "illegal_chroma"

    def measure_planes(self, planes: Any) -> Score:
        return _range_score([planes.u, planes.v], planes.bit_depth, CHROMA_NOMINAL, self.tolerance)


class CombingScorer(_FrameScorer):
    """``combing``: fraction of the picture's 16x16 blocks that show interlace combing. Range [0, 1];
    lower is better (0: no combing anywhere).

    Read from the decoded picture itself, so it finds interlaced content whatever the stream's flags
    say (see :func:`qplug_qc.measures.combed_blocks`: ffmpeg ``fieldmatch``'s combed-pixel test with
    ``threshold`` 9 and ``combpel`` 80 of 256, plus a same-field test that keeps progressive detail,
    thin lines and stripes of 3 lines or more from reading as combed). Clean progressive video reads
    0; a panned picture woven from two fields reads a few % and more. Combing only shows where
    something moved between the fields: a still interlaced shot reads 0, as it looks. One-line
    stripes are, in a single frame, the same signal as combing and read as combed.

    The video source deinterlaces streams *flagged* interlaced (bwdif) before scorers see them, so
    there this measures what is left after deinterlacing; on unflagged streams it measures the
    frames as coded. Scaling (``--max-side``) mixes the fields and hides combing. Measured on the
    same ~0.5 MP row bands as sharpness; None for frames under 16 pixels wide or 5 rows high.
    Default event: over 1 % of the blocks for 1 s.
    """

    name = "combing"

    def __init__(self, threshold: int = 9, combpel: float = 80 / 256) -> None:
        self.threshold = _check_level("threshold", threshold)
        self.combpel = _check_fraction("combpel", combpel)

    def score(self, frames: Sequence[Frame]) -> list[Score | None]:  # type: ignore[override]
        return [self._combing(frame) for frame in frames]

    def _combing(self, frame: Frame) -> Score | None:
        found = m.combed_blocks(*luma_bands(frame), self.threshold, combpel=self.combpel)
        if found is None:
            return None
        blocks, pixels = found
        # extra: the fraction of (sampled) pixels that passed the per-pixel test, for finer tuning
        return Score(value=min(max(blocks, 0.0), 1.0), extra={"pixels": pixels})


class BarsScorer(_FrameScorer):
    """``bars``: fraction of the picture covered by black letterbox/pillarbox bars. Range [0, 1];
    lower is better (0: the picture fills the frame; a 2.39:1 film letterboxed in 16:9 reads ~0.26).

    A border row or column is black when its mean luma is at most ``limit`` (ffmpeg ``cropdetect``'s
    default, 24 of 255, applied here to full-range luma) and it has no pixel over ``bright`` (2x that),
    so stars in a night sky or subtitles in a bar stop the bar there. ``extra`` holds each side's
    bar as a fraction of the frame's height (``top``, ``bottom``) or width (``left``, ``right``) and
    the active picture as ``[x, y, width, height]`` in pixels, as cropdetect's ``crop=w:h:x:y``.

    None when there is nothing to measure against: a black frame (that is ``black``'s business, not
    a letterbox), or a picture whose non-black part covers under ``min_active`` of the frame (a
    title on black, a small bright object in a dark scene: no real letterbox leaves so little; a
    9:16 picture pillarboxed in 16:9 keeps 32 %). Dark scenes can still make a dark edge of the
    picture read as a bar on some frames: the default event asks for 2 % of the picture for 2 s.
    """

    name = "bars"

    def __init__(self, limit: int = 24, bright: int | None = None, min_active: float = 0.25) -> None:
        self.limit = _check_level("limit", limit)
        self.bright = _check_level("bright", bright if bright is not None else min(2 * self.limit, 255))
        self.min_active = _check_fraction("min_active", min_active)

    def score(self, frames: Sequence[Frame]) -> list[Score | None]:  # type: ignore[override]
        return [self._bars(frame) for frame in frames]

    def _bars(self, frame: Frame) -> Score | None:
        luma = frame.luma
        height, width = luma.shape[:2]
        found = m.black_bars(luma, self.limit, self.bright)
        if found is None:
            return None
        top, bottom, left, right = found
        active_h, active_w = max(height - top - bottom, 0), max(width - left - right, 0)
        active = active_h * active_w / (height * width)
        if active < self.min_active:
            return None
        return Score(value=min(max(1.0 - active, 0.0), 1.0),
                     extra={"top": top / height, "bottom": bottom / height, "left": left / width,
                            "right": right / width, "active": [left, top, active_w, active_h]})

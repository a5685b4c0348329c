"""Array-level measures behind the ``qc`` scorers: uint8 arrays in, plain floats out.

Everything runs through OpenCV primitives that are SIMD-vectorised and release the GIL; numpy is
used only on small arrays (histograms, per-column sums) or for cheap views, because a full-frame
numpy expression on 1080p costs milliseconds where the whole qc set has to fit in a few.
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

#: pixels that the neighbourhood measures (sharpness, noise) look at per frame: ~0.5 MP.
#: Larger frames are sampled in evenly spaced full-width row bands (see :func:`row_bands`).
SAMPLE_PIXELS = 1 << 19
#: height of one sampled band; its first and last rows only serve as 3x3 context
BAND_ROWS = 16
#: sharpness is measured at no more than this many lines (short side), see :func:`reference_factor`
REFERENCE_LINES = 1080

_SECOND_DIFF = np.array([1.0, -2.0, 1.0], np.float32)  # Immerkaer's mask is its outer product


# ---------------------------------------------------------------------------------------------
# Luma statistics: exposure, under/over-exposure, contrast and black all derive from these
#
# A 256-bin histogram would serve them all, but cv2.calcHist is scalar code (~1.2 ms on a 1080p
# frame fresh from the decoder) while a sum, a sum of squares and one compare-and-count per
# threshold are SIMD passes (~0.5 ms for all of them), exact either way.


def luma_moments(luma: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of uint8 luma, in levels (exact: OpenCV sums in float64)."""
    n = luma.size
    if n == 0:
        return 0.0, 0.0
    mean = cv2.sumElems(luma)[0] / n
    var = cv2.norm(luma, cv2.NORM_L2SQR) / n - mean * mean
    return mean, math.sqrt(max(var, 0.0))


def fraction_at_most(luma: np.ndarray, level: int) -> float:
    """Fraction of pixels with luma <= ``level``."""
    if luma.size == 0 or level < 0:
        return 0.0
    if level >= 255:
        return 1.0
    # threshold, not compare: cv2.compare reads a Python int as an array when luma has <= 4 pixels
    return cv2.countNonZero(cv2.threshold(luma, level, 255, cv2.THRESH_BINARY_INV)[1]) / luma.size


# ---------------------------------------------------------------------------------------------
# Row-band sampling for the 3x3 neighbourhood measures


def row_bands(luma: np.ndarray, band: int = BAND_ROWS, budget: int = SAMPLE_PIXELS) -> tuple[np.ndarray, int]:
    """Evenly spaced full-width bands of ``band`` rows stacked into one contiguous array.

    Returns ``(stack, band_height)``; ``stack`` holds ``stack.shape[0] // band_height`` bands. A frame
    within ``budget`` pixels comes back whole (one band as tall as the frame, no copy). Full-width
    bands spread over the whole height keep every part of the picture represented (a centre crop
    would miss borders and skies); the stack lets one OpenCV call filter all bands at once, and the
    rows where two bands meet are discarded by the callers.
    """
    height, width = luma.shape[:2]
    if height * width <= budget or height <= 2 * band:
        return luma, height
    count = max(2, min(height // band, -(-budget // (width * band))))
    starts = np.linspace(0, height - band, count).round().astype(int)
    return np.concatenate([luma[s:s + band] for s in starts]), band


def reference_factor(height: int, width: int, reference: int = REFERENCE_LINES) -> int:
    """Power-of-two decimation that brings the short side to at most ~``reference`` lines (UHD: 2)."""
    short = min(height, width)
    return 1 << max(0, math.floor(math.log2(short / reference))) if short >= 2 * reference else 1


def halve(stack: np.ndarray, times: int) -> np.ndarray:
    """Downscale by 2**times with 2x2 box averages (OpenCV's fast exact path of INTER_AREA)."""
    for _ in range(times):
        height, width = stack.shape[:2]
        if height < 2 or width < 2:
            break
        stack = cv2.resize(stack[:height // 2 * 2, :width // 2 * 2], (width // 2, height // 2),
                           interpolation=cv2.INTER_AREA)
    return stack


def _seam_rows(rows: int, band: int) -> list[int]:
    """Rows of the interior (``stack[1:-1]``) whose 3x3 neighbourhood reaches into the next band."""
    return [i for k in range(1, rows // band) for i in (k * band - 2, k * band - 1)]


# ---------------------------------------------------------------------------------------------
# Sharpness


def laplacian_variance(stack: np.ndarray, band: int) -> float:
    """Variance of the 4-neighbour Laplacian over the valid (non-border, non-seam) pixels of a band stack.

    0.0 when no pixel has a full 3x3 neighbourhood (frames under 3x3).
    """
    rows, width = stack.shape[:2]
    if band < 3 or width < 3:
        return 0.0
    lap = cv2.Laplacian(stack, cv2.CV_16S)  # |values| <= 1020: exact in int16
    # Zero the rows and columns whose neighbourhood is reflected border or another band, so the
    # plain (fast) sums below only see valid pixels; the count n excludes them.
    per_band = lap.reshape(rows // band, band, width)
    per_band[:, 0] = 0
    per_band[:, band - 1] = 0
    lap[:, 0] = 0
    lap[:, width - 1] = 0
    n = (rows // band) * (band - 2) * (width - 2)
    mean = cv2.sumElems(lap)[0] / n
    return max(cv2.norm(lap, cv2.NORM_L2SQR) / n - mean * mean, 0.0)


# ---------------------------------------------------------------------------------------------
# Noise


def immerkaer_sigma(stack: np.ndarray, band: int, keep: float = 0.5, low: int = 6, high: int = 249) -> float | None:
    """Noise standard deviation (levels) by Immerkaer's fast estimator on the flattest pixels.

    J. Immerkaer, "Fast Noise Variance Estimation", Computer Vision and Image Understanding 64(2),
    300-302, 1996: sigma = sqrt(pi/2) / (6 N) * sum |I * M| with M = [1 -2 1]^T [1 -2 1], a mask that
    cancels locally planar signal. As in Tai & Yang, "Fast and reliable image-noise estimation using
    edge detection", ICASSP 2008, edges are left out so texture is not read as noise: only the
    ``keep`` fraction of pixels with the smallest gradient ``|dx| + |dy|`` (central differences) is
    used. Central differences are antisymmetric and M symmetric, so for white noise the two are
    uncorrelated and the selection does not bias the estimate. Pixels outside ``[low, high]`` (the
    under/overexposure levels) are skipped too: clipping removes noise there.

    None when nothing can be measured (frames under 3x3, a frame entirely clipped to black/white).
    """
    rows, width = stack.shape[:2]
    if band < 3 or width < 3:
        return None
    response = np.abs(cv2.sepFilter2D(stack, cv2.CV_16S, _SECOND_DIFF, _SECOND_DIFF)[1:-1, 1:-1])
    inner = stack[1:-1, 1:-1]
    gradient = cv2.add(cv2.absdiff(stack[1:-1, 2:], stack[1:-1, :-2]),
                       cv2.absdiff(stack[2:, 1:-1], stack[:-2, 1:-1]))
    # 255 marks "never use": clipped pixels and the rows next to a seam between two bands.
    # (thresholds rather than cv2.inRange/compare, which misread scalars for arrays of <= 4 pixels)
    cv2.max(gradient, cv2.threshold(inner, low - 1, 255, cv2.THRESH_BINARY_INV)[1], dst=gradient)
    cv2.max(gradient, cv2.threshold(inner, high, 255, cv2.THRESH_BINARY)[1], dst=gradient)
    seams = _seam_rows(rows, band)
    if seams:
        gradient[seams] = 255
    # The quantile is read from every 4th row: ~140 k values pin it down and the histogram is the
    # slowest step of the estimator otherwise. The count and sum below use every pixel.
    hist = cv2.calcHist([gradient[::4] if rows > 64 else gradient], [0], None, [256], [0, 256]).ravel()
    usable = float(hist[:255].sum())
    if usable <= 0:
        return None
    threshold = min(int(np.searchsorted(np.cumsum(hist), keep * usable)), 254)
    mask = cv2.threshold(gradient, threshold, 255, cv2.THRESH_BINARY_INV)[1]  # 255 where <= threshold
    n = cv2.countNonZero(mask)
    if n == 0:
        return None
    total = cv2.norm(cv2.copyTo(response, mask, np.zeros_like(response)), cv2.NORM_L1)
    return math.sqrt(math.pi / 2) * total / (6.0 * n)


# ---------------------------------------------------------------------------------------------
# Blocking


def block_edge_excess(luma: np.ndarray, grid: int = 8, floor: float = 1.0) -> float | None:
    """Excess luma step across the edges of a ``grid``-pixel block grid anchored at (0, 0).

    With B the mean |step| between pixels on either side of a block edge and N the mean |step|
    between all other neighbours (both directions pooled), returns ``max(0, (B - N) / (B + floor))``:
    0 when block edges are no different from the rest of the picture, towards 1 when almost all
    the step at block edges is excess (strong blocking). ``floor`` (levels) keeps flat pictures, where
    B and N are both tiny, from reading as blocky. Natural content has no 8-pixel periodicity, so
    without blocking B ~ N whatever the texture. The grid is assumed aligned with the frame
    origin, as decoded codec output is (a cropped or rescaled picture would hide its grid).

    None when the frame has no block edge at all (both sides <= ``grid``).
    """
    height, width = luma.shape[:2]
    edge_sum = other_sum = 0.0
    edge_n = other_n = 0
    if width > grid:
        # per-column sums of |Y[:, x+1] - Y[:, x]|: position x is a block edge when x % grid == grid-1
        cols = cv2.reduce(cv2.absdiff(luma[:, 1:], luma[:, :-1]), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        on_edge = cols[grid - 1::grid]
        edge_sum += float(on_edge.sum())
        other_sum += float(cols.sum()) - float(on_edge.sum())
        edge_n += on_edge.size * height
        other_n += (cols.size - on_edge.size) * height
    if height > grid:
        rows = cv2.reduce(cv2.absdiff(luma[1:], luma[:-1]), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        on_edge = rows[grid - 1::grid]
        edge_sum += float(on_edge.sum())
        other_sum += float(rows.sum()) - float(on_edge.sum())
        edge_n += on_edge.size * width
        other_n += (rows.size - on_edge.size) * width
    if edge_n == 0:
        return None
    edge = edge_sum / edge_n
    other = other_sum / other_n if other_n else edge
    return max(0.0, (edge - other) / (edge + floor))


# ---------------------------------------------------------------------------------------------
# Colourfulness

# rows: rg = R - G, yb = (R + G) / 2 - B
_OPPONENT = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]], np.float32)


def hasler_susstrunk(rgb: np.ndarray) -> float:
    """Colourfulness M of Hasler & Suesstrunk, "Measuring colourfulness in natural images",
    Proc. SPIE 5007, 2003: ``M = sigma_rgyb + 0.3 * mu_rgyb`` over the opponent channels
    rg = R - G and yb = (R + G)/2 - B of 8-bit sRGB.

    About 0 for grey, 15 slightly, 33 moderately, 59 quite, 82 highly and 109+ extremely colourful.
    """
    opp = cv2.transform(rgb.astype(np.float32), _OPPONENT)
    mean, std = cv2.meanStdDev(opp)
    return math.hypot(float(std[0, 0]), float(std[1, 0])) + 0.3 * math.hypot(float(mean[0, 0]), float(mean[1, 0]))


# ---------------------------------------------------------------------------------------------
# Temporal change


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two same-shape uint8 arrays, as a fraction of full range."""
    return cv2.norm(a, b, cv2.NORM_L1) / (a.size * 255.0) if a.size else 0.0


# ---------------------------------------------------------------------------------------------
# Broadcast checks: legal range, combing, letterbox/pillarbox bars


def legal_limits(bit_depth: int, low: int, high: int, tolerance: float) -> tuple[int, int]:
    """Lowest and highest legal sample value of a limited-range component at ``bit_depth``.

    ``low``/``high`` are the nominal 8-bit levels (luma 16-235, chroma 16-240, ITU-R BT.601/BT.709),
    scaled by 2**(bits-8) as those standards do (10 bits: 64-940, 64-960). ``tolerance`` widens the
    range by that fraction of its span on both sides: EBU R 103 v2.0/v3.0 allows -5 % to 105 %, which
    gives 5-246 at 8 bits and 20-984 at 10 bits, the figures of its own table.
    """
    scale = 1 << (bit_depth - 8)
    lo, hi = low * scale, high * scale
    margin = tolerance * (hi - lo)
    return round(lo - margin), round(hi + margin)


def fraction_outside(samples: np.ndarray, low: int, high: int) -> tuple[float, float]:
    """Fractions of ``samples`` below ``low`` and above ``high`` (uint8 or uint16, exact).

    One min/max pass answers the common legal case; only a component that does leave the range pays
    for the counts.
    """
    n = samples.size
    if n == 0:
        return 0.0, 0.0
    if n < 16:  # OpenCV reads a Python scalar as an array for inputs of <= 4 elements
        return float(np.count_nonzero(samples < low)) / n, float(np.count_nonzero(samples > high)) / n
    smallest, largest, _, _ = cv2.minMaxLoc(samples)
    below = above = 0.0
    if smallest < low:
        below = (n - cv2.countNonZero(cv2.inRange(samples, low, 65535))) / n
    if largest > high:
        above = (n - cv2.countNonZero(cv2.inRange(samples, 0, high))) / n
    return below, above


def combed_blocks(stack: np.ndarray, band: int, threshold: int = 9, block: int = 16,
                  combpel: float = 80 / 256) -> tuple[float, float] | None:
    """Combing in a stack of row bands: (fraction of blocks combed, fraction of pixels combed).

    A pixel is combed when it is a peak or a trough against both lines of the other field by more
    than ``threshold`` (the test of ffmpeg's ``fieldmatch`` combed-frame detection, ``cthresh`` 9,
    after T. Tritical's IsCombedTIVTC) *and* by more than it departs from the lines of its own field
    (``|Y - Y[r-2]| + |Y - Y[r+2]|``). The second condition is what keeps progressive detail out:
    a sinusoid of vertical period p lines peaks against the other field by (1 - cos(2 pi/p)) and
    against its own field by up to 2 (1 - cos(4 pi/p)), so only patterns finer than about 2.6 lines
    (the field-alternating pattern of combing) pass; a thin line, a sharp edge or stripes of 3 lines
    and more never do. A field-alternating pattern is by itself indistinguishable from combing in
    one frame: 1-line stripes read as combed (only a temporal test such as ``idet`` can tell).

    A block (``block`` columns by the interior rows of one band) is combed when at least ``combpel``
    of its pixels are (fieldmatch: ``combpel`` 80 of a 16x16 block), so grain and isolated fine
    detail do not add up to a combed frame. None when the bands are too small to measure.
    """
    rows, width = stack.shape[:2]
    if band < 5 or width < block:
        return None
    bands = rows // band
    # Interior rows of every band (2 rows of context each side), as shifted views of the stack.
    y, up, down, up2, down2 = (stack[k:rows - 4 + k] for k in (2, 1, 3, 0, 4))
    peak = cv2.max(cv2.subtract(y, cv2.max(up, down)), cv2.subtract(cv2.min(up, down), y))
    own = cv2.add(cv2.absdiff(y, up2), cv2.absdiff(y, down2))
    combed = cv2.threshold(cv2.subtract(peak, own), threshold, 1, cv2.THRESH_BINARY)[1]
    inner = band - 4
    tall = min(inner, block)  # rows of a block: the interior of a 16-row band, or 16 rows of a whole frame
    usable = width // block * block
    groups = [(b * band + g * tall) for b in range(bands) for g in range(inner // tall)]
    counts = np.empty((len(groups), usable), np.int32)
    for i, start in enumerate(groups):  # the 4 rows where two bands meet are never part of a block
        counts[i] = cv2.reduce(combed[start:start + tall, :usable], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    per_block = counts.reshape(len(groups), usable // block, block).sum(axis=2)
    pixels = len(groups) * tall * usable
    return float(np.count_nonzero(per_block >= combpel * tall * block)) / per_block.size, float(per_block.sum()) / pixels


def _edge_run(black: np.ndarray) -> int:
    """How many leading entries of a boolean vector are True."""
    stop = np.flatnonzero(~black)
    return int(stop[0]) if stop.size else black.size


def black_bars(luma: np.ndarray, limit: float = 24.0, bright: float = 48.0,
               rounds: int = 8) -> tuple[int, int, int, int] | None:
    """Black borders of a picture in pixels: (top, bottom, left, right); None when there is no content.

    A row (column) is black when its mean luma is at most ``limit``, as in ffmpeg's ``cropdetect``
    (default ``limit`` 24 of 255). A bar must also hold no pixel brighter than ``bright``: a dark
    night sky with stars, or subtitles in the bar, stop it there (OpenCV's minMaxLoc finds the
    brightest pixel; the bar is cut before it, ``rounds`` times at most, then given up as 0).
    """
    height, width = luma.shape[:2]
    if height == 0 or width == 0:
        return None
    black_rows = cv2.reduce(luma, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel() <= limit
    if black_rows.all():
        return None
    black_cols = cv2.reduce(luma, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel() <= limit
    top = _edge_run(black_rows)
    bottom = _edge_run(black_rows[::-1])
    left = _edge_run(black_cols)
    right = _edge_run(black_cols[::-1])

    def trim(size: int, region: Callable[[int], np.ndarray], vertical: bool, from_start: bool) -> int:
        for _ in range(rounds):
            if size == 0:
                return 0
            _, largest, _, at = cv2.minMaxLoc(region(size))
            if largest <= bright:
                return size
            where = at[1] if vertical else at[0]  # minMaxLoc gives (x, y)
            size = where if from_start else size - 1 - where
        return 0

    top = trim(top, lambda n: luma[:n], True, True)
    bottom = trim(bottom, lambda n: luma[height - n:], True, False)
    left = trim(left, lambda n: luma[:, :n], False, True)
    right = trim(right, lambda n: luma[:, width - n:], False, False)
    return top, bottom, left, right

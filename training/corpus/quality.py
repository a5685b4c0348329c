"""Full-reference quality of a distorted crop against its pristine crop, as a pseudo-MOS in [1, 5].

The corpus has no human ratings, so each image gets a *pseudo*-MOS from full-reference measures:

- **MS-SSIM on luma** (Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image
  quality assessment"): 5 scales, exponents 0.0448, 0.2856, 0.3001, 0.2363, 0.1333, K1 = 0.01,
  K2 = 0.03, an 11-tap Gaussian window with sigma 1.5, 2x2 averaging between scales. It carries the
  structural distortions (blur, noise, compression, resampling, banding).
- Terms MS-SSIM gets wrong across distortion types: it never sees chroma, and its contrast term
  rates a plain exposure or contrast change as harshly as heavy noise. So MS-SSIM is taken after
  undoing a global gain/offset, and explicit terms charge **contrast loss**, **chroma shift**
  (CIELAB Delta-E of low-passed a*, b*: casts, (de)saturation), **colour noise** (high-passed
  a*, b*), **exposure** (mean L* shift and newly clipped pixels), **detail loss** (gradient energy
  lost) and **blockiness** (8x8 grid steps).

The terms are summed into one distortion ``D`` and mapped to [1, 5] by a monotonic log-logistic
(:func:`mos_from_distortion`). The weights were fitted once against by-eye ratings and checked on
real crops with ``python -m qplug_training.corpus.calibrate`` (procedure and table in docs/corpus.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: MS-SSIM scale exponents, finest first [Wang, Simoncelli & Bovik 2003, Sec. 3.2].
MSSSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2, _L = 0.01, 0.03, 255.0
_C1, _C2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
_WIN_SIGMA = 1.5
_WIN_SIZE = 11

#: Q-Align's five levels, best first, and their lower MOS bounds on [1, 5]. Q-Align splits the
#: MOS range into five equal intervals, one per level word [Q-Align, arXiv 2312.17090, Sec. 3.1].
LEVELS: tuple[str, ...] = ("excellent", "good", "fair", "poor", "bad")
LEVEL_LOWER: tuple[float, ...] = (4.2, 3.4, 2.6, 1.8, 1.0)
#: The value each level word stands for when scoring (5..1) [Q-Align scorer.py].
LEVEL_VALUE: dict[str, float] = {"excellent": 5.0, "good": 4.0, "fair": 3.0, "poor": 2.0, "bad": 1.0}

# --- calibration constants (docs/corpus.md, "pseudo-MOS"). Fitted once by least squares on a
# textured real crop against by-eye ratings of every distortion at five severities, then rounded.
#: Per unit of ln(1/a), a = the large-scale contrast ratio (distorted / pristine) when below 1.
W_CONTRAST = 0.045
#: Per Delta-E_ab unit of the low-passed (sigma 2) a*b* difference: colour casts, (de)saturation.
W_CHROMA = 0.0041
#: Per Delta-E_ab unit of the high-passed a*b* difference: colour noise, chroma bleeding.
W_CHROMA_HF = 0.0031
#: Per L* unit of mean lightness shift.
W_LUMA = 0.00036
#: Per unit fraction of pixels newly clipped to black or white.
W_CLIP = 0.21
#: Per unit of relative gradient loss (lost detail).
W_DETAIL = 0.07
#: Per unit of relative 8x8 block-edge excess (JPEG / H.264 blocking).
W_BLOCK = 0.095
#: D at which the pseudo-MOS is 3 (the middle of "fair"), and the slope of the log-logistic.
D_MID = 0.102
SLOPE = 1.88


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 image, float64 in [0, 255] (what SSIM is usually run on)."""
    x = rgb.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _blur(x: np.ndarray) -> np.ndarray:
    # Reflective borders keep small images usable; the SSIM maps are cropped afterwards anyway.
    return cv2.GaussianBlur(x, (_WIN_SIZE, _WIN_SIZE), _WIN_SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean luminance*cs (the SSIM index) and mean contrast-structure term of one scale."""
    mx, my = _blur(x), _blur(y)
    sxx = _blur(x * x) - mx * mx
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    cs_map = (2.0 * sxy + _C2) / (sxx + syy + _C2)
    l_map = (2.0 * mx * my + _C1) / (mx * mx + my * my + _C1)
    # Drop the border where the window ran over the reflected edge (the reference "valid" filter),
    # but only when the image is large enough to keep something.
    pad = _WIN_SIZE // 2
    if min(x.shape) > 4 * pad:
        cs_map = cs_map[pad:-pad, pad:-pad]
        l_map = l_map[pad:-pad, pad:-pad]
    return float(np.mean(l_map * cs_map)), float(np.mean(cs_map))


def n_scales(shape: tuple[int, ...], max_scales: int = 5) -> int:
    """Scales usable for an image: the coarsest must still be at least one window (11 px) wide."""
    side = min(shape[:2])
    n = 1
    while n < max_scales and side / 2 ** n >= _WIN_SIZE:
        n += 1
    return n


def ms_ssim(ref: np.ndarray, dist: np.ndarray, weights: tuple[float, ...] = MSSSIM_WEIGHTS) -> float:
    """MS-SSIM of two images of the same size (RGB uint8 compared on luma, or 2-D arrays).

    Images too small for five scales (the reference needs 176 px) use the first ``n`` weights,
    renormalised to sum to one. Negative contrast-structure values (anti-correlated structure)
    are clamped to zero before the fractional powers, as pytorch-msssim does with ``relu``.
    """
    if ref.shape != dist.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {dist.shape}")
    x = luma(ref) if ref.ndim == 3 else ref.astype(np.float64)
    y = luma(dist) if dist.ndim == 3 else dist.astype(np.float64)
    n = n_scales(x.shape, len(weights))
    w = np.asarray(weights[:n], dtype=np.float64)
    w = w / w.sum()
    value = 1.0
    for i in range(n):
        ssim, cs = _ssim_terms(x, y)
        if i == n - 1:
            value *= max(ssim, 0.0) ** w[i]
        else:
            value *= max(cs, 0.0) ** w[i]
            h, wd = x.shape
            h2, w2 = h // 2 * 2, wd // 2 * 2  # 2x2 average, as the reference implementation
            x = x[:h2, :w2].reshape(h2 // 2, 2, w2 // 2, 2).mean(axis=(1, 3))
            y = y[:h2, :w2].reshape(h2 // 2, 2, w2 // 2, 2).mean(axis=(1, 3))
    return float(value)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of an sRGB uint8 image: L* in [0, 100], a*, b* roughly [-128, 127]."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


@dataclass(frozen=True)
class Measures:
    """The full-reference measures behind one pseudo-MOS (see :func:`measure`)."""

    #: Plain MS-SSIM of the two lumas.
    ms_ssim: float
    #: MS-SSIM after aligning the distorted luma's large-scale gain and offset to the pristine one.
    ms_ssim_aligned: float
    #: Large-scale contrast ratio a (distorted / pristine, 5-95 percentile range of a sigma-6 low-pass).
    contrast_ratio: float
    #: Mean Delta-E_ab over a*, b* after a sigma-2 low-pass: colour shift, not colour noise.
    chroma_shift: float
    #: Mean Delta-E_ab of the high-passed a*, b* difference: colour noise.
    chroma_noise: float
    #: |mean L*(distorted) - mean L*(pristine)|.
    luma_shift: float
    #: Fraction of pixels clipped (luma <= 2 or >= 253) in the distorted but not the pristine crop.
    clipped: float
    #: Mean gradient magnitude lost, relative to the pristine mean gradient (+8).
    detail_loss: float
    #: Excess of luma steps across 8-px block boundaries over steps inside blocks, relative.
    blockiness: float
    distortion: float
    pseudo_mos: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 5) for k, v in asdict(self).items()}


def _clipped_mask(y: np.ndarray) -> np.ndarray:
    return (y <= 2.0) | (y >= 253.0)


def _large_scale(y: np.ndarray) -> tuple[float, float]:
    """(5-95 percentile range, mean) of a sigma-6 low-pass: global tone, blind to blur and noise."""
    low = cv2.GaussianBlur(y, (0, 0), 6.0, borderType=cv2.BORDER_REFLECT)
    p5, p95 = np.percentile(low, (5, 95))
    return float(p95 - p5), float(y.mean())


def _gradient(y: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(y, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_64F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _block_edges(y: np.ndarray, block: int = 8) -> tuple[float, float]:
    """(boundary minus interior mean absolute step, mean step) on an 8-px grid.

    Steps across block boundaries that exceed the steps inside blocks are the classic signature of
    block-based coding (Wang, Sheikh & Bovik 2002, "No-reference perceptual quality assessment of
    JPEG compressed images").
    """
    dh = np.abs(np.diff(y, axis=1))
    dv = np.abs(np.diff(y, axis=0))
    if dh.shape[1] < block or dv.shape[0] < block:
        return 0.0, float((dh.mean() + dv.mean()) / 2.0)
    jb = (np.arange(dh.shape[1]) % block) == block - 1
    ib = (np.arange(dv.shape[0]) % block) == block - 1
    excess = (dh[:, jb].mean() - dh[:, ~jb].mean() + dv[ib].mean() - dv[~ib].mean()) / 2.0
    return float(excess), float((dh.mean() + dv.mean()) / 2.0)


def mos_from_distortion(d: float) -> float:
    """Monotonic map from the combined distortion ``D >= 0`` to [1, 5].

    A log-logistic, ``1 + 4 / (1 + (D / D_MID) ** SLOPE)``: exactly 5 for D = 0, 3 at D = D_MID,
    tending to 1. Log-logistic because just-visible losses are around D = 0.01 and severe ones
    around 0.3: the perceptual range spans decades of D.
    """
    if d <= 0.0:
        return 5.0
    return 1.0 + 4.0 / (1.0 + (d / D_MID) ** SLOPE)


#: (equivalent Gaussian sigma in px, highest pseudo-MOS) anchors of :func:`blur_ceiling`. Issue 16 asks
#: that a Gaussian blur of sigma >= 3 px on 1080p frames (which the model sees at native resolution)
#: read below 2.5 whatever the scene; the full-reference measures alone rate it 2.5-4.0 on crops with
#: few edges (a thin subject on a smooth background), so the model learned that blur there is fine.
BLUR_CEILING_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.7, 5.0), (1.0, 4.5), (1.5, 3.8), (2.0, 3.2), (3.0, 2.2), (4.0, 1.7), (6.0, 1.3))


def blur_ceiling(sigma: float) -> float:
    """The highest pseudo-MOS an image blurred by ``sigma`` px (equivalent Gaussian) may get:
    piecewise linear between :data:`BLUR_CEILING_ANCHORS`, 5 below the first, flat after the last."""
    xs, ys = zip(*BLUR_CEILING_ANCHORS)
    return float(np.interp(sigma, xs, ys))


def measure(ref: np.ndarray, dist: np.ndarray) -> Measures:
    """All measures and the pseudo-MOS of ``dist`` (RGB uint8) against its pristine ``ref``.

    ``D = (1 - MS-SSIM_aligned) + W_CONTRAST ln(1/a)+ + W_CHROMA dE_low + W_CHROMA_HF dE_high
    + W_LUMA |dL*| + W_CLIP clipped + W_DETAIL detail_loss + W_BLOCK blockiness``.

    MS-SSIM is computed after undoing a global gain/offset of the distorted luma (estimated on a
    sigma-6 low-pass, so blur and noise do not move it): exposure and contrast changes are charged
    by the explicit contrast, lightness and clipping terms instead of MS-SSIM's contrast term.
    """
    if ref.shape != dist.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {dist.shape}")
    yr, yd = luma(ref), luma(dist)
    raw = ms_ssim(yr, yd)
    range_r, mean_r = _large_scale(yr)
    range_d, mean_d = _large_scale(yd)
    # Floors keep flat crops (a few levels of range) from producing wild ratios.
    a = max(range_d, 4.0) / max(range_r, 4.0)
    aligned = ms_ssim(yr, (yd - mean_d) / a + mean_r)
    lab_r, lab_d = to_lab(ref), to_lab(dist)
    diff = lab_d[..., 1:] - lab_r[..., 1:]
    low = cv2.GaussianBlur(diff, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    high = diff - low
    chroma = float(np.mean(np.sqrt(low[..., 0] ** 2 + low[..., 1] ** 2)))
    chroma_hf = float(np.mean(np.sqrt(high[..., 0] ** 2 + high[..., 1] ** 2)))
    lshift = abs(float(lab_d[..., 0].mean() - lab_r[..., 0].mean()))
    clipped = float(np.mean(_clipped_mask(yd) & ~_clipped_mask(yr)))
    gr, gd = _gradient(yr), _gradient(yd)
    detail_loss = float(np.mean(np.maximum(0.0, gr - gd))) / (float(gr.mean()) + 8.0)
    blk_r, step_r = _block_edges(yr)
    blk_d, _ = _block_edges(yd)
    blockiness = max(0.0, blk_d - blk_r) / (step_r + 4.0)
    d = ((1.0 - aligned) + W_CONTRAST * max(0.0, -math.log(a)) + W_CHROMA * chroma + W_CHROMA_HF * chroma_hf
         + W_LUMA * lshift + W_CLIP * clipped + W_DETAIL * detail_loss + W_BLOCK * blockiness)
    d = max(0.0, d)
    return Measures(raw, aligned, a, chroma, chroma_hf, lshift, clipped, detail_loss, blockiness, d,
                    mos_from_distortion(d))


def pseudo_mos(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pseudo-MOS in [1, 5] of ``dist`` against ``ref`` (see :func:`measure`)."""
    return measure(ref, dist).pseudo_mos


def level_probabilities(mos: float, sigma: float) -> dict[str, float]:
    """Each level's share of ratings spread normally around ``mos`` (standard deviation ``sigma``).

    Ratings beyond the scale's ends count for its end levels. A soft target instead of the one level
    that ``mos`` falls in: images on either side of a level's border no longer get the same answer, so
    a small step in quality (a little less colour) moves the target too. DeQA-Score (You et al.,
    CVPR 2025, "Teaching LMMs to Regress Accurate Image Quality Scores using Score Distribution")
    trains on such discretised rating distributions and reports higher SRCC / PLCC than Q-Align's
    single level words.
    """
    if math.isnan(mos) or not sigma > 0:
        raise ValueError(f"need a MOS and a positive spread, not {mos}, {sigma}")
    # P(rating >= each level's lower bound), best level first; the worst level takes the rest.
    at_least = [0.5 * math.erfc((lower - mos) / (sigma * math.sqrt(2.0))) for lower in LEVEL_LOWER[:-1]]
    bounds = [0.0, *at_least, 1.0]
    return {level: bounds[i + 1] - bounds[i] for i, level in enumerate(LEVELS)}


def sample_level(mos: float, sigma: float, rng: random.Random) -> str:
    """One level drawn from :func:`level_probabilities` (:func:`level_of` when ``sigma`` is 0).

    Written into a corpus record, the draws make a cross-entropy over level words whose expected
    gradient is that of the soft target: each image is seen about once per stage, so one draw per
    record costs nothing in the trainer.
    """
    if sigma == 0:
        return level_of(mos)
    shares = level_probabilities(mos, sigma)
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def level_of(mos: float) -> str:
    """The Q-Align level word for a MOS on [1, 5]: equal bins of width 0.8, best first."""
    if math.isnan(mos):
        raise ValueError("MOS is NaN")
    for word, lower in zip(LEVELS, LEVEL_LOWER):
        if mos >= lower:
            return word
    return LEVELS[-1]

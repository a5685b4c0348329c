"""PSNR and SSIM of a frame against its reference frame (``frame.reference``).

Both compare coded samples when the source gives them (``Frame.planes``: video), as ffmpeg's
``psnr`` and ``ssim`` filters do; stills fall back to BT.601 Y'CbCr computed from RGB. An input
whose size differs from its reference's is scaled to the reference's size first (bicubic), as VMAF
practice asks: the reference is the picture the viewer was meant to see.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from qplug.errors import InputError
from qplug.types import Frame

from . import PSNR_CAP


def _ycbcr(frame: Frame) -> tuple[list[np.ndarray], int]:
    """The frame's Y, U, V planes and the largest sample value."""
    planes = frame.planes
    if planes is not None:
        return [planes.y, planes.u, planes.v], (1 << planes.bit_depth) - 1
    ycrcb = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2YCrCb)
    return [ycrcb[..., 0], ycrcb[..., 2], ycrcb[..., 1]], 255


def _pair(frame: Frame) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The input's planes at the reference's size, the reference's planes, and the peak value."""
    reference = frame.reference
    if reference is None:
        raise InputError(frame.source_id, f"frame {frame.index} has no reference frame (the reference ended)")
    ours, peak = _ycbcr(frame)
    theirs, _ = _ycbcr(reference)
    sized = []
    for plane, target in zip(ours, theirs):
        if plane.shape != target.shape:
            plane = cv2.resize(plane, (target.shape[1], target.shape[0]), interpolation=cv2.INTER_CUBIC)
        sized.append(plane)
    return sized, theirs, peak


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    difference = a.astype(np.int32) - b.astype(np.int32)
    return float(np.mean(difference.astype(np.float64) ** 2))


def _psnr(mse: float, peak: int) -> float:
    if mse <= 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(peak * peak / mse))


class PsnrScorer:
    """``psnr``: luma PSNR in dB, ffmpeg's ``psnr_y``."""

    def score(self, frames: Sequence[Frame]) -> list[float]:
        out = []
        for frame in frames:
            ours, theirs, peak = _pair(frame)
            out.append(_psnr(_mse(ours[0], theirs[0]), peak))
        return out


class PsnrYuvScorer:
    """``psnr_yuv``: PSNR of the three planes' pooled error, each weighted by its sample count, as
    ffmpeg's ``psnr_avg`` (so 4:2:0 chroma counts a quarter of luma each)."""

    def score(self, frames: Sequence[Frame]) -> list[float]:
        out = []
        for frame in frames:
            ours, theirs, peak = _pair(frame)
            sizes = [plane.size for plane in theirs]
            mse = sum(_mse(a, b) * n for a, b, n in zip(ours, theirs, sizes)) / sum(sizes)
            out.append(_psnr(mse, peak))
        return out


class SsimScorer:
    """``ssim``: mean SSIM of luma (Wang, Bovik, Sheikh, Simoncelli 2004: 11x11 Gaussian window with
    sigma 1.5, K1 = 0.01, K2 = 0.03). ffmpeg's ``ssim`` filter uses x264's 8x8 variant, so values differ
    from it in the third decimal."""

    def score(self, frames: Sequence[Frame]) -> list[float]:
        out = []
        for frame in frames:
            ours, theirs, peak = _pair(frame)
            out.append(_ssim(ours[0], theirs[0], peak))
        return out


def _ssim(a: np.ndarray, b: np.ndarray, peak: int) -> float:
    x, y = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    sigma_x = blur(x * x) - mu_x * mu_x
    sigma_y = blur(y * y) - mu_y * mu_y
    sigma_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2))
    return float(np.clip(ssim_map.mean(), -1.0, 1.0))

"""YUV 4:2:0 → RGB and luma for delivered frames, honouring the stream's matrix and range.

Frames leave ffmpeg untouched when they already are 8-bit 4:2:0 in BT.601, BT.709 or BT.2020 (the
common case): a colour conversion inside ffmpeg cost a third of the decode time, and most QC measures only
read luma. The conversion to RGB happens here, lazily, for the scorers that ask for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from qplug.types import Planes


# Luma coefficients (Kr, Kb) of ITU-R BT.601, BT.709 and BT.2020 (non-constant luminance; BT.2020 table 4).
_COEFFICIENTS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


@dataclass(frozen=True)
class Colour:
    """How the delivered YUV samples are to be read."""

    matrix: str = "bt601"  # "bt601", "bt709" or "bt2020"
    full_range: bool = False

    def __post_init__(self) -> None:
        if self.matrix not in _COEFFICIENTS:
            raise ValueError(f"unsupported matrix {self.matrix!r}")


def planes(yuv: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of one I420 frame (no copy)."""
    flat = yuv.reshape(-1)
    area = width * height
    quarter = (width // 2) * (height // 2)
    y = flat[:area].reshape(height, width)
    u = flat[area:area + quarter].reshape(height // 2, width // 2)
    v = flat[area + quarter:area + 2 * quarter].reshape(height // 2, width // 2)
    return y, u, v


#: ffmpeg pixel formats whose samples are Y'CbCr (planar, semi-planar or packed); RGB, grey,
#: palette, Bayer and XYZ formats have no coded chroma to check.
_YUV_PIX_FMT = re.compile(r"^(yuv|yuvj|yuva|nv\d|p[0-9]{3}|y2[0-9]{2}|yuyv|uyvy|yvyu|ayuv|vuy[ax]|xv[0-9]|v30x|y41|uyyvyy)")


def delivers_coded_planes(pix_fmt: str | None, color_range: str | None, coded_matrix: str | None,
                          delivered_matrix: str, delivered_full_range: bool) -> bool:
    """Whether the delivered I420 samples stand for the stream's coded Y'CbCr samples.

    :param coded_matrix: the stream's matrix, from :func:`.graph.source_matrix` (``"bt601"``, ``"bt709"``,
        ``"bt2020"``; None for any other, e.g. SMPTE 240M).
    :param delivered_matrix: the matrix of the delivered samples (:attr:`DecodePlan.matrix`).

    True when delivery kept each level's meaning: 8-bit 4:2:0 that passes through ffmpeg untouched,
    and limited-range BT.601, BT.709 or BT.2020 Y'CbCr that swscale converts (10-bit, 4:2:2, 4:4:4,
    resized with ``max_side``) *without changing the matrix*, as graph.py does: that conversion keeps
    excursions (measured: 10-bit 1000 and 8 come out as 250 and 2) and its 16-235 is 64-940 at 10
    bits. Legal-range checks then run on the 8-bit conversion: a 10-bit sample counts as outside 16-235 when it lies outside about
    64-940 (to the nearest 8-bit level); resizing averages excursions narrower than the scale factor
    into their surroundings, so the fractions of a resized frame are a lower bound.

    False when a conversion changed the matrix (SMPTE 240M, BT.2020 constant luminance...: graph.py
    converts those to BT.601, and a change of matrix clips every excursion, measured), for full-range
    Y'CbCr squeezed into limited range (legal by construction), and for RGB, grey and palette sources.
    Interlaced streams deinterlaced by ``bwdif`` keep their planes: its interpolation can overshoot
    by a few levels at sharp edges, within EBU R 103's tolerance in practice.
    """
    if not pix_fmt or not _YUV_PIX_FMT.match(pix_fmt) or coded_matrix != delivered_matrix:
        return False
    coded_full_range = pix_fmt.startswith("yuvj") or color_range == "pc"
    return coded_full_range == delivered_full_range


def i420_planes(yuv: np.ndarray, height: int, width: int, full_range: bool) -> Planes:
    """The delivered frame's Y, U and V planes (views, no copy) as :class:`qplug.types.Planes`."""
    y, u, v = planes(yuv, height, width)
    return Planes(y=y, u=u, v=v, bit_depth=8, full_range=full_range)


def full_range_luma(y: np.ndarray, colour: Colour) -> np.ndarray:
    """Y' stretched to 0-255 (limited-range video keeps black at 16 and white at 235)."""
    if colour.full_range:
        return y
    # Same result as a 256-entry LUT (tested), but SIMD: 0.5 ms instead of 1.2-2.6 ms at 1080p.
    # The max() first because convertScaleAbs would mirror values below black instead of clipping.
    return cv2.convertScaleAbs(cv2.max(y, 16), alpha=255.0 / 219.0, beta=-16.0 * 255.0 / 219.0)


def to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, colour: Colour) -> np.ndarray:
    """RGB uint8 from Y and chroma planes of the same size as Y (already upsampled or subsampled)."""
    kr, kb = _COEFFICIENTS[colour.matrix]
    kg = 1.0 - kr - kb
    yf = y.astype(np.float32)
    uf = u.astype(np.float32) - 128.0
    vf = v.astype(np.float32) - 128.0
    if not colour.full_range:
        yf = (yf - 16.0) * (255.0 / 219.0)
        uf *= 255.0 / 224.0
        vf *= 255.0 / 224.0
    rgb = np.empty(y.shape + (3,), dtype=np.float32)
    rgb[..., 0] = yf + (2.0 - 2.0 * kr) * vf
    rgb[..., 1] = yf - (2.0 * kb * (1.0 - kb) / kg) * uf - (2.0 * kr * (1.0 - kr) / kg) * vf
    rgb[..., 2] = yf + (2.0 - 2.0 * kb) * uf
    np.clip(rgb, 0.0, 255.0, out=rgb)
    return (rgb + 0.5).astype(np.uint8)


def i420_to_rgb(yuv: np.ndarray, height: int, width: int, colour: Colour) -> np.ndarray:
    """Full-size RGB of one frame."""
    if colour == Colour("bt601", False):
        return cv2.cvtColor(yuv.reshape(height * 3 // 2, width), cv2.COLOR_YUV2RGB_I420)  # SIMD fast path
    y, u, v = planes(yuv, height, width)
    up = (width, height)
    return to_rgb(y, cv2.resize(u, up, interpolation=cv2.INTER_LINEAR),
                  cv2.resize(v, up, interpolation=cv2.INTER_LINEAR), colour)


def i420_preview(yuv: np.ndarray, height: int, width: int, colour: Colour, max_side: int) -> np.ndarray:
    """RGB of the pixels on a regular grid, at most ``max_side`` on the longer side.

    Picks whole pixels (no averaging), as :meth:`qplug.types.Frame.rgb_preview` promises, and
    converts only those: a few microseconds instead of a full-frame conversion.
    """
    stride = max(1, -(-max(height, width) // max_side))
    rows = np.arange(0, height, stride)
    cols = np.arange(0, width, stride)
    y, u, v = planes(yuv, height, width)
    return to_rgb(y[np.ix_(rows, cols)], u[np.ix_(rows // 2, cols // 2)], v[np.ix_(rows // 2, cols // 2)], colour)


def i420_crop(yuv: np.ndarray, height: int, width: int, colour: Colour,
              left: int, top: int, crop_width: int, crop_height: int) -> np.ndarray:
    """RGB of one region of a frame, converting only that region (plus a margin), equal to the
    same region of :func:`i420_to_rgb`'s full-frame result."""
    if crop_width <= 0 or crop_height <= 0:
        return np.zeros((max(crop_height, 0), max(crop_width, 0), 3), np.uint8)
    # An even-aligned window with a margin of 4 pixels, so chroma interpolation near the region's
    # edges sees the same neighbours as in the full frame.
    x0 = max(0, (left - 4) & ~1)
    y0 = max(0, (top - 4) & ~1)
    x1 = min(width, (left + crop_width + 5) & ~1)
    y1 = min(height, (top + crop_height + 5) & ~1)
    y, u, v = planes(yuv, height, width)
    yw, uw, vw = y[y0:y1, x0:x1], u[y0 // 2:y1 // 2, x0 // 2:x1 // 2], v[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
    if colour == Colour("bt601", False):
        packed = np.concatenate([yw.reshape(-1), uw.reshape(-1), vw.reshape(-1)]).reshape((y1 - y0) * 3 // 2, x1 - x0)
        rgb = cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_I420)
    else:
        window = (x1 - x0, y1 - y0)
        rgb = to_rgb(yw, cv2.resize(np.ascontiguousarray(uw), window, interpolation=cv2.INTER_LINEAR),
                     cv2.resize(np.ascontiguousarray(vw), window, interpolation=cv2.INTER_LINEAR), colour)
    return np.ascontiguousarray(rgb[top - y0:top - y0 + crop_height, left - x0:left - x0 + crop_width])

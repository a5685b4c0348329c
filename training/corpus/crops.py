"""Choosing model-sized crops of a photo at several resolutions.

The model sees a native 224x224 crop (no resizing), so the corpus is made of such crops. Crops
are taken at several scales of the photo, native resolution included: fine detail, where noise
and mild blur show, only survives at native resolution, while downscaled crops show whole
objects. A crop of a featureless sky or of a bokeh background shows almost nothing of blur,
and would teach "smooth means excellent"; so each crop is the most detailed of a few random
candidates, and a scale whose best candidate is still flat gives way to a coarser scale (where
the same field of view holds more detail per pixel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Scales a crop may come from, with the chance of each being tried first.
#: ``fit448`` resizes the photo so that its short side is 448 px (two crops across).
SCALES: tuple[tuple[str, float], ...] = (("native", 0.35), ("half", 0.25), ("quarter", 0.2), ("fit448", 0.2))
#: Candidates drawn per scale; the most detailed one is kept.
CANDIDATES = 3
#: Minimum detail (90th percentile of the Sobel gradient magnitude on luma, 0-255 scale) for a
#: crop to be accepted without trying a coarser scale. Bokeh and clear sky measure 10-25, ordinary
#: textures 40-300 (measured on the default photos).
MIN_DETAIL = 30.0


@dataclass(frozen=True)
class Crop:
    """Where a crop comes from: the scale and the box in *photo* pixel coordinates."""

    scale: str
    factor: float
    #: x0, y0, x1, y1 in the original photo.
    box: tuple[int, int, int, int]
    #: x, y of the top-left corner in the scaled photo, and the crop size there.
    x: int
    y: int
    size: int
    detail: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = list(self.box)
        d["factor"] = round(self.factor, 6)
        d["detail"] = round(self.detail, 2)
        return d


def scale_factor(scale: str, height: int, width: int) -> float:
    """Resize factor of a named scale for a photo of this size."""
    if scale == "native":
        return 1.0
    if scale == "half":
        return 0.5
    if scale == "quarter":
        return 0.25
    if scale == "fit448":
        return 448.0 / min(height, width)
    raise ValueError(f"unknown scale {scale!r}")


def usable_scales(height: int, width: int, size: int, max_factor: float = 1.0) -> list[str]:
    """Scales that do not enlarge beyond ``max_factor`` (1 = never upscale) and leave room for a ``size`` crop."""
    out = []
    for name, _ in SCALES:
        f = scale_factor(name, height, width)
        if f <= max_factor and min(height, width) * f >= size:
            out.append(name)
    return out


def detail(crop: np.ndarray) -> float:
    """90th percentile of the Sobel gradient magnitude of the luma: how much edge/texture there is."""
    g = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return float(np.percentile(np.sqrt(gx * gx + gy * gy), 90))


class ScaledPhoto:
    """A photo and its resized versions, computed on first use."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._cache: dict[str, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def at(self, scale: str) -> np.ndarray:
        if scale not in self._cache:
            h, w = self.shape
            f = scale_factor(scale, h, w)
            if f == 1.0:
                self._cache[scale] = self.image
            else:
                size = (max(1, round(w * f)), max(1, round(h * f)))
                # INTER_AREA: the anti-aliased downscale a photo viewer would do.
                self._cache[scale] = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)
        return self._cache[scale]


def _coarser(scales: list[str], first: str, photo_shape: tuple[int, int]) -> list[str]:
    """Scales to try after ``first``, from finer to coarser (larger factor first)."""
    h, w = photo_shape
    rest = [s for s in scales if s != first and scale_factor(s, h, w) < scale_factor(first, h, w)]
    return [first] + sorted(rest, key=lambda s: -scale_factor(s, h, w))


def choose_crop(photo: ScaledPhoto, size: int, rng: np.random.Generator, min_detail: float = MIN_DETAIL,
                candidates: int = CANDIDATES, scale: str | None = None,
                max_factor: float = 1.0) -> tuple[Crop, np.ndarray]:
    """Pick a scale (or use ``scale``), then the most detailed of ``candidates`` random boxes.

    ``max_factor`` below 1 keeps to scales that shrink the photo at least that much (lossy sources).
    Raises ``ValueError`` when no usable scale holds a ``size`` crop.
    """
    h, w = photo.shape
    scales = usable_scales(h, w, size, max_factor)
    if not scales:
        raise ValueError(f"photo {w}x{h} has no scale at or below {max_factor:g}x that holds a {size}px crop")
    if scale is None:
        weights = np.array([p for n, p in SCALES if n in scales], dtype=np.float64)
        first = str(rng.choice(scales, p=weights / weights.sum()))
    else:
        if scale not in scales:
            raise ValueError(f"scale {scale!r} not usable for a {w}x{h} photo and {size}px crops")
        first = scale
    best: tuple[float, Crop, np.ndarray] | None = None
    for name in _coarser(scales, first, (h, w)):
        img = photo.at(name)
        ih, iw = img.shape[:2]
        f = scale_factor(name, h, w)
        for _ in range(candidates):
            y = int(rng.integers(0, ih - size + 1))
            x = int(rng.integers(0, iw - size + 1))
            crop = img[y:y + size, x:x + size]
            d = detail(crop)
            if best is None or d > best[0]:
                box = (int(round(x / f)), int(round(y / f)), int(round((x + size) / f)), int(round((y + size) / f)))
                best = (d, Crop(name, f, box, x, y, size, d), crop)
        if best[0] >= min_detail:
            break
    assert best is not None
    return best[1], np.ascontiguousarray(best[2])

"""Turning any Pillow image mode into 8-bit RGB, and reading the original bit depth.

Transparency is composited over white (:data:`ALPHA_BACKGROUND`): that is how browsers, file
managers and document viewers show a transparent PNG or GIF, and what logos, icons and scanned
documents with alpha are made to be seen against. Black or mid-grey would invent edges and
contrast (dark text on a transparent background would vanish on black) that viewers never see,
and sharpness or contrast scores would measure the background instead of the picture.

ICC profiles are not applied: pixels are taken as sRGB, and CMYK goes through Pillow's plain
conversion (Adobe's inverted CMYK JPEGs are undone by Pillow's JPEG decoder already).
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

#: RGB colour that transparent pixels are composited over.
ALPHA_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
#: Per-component depths a raw mode suffix may name ("RGB;16B", "L;4", "I;32S"); others such as
#: "BGR;15" count bits per pixel, not per component.
_COMPONENT_DEPTHS = frozenset({1, 2, 4, 8, 12, 16, 32})


def bit_depth(im: Image.Image) -> int:
    """Bits per component of the stored image. Call before ``load()``, which clears ``im.tile``.

    Pillow holds 16-bit colour as 8-bit modes ("RGB" from a 16-bit PNG), so the decoder's raw mode
    is the only place the original depth still shows.
    """
    mode = im.mode
    if mode == "1":
        return 1
    if mode in ("P", "PA"):
        return 8  # palette entries are 8-bit colours, whatever the index width
    raw = _raw_mode(im)
    if raw and not raw.startswith("BGR;"):
        match = re.search(r";(\d+)", raw)
        if match and int(match.group(1)) in _COMPONENT_DEPTHS:
            return int(match.group(1))
    if mode.startswith("I;16"):
        return 16
    if mode in ("I", "F"):
        return 32
    return 8


def _raw_mode(im: Image.Image) -> str | None:
    tile = getattr(im, "tile", None)
    if not tile:
        return None
    args = tile[0][3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def to_rgb(im: Image.Image) -> tuple[Image.Image, list[str]]:
    """A loaded image in any mode -> (an 8-bit "RGB" image, notes for ``MediaInfo.warnings``).

    :raises ValueError: for a mode Pillow cannot convert to RGB (e.g. "LAB").
    """
    notes: list[str] = []
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _gray_to_8bit(np.asarray(im), mode, notes)
        return Image.fromarray(gray).convert("RGB"), notes
    if mode in _ALPHA_MODES or "transparency" in im.info:
        return _flatten_alpha(im.convert("RGBA"), notes), notes
    if mode == "RGB":
        return im, notes
    return im.convert("RGB"), notes


def _flatten_alpha(rgba: Image.Image, notes: list[str]) -> Image.Image:
    if rgba.getchannel("A").getextrema()[0] == 255:
        return rgba.convert("RGB")  # an alpha channel that is opaque everywhere changes nothing
    notes.append("transparent pixels composited over white")
    background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gray_to_8bit(values: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    """16-bit, 32-bit integer or float gray -> uint8, scaling the full range (never clipping it)."""
    if mode.startswith("I;16"):
        return _scale_16bit(values)
    if mode == "F":
        if not np.isfinite(values).all():
            notes.append("non-finite float pixels set to 0")
            values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8)
        if low >= 0.0 and high <= 255.0:
            return np.rint(values).astype(np.uint8)
        return _stretch(values, low, high, notes)
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 0xFFFF:
        return _scale_16bit(values)  # 32-bit container holding 16-bit samples (older PNG/PGM loads)
    return _stretch(values, low, high, notes)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    # Rounded x * 255 / 65535 maps 0 -> 0, 65535 -> 255 and 257*k -> k exactly.
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(values: np.ndarray, low: float, high: float, notes: list[str]) -> np.ndarray:
    # No fixed range to map from: spread what is there over 0..255 rather than clip it away.
    notes.append(f"pixel values {low:g}..{high:g} stretched to 0..255")
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


def downscale(im: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink so the longer side is ``max_side``, keeping the aspect ratio (never enlarges)."""
    width, height = im.size
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return im
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: box-reduce by an integer factor first, then Lanczos for the rest; as sharp as a
    # plain Lanczos pass but much faster on camera-sized inputs.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)

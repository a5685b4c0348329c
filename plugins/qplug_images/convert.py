"""Turning any Pillow image mode into 8-bit RGB, and reading the original bit depth.

Transparency is composited over white (:data:`ALPHA_BACKGROUND`): that is how browsers, file
managers and document viewers show a transparent PNG or GIF, and what logos, icons and scanned
documents with alpha are made to be seen against. Black or mid-grey would invent edges and
contrast (dark text on a transparent background would vanish on black) that viewers never see,
and sharpness or contrast scores would measure the background instead of the picture.

ICC profiles are not applied: pixels are taken as sRGB, and CMYK goes through Pillow's plain
conversion (Adobe's inverted CMYK JPEGs are undone by Pillow's JPEG decoder already).

Memory: a decoded image exists twice at most, as Pillow holds it (1 byte a pixel for gray and
palette images, 4 for RGB, RGBA and CMYK: Pillow pads RGB to 32 bits) and as the delivered RGB
array (3 bytes a pixel); RGB and RGBA stills are even decoded into the delivered array's own
buffer (``decode.LentBuffer``), 4 bytes a pixel in all. Conversion runs a band of rows at a time
(:func:`rgb_array`) instead of through whole-image temporaries: ``np.array(im)`` alone goes
through ``tobytes()``, whose chunks and joined result are two more full copies, and flattening
alpha made three.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

#: RGB colour that transparent pixels are composited over.
ALPHA_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
#: Modes Pillow resizes as they are (with alpha premultiplied for LA/RGBA, so no colour bleeds in
#: from transparent pixels); any other mode is converted before it is shrunk.
_RESIZABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA"})
#: About how many bytes of Pillow image each band of :func:`rgb_array` converts: small next to a
#: camera-sized picture, large enough that the per-band overhead does not show.
BAND_BYTES = 4 << 20
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


def _needs_whole_image(mode: str) -> bool:
    """16/32-bit integer and float gray: their mapping to 8 bits may depend on the whole image's range."""
    return mode.startswith("I;16") or mode in ("I", "F")


def rgb_array(im: Image.Image, notes: list[str]) -> np.ndarray:
    """A loaded image in any mode -> a new HxWx3 uint8 C-contiguous array; notes go to ``notes``.

    Converted a band of rows at a time into the array, so that beside Pillow's image and the
    result only one band's temporaries exist (see the module notes on memory).

    :raises ValueError: for a mode Pillow cannot convert to RGB.
    """
    if _needs_whole_image(im.mode):
        rgb_image, more = to_rgb(im)
        _add_notes(notes, more)
        return rgb_array(rgb_image, notes)
    width, height = im.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, BAND_BYTES // (4 * width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        band, more = to_rgb(im.crop((0, top, width, bottom)))  # crop keeps the palette and transparency
        out[top:bottom] = np.asarray(band)
        _add_notes(notes, more)
    return out


def shrink(im: Image.Image, max_side: int, notes: list[str]) -> Image.Image:
    """A loaded image in any mode, scaled down to ``max_side``, in a mode :func:`to_rgb` accepts.

    Shrinking comes before the conversion to RGB and the alpha flattening, so those run on the
    small image; the large one is converted only when Pillow cannot resize its mode (palette,
    1-bit, CMYK, high bit depth, a transparent colour key that interpolation would break).
    """
    if _needs_whole_image(im.mode):
        source, more = to_rgb(im)
        _add_notes(notes, more)
    elif "transparency" in im.info or im.mode in _ALPHA_MODES - _RESIZABLE_MODES:
        source = im.convert("RGBA")
    elif im.mode == "1":
        source = im.convert("L")
    elif im.mode not in _RESIZABLE_MODES:
        source = im.convert("RGB")
    else:
        source = im
    return downscale(source, max_side)


def shrinks(size: tuple[int, int], max_side: int | None) -> bool:
    """Whether an image of ``size`` is larger than ``max_side`` allows."""
    return max_side is not None and max(size) > max_side


#: EXIF orientation -> how the stored pixels are turned to be seen upright, as numpy views
#: (the same transforms as Pillow's ``ImageOps.exif_transpose``).
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],                      # mirrored left-right
    3: lambda a: a[::-1, ::-1],                   # rotated 180
    4: lambda a: a[::-1],                         # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),            # transposed
    6: lambda a: np.rot90(a, -1),                 # rotated 90 clockwise to be upright
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # transversed
    8: lambda a: np.rot90(a, 1),                  # rotated 90 anticlockwise to be upright
}


def orient(rgb: np.ndarray, orientation: int | None) -> np.ndarray:
    """Turn an HxWx3 array the way its EXIF ``orientation`` (1..8) says; returns a C-contiguous array.

    Done on the delivered array rather than on Pillow's image: after a ``max_side`` shrink that is
    a small copy instead of a second full-size Pillow image.
    """
    transform = _ORIENTATIONS.get(orientation) if orientation is not None else None
    if transform is None:
        return rgb
    return np.ascontiguousarray(transform(rgb))


def _add_notes(notes: list[str], more: list[str]) -> None:
    notes.extend(note for note in more if note not in notes)


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

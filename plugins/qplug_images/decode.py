"""Reading one image file into an 8-bit RGB array, every failure turned into an :class:`InputError`.

The whole file is decoded here, at once: a still has one frame, the source opens files in qplug's
reader thread (so decoding overlaps scoring), and a file that is corrupt then fails in
``Source.open`` with one clear reason instead of midway through scoring.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from qplug.errors import InputError

from .convert import bit_depth, downscale, to_rgb
from .limits import allow_in_pillow, pixel_limit, too_many_pixels

#: Pillow formats the source will decode. Listing them keeps Pillow from trying every plugin it has
#: on a misnamed file; EPS in particular would run Ghostscript on whatever the file contains.
#: The JPEG opener also returns camera JPEGs with a multi-picture index (format "MPO"); DIB is a BMP.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "DIB", "GIF")

_ORIENTATION_TAG = 0x0112
_BOMB_PIXELS = re.compile(r"(\d+) pixels")
#: JPEG draft decoding may shrink by 1/2..1/8 in the DCT; keep this much headroom over the target
#: so the final Lanczos pass, not libjpeg's cruder scaling, decides how the downscale looks.
_DRAFT_HEADROOM = 2


@dataclass
class DecodedImage:
    """A decoded still and what was learned about it on the way.

    ``width``/``height`` are the native size as displayed (after EXIF rotation), which can differ
    from the delivered array when ``max_side`` shrank it.
    """

    rgb: np.ndarray
    container: str
    mode: str
    bit_depth: int
    width: int
    height: int
    notes: list[str] = field(default_factory=list)


def decode_image(path: str, max_side: int | None = None) -> DecodedImage:
    """Decode ``path`` into an HxWx3 uint8 C-contiguous RGB array.

    :param max_side: shrink so the longer side is at most this many pixels (None: native size).
    :raises InputError: for anything that stops the file being read, with a one-line reason.
    :raises UsageError: when ``QPLUG_MAX_IMAGE_PIXELS`` is set to something that is not a limit.
    """
    limit = pixel_limit()
    allow_in_pillow(limit)
    with _open_file(path) as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise InputError(path, "file is empty")
        # Our own size check below is the one that decides, and reports the error; Pillow's warning
        # for the 1x..2x band would only be noise on stderr.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = _open_image(path, fp, limit)
            return _decode(path, im, max_side)


def _open_file(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise InputError(path, f"cannot open file ({exc.strerror or _one_line(exc)})") from None


def _open_image(path: str, fp: IO[bytes], limit: int) -> Image.Image:
    """Read and check the header only: format, size and mode, no pixels yet."""
    try:
        im = Image.open(fp, formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        match = _BOMB_PIXELS.search(str(exc))
        pixels = int(match.group(1)) if match else limit + 1
        raise InputError(path, too_many_pixels(pixels, limit)) from None
    except UnidentifiedImageError:
        raise InputError(path, "not a JPEG, PNG, WebP, TIFF, BMP or GIF image (format not recognised)") from None
    except Exception as exc:  # plugins raise SyntaxError, ValueError, struct.error... on odd headers
        raise InputError(path, f"cannot read image header ({_one_line(exc)})") from None
    width, height = im.size
    if width * height > limit:
        raise InputError(path, too_many_pixels(width * height, limit, im.size))
    if width < 1 or height < 1:
        raise InputError(path, f"image has no pixels ({width}x{height})")
    return im


def _decode(path: str, im: Image.Image, max_side: int | None) -> DecodedImage:
    container = im.format or "unknown"
    mode = im.mode
    depth = bit_depth(im)  # before load(): it reads the decoder's raw mode
    stored_size = im.size
    notes: list[str] = []
    if _has_more_frames(im):
        notes.append("image has several frames or pages; only the first is used")
    if max_side is not None and container in ("JPEG", "MPO"):
        _draft(im, max_side)
    try:
        im.load()
    except MemoryError:
        raise InputError(path, f"not enough memory to decode a {stored_size[0]}x{stored_size[1]} image") from None
    except Image.DecompressionBombError as exc:  # a later frame or tile claiming more pixels
        raise InputError(path, f"image data refused by the decompression-bomb guard ({_one_line(exc)})") from None
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file", zlib...
        message = _one_line(exc)
        if "truncated" in message:
            raise InputError(path, f"image data is truncated ({message})") from None
        raise InputError(path, f"image data is corrupt ({message})") from None

    orientation = _orient(im, notes)
    width, height = stored_size
    if orientation in (5, 6, 7, 8):  # the transposing orientations swap width and height
        width, height = height, width
    try:
        rgb_image, conversion_notes = to_rgb(im)
    except ValueError as exc:
        raise InputError(path, f"unsupported pixel format {mode} ({_one_line(exc)})") from None
    notes.extend(conversion_notes)
    rgb_image = downscale(rgb_image, max_side)
    rgb = np.array(rgb_image, dtype=np.uint8)  # a writable copy the frame owns, not a view of Pillow's buffer
    return DecodedImage(rgb=np.ascontiguousarray(rgb), container=container, mode=mode, bit_depth=depth,
                        width=width, height=height, notes=notes)


def _has_more_frames(im: Image.Image) -> bool:
    try:
        return bool(getattr(im, "is_animated", False))
    except Exception:  # a broken second frame is not this frame's problem
        return False


def _draft(im: Image.Image, max_side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the result is to be shrunk anyway."""
    width, height = im.size
    scale = _DRAFT_HEADROOM * max_side / max(width, height)
    if scale < 1:
        im.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))


def _orient(im: Image.Image, notes: list[str]) -> int | None:
    """Apply the EXIF orientation in place; returns the tag's value (None when absent)."""
    try:
        orientation = im.getexif().get(_ORIENTATION_TAG)
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # unreadable EXIF: the pixels are fine, only their rotation is unknown
        notes.append("EXIF data unreadable; orientation not applied")
        return None
    return orientation if isinstance(orientation, int) else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

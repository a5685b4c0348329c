"""Reading one image file into an 8-bit RGB array, every failure turned into an :class:`InputError`.

A still is decoded here, at once: it has one frame, the source opens files in qplug's reader
thread (so decoding overlaps scoring), and a file that is corrupt then fails in ``Source.open``
with one clear reason instead of midway through scoring. Animations are opened here too
(:func:`open_image`) and then read frame by frame by :mod:`qplug_images.animation`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from qplug.errors import InputError
from qplug.inputs import open_regular_file

from .convert import BAND_BYTES, bit_depth, orient, rgb_array, shrink, shrinks, to_rgb
from .limits import allow_in_pillow, pixel_limit, too_many_pixels

#: Pillow formats the source will decode. Listing them keeps Pillow from trying every plugin it has
#: on a misnamed file; EPS in particular would run Ghostscript on whatever the file contains.
#: The JPEG opener also returns camera JPEGs with a multi-picture index (format "MPO"); DIB is a BMP.
#: AVIF only where this Pillow reads it (recent wheels, built with libavif): naming a format Pillow
#: lacks would make it fail on every file that reached that name.
_READABLE = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "DIB", "GIF")


def _allowed_formats() -> tuple[str, ...]:
    Image.init()
    return _READABLE + (("AVIF",) if "AVIF" in Image.OPEN else ())


ALLOWED_FORMATS: tuple[str, ...] = _allowed_formats()

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


@dataclass
class OpenedImage:
    """A file whose header has been read (format, size, mode) but no pixels decoded yet.

    Owns the open file: :meth:`close` (or leaving a ``with`` block) closes it and frees Pillow's
    pixels. ``limit`` is the pixel limit the header was checked against, for later frames.
    """

    path: str
    fp: IO[bytes]
    im: Image.Image
    limit: int

    def close(self) -> None:
        """Free the pixels and close the file. Safe to call more than once."""
        self.im.close()
        self.fp.close()

    def __enter__(self) -> "OpenedImage":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_image(path: str) -> OpenedImage:
    """Open ``path`` and read its header, refusing what cannot or should not be decoded.

    :raises InputError: a missing, special, unreadable or empty file, an unknown format, or more
        pixels than the decompression-bomb limit.
    :raises UsageError: when ``QPLUG_MAX_IMAGE_PIXELS`` is set to something that is not a limit.
    """
    limit = pixel_limit()
    allow_in_pillow(limit)
    fp = _open_file(path)
    try:
        if os.fstat(fp.fileno()).st_size == 0:
            raise InputError(path, "file is empty")
        with quiet_bomb_warnings():
            im = _open_image(path, fp, limit)
    except BaseException:
        fp.close()
        raise
    return OpenedImage(path, fp, im, limit)


def decode_image(path: str, max_side: int | None = None) -> DecodedImage:
    """Decode ``path`` into an HxWx3 uint8 C-contiguous RGB array (the first frame of a multi-frame file).

    :param max_side: shrink so the longer side is at most this many pixels (None: native size).
    :raises InputError: for anything that stops the file being read, with a one-line reason.
    :raises UsageError: when ``QPLUG_MAX_IMAGE_PIXELS`` is set to something that is not a limit.
    """
    with open_image(path) as opened:
        return decode_still(opened, max_side)


@contextmanager
def quiet_bomb_warnings() -> Iterator[None]:
    """Silence Pillow's decompression-bomb warning while opening, seeking or decoding.

    qplug's own size check is the one that decides, and reports the error; Pillow's warning for the
    1x..2x band of its own limit would only be noise on stderr.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _open_file(path: str) -> IO[bytes]:
    """Open a regular file for reading (never a FIFO or a device: see :func:`qplug.inputs.open_regular_file`)."""
    return os.fdopen(open_regular_file(path), "rb")


def _open_image(path: str, fp: IO[bytes], limit: int) -> Image.Image:
    """Read and check the header only: format, size and mode, no pixels yet."""
    try:
        im = Image.open(fp, formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        match = _BOMB_PIXELS.search(str(exc))
        pixels = int(match.group(1)) if match else limit + 1
        raise InputError(path, too_many_pixels(pixels, limit)) from None
    except UnidentifiedImageError:
        if path.lower().endswith(".avif") and "AVIF" not in ALLOWED_FORMATS:
            raise InputError(path, "this Pillow reads no AVIF: install one built with AVIF support (pip install -U pillow)") from None
        names = "JPEG, PNG, WebP, TIFF, BMP, GIF" + (" or AVIF" if "AVIF" in ALLOWED_FORMATS else "")
        raise InputError(path, f"not a {names} image (format not recognised)") from None
    except Exception as exc:  # plugins raise SyntaxError, ValueError, struct.error... on odd headers
        raise InputError(path, f"cannot read image header ({_one_line(exc)})") from None
    width, height = im.size
    if width * height > limit:
        raise InputError(path, too_many_pixels(width * height, limit, im.size))
    if width < 1 or height < 1:
        raise InputError(path, f"image has no pixels ({width}x{height})")
    return im


def decode_still(opened: OpenedImage, max_side: int | None) -> DecodedImage:
    """Decode the (first) frame of an opened file, apply its EXIF orientation and free Pillow's copy."""
    path, im = opened.path, opened.im
    container = im.format or "unknown"
    mode = im.mode
    depth = bit_depth(im)  # before load(): it reads the decoder's raw mode
    stored_size = im.size
    notes: list[str] = []
    if has_more_frames(im):
        notes.append("image has several frames or pages; only the first is used")
    if max_side is not None and container in ("JPEG", "MPO"):
        _draft(im, max_side)
    lent = LentBuffer.lend(im) if container != "GIF" and not shrinks(stored_size, max_side) else None
    with quiet_bomb_warnings():
        load_frame(path, im)
    orientation = read_orientation(im, notes)
    width, height = stored_size
    if orientation in (5, 6, 7, 8):  # the transposing orientations swap width and height
        width, height = height, width
    rgb = lent.take(im, notes) if lent is not None else None
    if rgb is None:
        rgb = frame_pixels(path, im, max_side, notes)
    im.close()  # Pillow's copy goes before the orientation makes one of the array
    rgb = orient(rgb, orientation)
    return DecodedImage(rgb=rgb, container=container, mode=mode, bit_depth=depth,
                        width=width, height=height, notes=notes)


class LentBuffer:
    """An "RGB" or "RGBA" image decoded straight into the array that will be delivered.

    Pillow keeps both as 4 bytes a pixel, so decoding into its own image and converting out peaks
    at 7 bytes a pixel: 1.2 GB for a 40-megapixel PNG where 3 bytes a pixel would do. Here Pillow
    is lent a numpy buffer to decode into (``Image.core.map_buffer``, what ``Image.frombuffer``
    uses), each band of rows is converted to RGB into the front of that same buffer, and the
    buffer is shrunk by ``realloc``: the peak is 4 bytes a pixel, and the result owns its memory.

    That leans on Pillow internals, so each step is checked and the ordinary conversion takes over
    when one does not hold: Pillow may allocate its own image instead (older versions do), or
    store pixels some other way. The buffer is allocated but not touched until Pillow writes to
    it, so a Pillow that ignores it costs no memory.
    """

    #: Pillow's mode -> the 4-byte layout the lent buffer is mapped as.
    LAYOUTS = {"RGB": "RGBX", "RGBA": "RGBA"}

    def __init__(self, buf: np.ndarray, core: object, mode: str) -> None:
        self._buf: np.ndarray | None = buf
        self._core: object | None = core
        self._mode = mode

    @classmethod
    def lend(cls, im: Image.Image) -> "LentBuffer | None":
        """Before ``load()``: hand Pillow the buffer (None when this image cannot take one)."""
        layout = cls.LAYOUTS.get(im.mode)
        if layout is None or "transparency" in im.info:  # a colour key needs Pillow's own conversion
            return None
        width, height = im.size
        buf = np.empty((height, width, 4), dtype=np.uint8)
        try:
            core = Image.core.map_buffer(buf, im.size, "raw", 0, (layout, 0, 1))
            im.im = core
        except Exception:
            return None
        return cls(buf, core, im.mode)

    def take(self, im: Image.Image, notes: list[str]) -> np.ndarray | None:
        """After ``load()``: the pixels as HxWx3 (closing ``im``), or None to convert ``im`` as usual."""
        buf, self._buf = self._buf, None
        core, self._core = self._core, None
        if buf is None or im.im is not core or im.mode != self._mode:
            return None
        if self._mode == "RGB" and not self._padding_is_opaque(buf):
            return None
        im.close()  # Pillow lets go of the buffer: only then may it shrink
        del core
        height, width = buf.shape[:2]
        flat = buf.reshape(-1)
        rows = max(1, BAND_BYTES // (4 * width))
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            # Rows top..bottom land in bytes 3*width*top.., never past 4*width*bottom where the
            # rows still to convert begin; the band is converted into a copy before it is written.
            flat[top * width * 3:bottom * width * 3] = self._band_rgb(buf[top:bottom], notes)
        del flat
        try:
            buf.resize(height * width * 3, refcheck=True)  # refuses while anything still points into it
        except ValueError:
            return buf.reshape(-1)[:height * width * 3].reshape(height, width, 3).copy()
        return buf.reshape(height, width, 3)

    def _band_rgb(self, band: np.ndarray, notes: list[str]) -> np.ndarray:
        """A band of 4-byte pixels as the flat RGB bytes it becomes (a new array)."""
        if self._mode == "RGB":
            return band[:, :, :3].reshape(-1)
        rows, width = band.shape[:2]
        rgba = Image.frombuffer("RGBA", (width, rows), band, "raw", "RGBA", 0, 1)
        rgb, more = to_rgb(rgba)
        notes.extend(note for note in more if note not in notes)
        return np.asarray(rgb).reshape(-1)

    @staticmethod
    def _padding_is_opaque(buf: np.ndarray) -> bool:
        """Pillow fills RGBX padding with 255; anything else means it wrote some other layout."""
        rows = max(1, BAND_BYTES // buf.shape[1])
        return all(bool((buf[top:top + rows, :, 3] == 255).all()) for top in range(0, buf.shape[0], rows))


def load_frame(path: str, im: Image.Image) -> None:
    """Decode the current frame's pixels, turning whatever the decoder raises into an InputError."""
    try:
        im.load()
    except MemoryError:
        raise InputError(path, f"not enough memory to decode a {im.size[0]}x{im.size[1]} image") from None
    except Exception as exc:
        raise InputError(path, decode_failure(exc)) from None


def decode_failure(exc: BaseException) -> str:
    """The reason given for an exception raised while decoding or seeking (one line)."""
    message = _one_line(exc)
    if isinstance(exc, Image.DecompressionBombError):  # a later frame or tile claiming more pixels
        return f"image data refused by the decompression-bomb guard ({message})"
    # OSError "image file is truncated", SyntaxError "broken PNG file", zlib errors...
    if "truncated" in message:
        return f"image data is truncated ({message})"
    return f"image data is corrupt ({message})"


def frame_pixels(path: str, im: Image.Image, max_side: int | None, notes: list[str]) -> np.ndarray:
    """The loaded current frame as a new HxWx3 uint8 C-contiguous array, shrunk to ``max_side``.

    Not yet oriented (see :func:`read_orientation`). Pillow's image is left as it was: an
    animation goes on composing its next frame onto it.
    """
    try:
        if shrinks(im.size, max_side):
            assert max_side is not None
            small, more = to_rgb(shrink(im, max_side, notes))
            notes.extend(note for note in more if note not in notes)
            return np.array(small, dtype=np.uint8)  # a writable copy the frame owns
        return rgb_array(im, notes)
    except MemoryError:
        raise InputError(path, f"not enough memory to convert a {im.size[0]}x{im.size[1]} {im.mode} image") from None
    except ValueError as exc:
        raise InputError(path, f"unsupported pixel format {im.mode} ({_one_line(exc)})") from None


def has_more_frames(im: Image.Image) -> bool:
    """Whether the file holds a second frame or page (False when that cannot even be read)."""
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


def read_orientation(im: Image.Image, notes: list[str]) -> int | None:
    """The EXIF orientation tag's value (None when absent or unreadable, with a note for the latter)."""
    try:
        orientation = im.getexif().get(_ORIENTATION_TAG)
    except Exception:  # unreadable EXIF: the pixels are fine, only their rotation is unknown
        notes.append("EXIF data unreadable; orientation not applied")
        return None
    return orientation if isinstance(orientation, int) else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
